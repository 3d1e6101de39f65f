"""Reading the warehouse: loaders, joins, data-quality checks and the exploration report."""
