"""Seed 004's marketing models: attribution (more to come: campaign optimisation)."""
