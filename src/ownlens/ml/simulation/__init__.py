"""The built-in publisher simulator: realistic data plus the true answers it used (sim_ tables)."""

from ownlens.ml.simulation.publisher import SimulationConfig, simulate

__all__ = ["SimulationConfig", "simulate"]
