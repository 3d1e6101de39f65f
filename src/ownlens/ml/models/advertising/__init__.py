"""Advertising models: where to place ads for the most revenue."""
