"""The one promotion policy, used by ``train --promote``, the master run and retraining on drift alerts: a new
version goes to production when it scores at least as well as the production version on the same test rows."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import metrics as M
from ownlens.ml.models.protocol import TrainingResult
from ownlens.ml.models.trained import load
from ownlens.ml.registry import store


def challenge(model, client: Client, result: TrainingResult) -> dict:
    """Promote ``result``'s (registered) version when its primary metric is at least as good as production's,
    production scored again on exactly ``result``'s test rows; no production version: promoted.

    Returns the comparison: metric, new and production scores and versions, promoted or not.
    """
    if not result.model.version:
        raise InvalidInput(f"only a registered {model.name} version can be promoted: train it with registration on")
    key = model.primary_metric
    new = result.metrics.get(key)
    try:
        production_version = store.get(client, model.name, "production")["model_version"]
    except NotFound:
        production_version = None
    current = None
    if production_version and production_version != result.model.version:
        current = model.evaluate(client, load(client, model.name, production_version), result.test).metrics.get(key)
    promoted = production_version != result.model.version and M.at_least_as_good(key, new, current)
    if promoted:
        store.promote(client, model.name, result.model.version)
    return {"metric": key, "new": new, "production": current, "promoted": promoted,
            "production_version": production_version, "version": result.model.version}


def retrain(model, client: Client, description: str = "", **options) -> tuple[TrainingResult, dict]:
    """Train and register a new version, then :func:`challenge` production with it."""
    from ownlens.ml.models.runs import train

    result = train(model, client, description=description, **options)
    return result, challenge(model, client, result)
