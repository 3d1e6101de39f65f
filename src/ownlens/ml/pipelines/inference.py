"""Batch and single predictions of any model with a registered version: the production one (each user routed to
their arm while an A/B test of the model runs), or the version asked for."""

from __future__ import annotations

import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import as_date, latest_feature_date
from ownlens.ml.models.trained import load
from ownlens.ml.registry.abtests import running


def predict(model, client: Client, *, version: str = "production", feature_date=None, brand_id=None, progress=None) -> dict:
    """Score and store every entity of ``feature_date`` (default: the latest built); returns the summary."""
    trained = load(client, model.name, version)
    d = as_date(feature_date, "feature_date") if feature_date else latest_feature_date(client)
    test = running(client, model.name) if version == "production" else None
    result = model.predict_batch(client, trained, d, brand_id=brand_id, progress=progress, ab_test=test)
    if test is not None:
        result["ab_test"] = test.name
    return result


def lookup(model, client: Client, keys: list, *, version: str = "production", feature_date=None, **options) -> pd.DataFrame:
    """Predictions for given ids now, as a frame (``attrs["message"]`` names unknown ids)."""
    return model.server(client, load(client, model.name, version)).frame(keys, feature_date, **options)
