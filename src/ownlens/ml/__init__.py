"""OwnLens ML: features, models, registry and serving on a publisher's ClickHouse warehouse."""

__version__ = "0.1.0"
