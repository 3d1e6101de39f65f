"""The API's routers, one per resource: health, models (the registry), predict (every model's predictions)."""
