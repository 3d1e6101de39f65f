"""Content models: user x article pairs."""
