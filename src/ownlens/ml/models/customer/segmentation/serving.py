"""Reads of segmentation: a user's segment now (the API, the CLI, the predictors), the stored segments' shares for
monitoring, and the segment profiles."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, Field

from ownlens.ml.data.loaders import query_frame
from ownlens.ml.errors import NotFound
from ownlens.ml.models.customer.segmentation import sql
from ownlens.ml.models.customer.segmentation.batch import segment_ids
from ownlens.ml.models.customer.segmentation.estimator import confidence
from ownlens.ml.models.lookup import LookupServer
from ownlens.ml.models.trained import TrainedModel


class Segment(BaseModel):
    """A user's segment."""

    user_id: str
    segment_id: str
    segment_name: str
    confidence: float = Field(description="How much nearer the user is to this segment's centre than to the next (0..1).")
    feature_date: str
    model_version: str


def segments(client: Client, model: TrainedModel, users: list[str], d: date) -> tuple[list[dict], list[str]]:
    """The segment of given users on ``d`` from their features (the model's assignment, computed now)."""
    frame = query_frame(client, sql.USERS_INPUTS, {"d": d, "users": list(users)})
    if frame.empty:
        return [], list(users)
    distances = model.estimator.transform(frame[model.features])
    labels = distances.argmin(1)
    ids, names = np.asarray(segment_ids(model), dtype=object), np.asarray(model.estimator.segment_names_, dtype=object)
    records = [{"user_id": u, "segment_id": i, "segment_name": n, "confidence": round(float(c), 4), "feature_date": str(d),
                "model_version": model.version or "unregistered"}
               for u, i, n, c in zip(frame["user_id"], ids[labels], names[labels], confidence(distances))]
    known = set(frame["user_id"])
    return records, [u for u in users if u not in known]


def server(client: Client, model: TrainedModel, cache_ttl_s: float = 0.0) -> LookupServer:
    return LookupServer(client, model, segments, cache_ttl_s=cache_ttl_s)


def realised(client: Client, d: date) -> dict:
    """Each segment's share of the users assigned on ``d`` (the version that assigned them)."""
    version = client.command(sql.STORED_VERSION, parameters={"d": d})
    if not version:
        raise NotFound(f"no segment assignments for {d}: run `ownlens-ml predict segmentation --date {d}` first")
    shares = client.query(sql.SHARES, parameters={"d": d, "v": version}).result_rows
    return {"model_version": version, **{f"segment_share:{name}": float(share) for name, share in shares}}


def stored_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query(sql.STORED_DATES).result_rows]


def profiles(client: Client, version: str | None = None) -> pd.DataFrame:
    """The segments of a version (default: every version), newest first, profile JSON parsed."""
    rows = query_frame(client, sql.PROFILES, {"version": version or ""})
    rows["segment_profile"] = rows["segment_profile"].map(json.loads)
    return rows
