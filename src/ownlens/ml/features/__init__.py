"""ML-ready features computed inside ClickHouse, point in time correct."""
