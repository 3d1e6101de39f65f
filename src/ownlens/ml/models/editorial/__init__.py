"""Editorial models: what an editor asks of the newsroom's data (article performance, what is trending)."""
