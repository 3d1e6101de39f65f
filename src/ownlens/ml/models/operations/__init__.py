"""Seed 004's operations models (so far: demand forecasting)."""
