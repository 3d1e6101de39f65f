"""Segment assignment of every user of a date: customer_user_segment_assignments, customer_user_segments (profiles
computed in SQL) and ml_model_predictions, each replaced for the date (of one brand, if given)."""

from __future__ import annotations

import time
import uuid
from datetime import date

import numpy as np
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import as_date, latest_feature_date, query_frame, resolve_brand
from ownlens.ml.errors import NotFound
from ownlens.ml.models.customer.segmentation import sql
from ownlens.ml.models.customer.segmentation.estimator import confidence
from ownlens.ml.models.scoring import store_user_predictions
from ownlens.ml.models.trained import TrainedModel
from ownlens.ml.warehouse import drop_scratch, replace_partition, scratch_table

BATCH_ROWS = 250_000


def segment_ids(model: TrainedModel) -> list[str]:
    """Stable segment ids: one per (registered model, segment number)."""
    base = uuid.UUID("6f1d2c3a-5b7e-4c1d-9a2b-0c4e5f6a7b8c")
    key = model.model_id or f"unregistered {model.version}"
    return [str(uuid.uuid5(base, f"{key}:{c}")) for c in range(model.estimator.n_clusters_)]


def assign(client: Client, model: TrainedModel, d, *, brand_id=None, progress=None, ab_test=None,
           batch_rows: int = BATCH_ROWS) -> dict:
    """Assign every user of ``d`` to a segment; replaces that date's assignments (of the brand, if given)."""
    t0 = time.perf_counter()
    d = as_date(d) if d else latest_feature_date(client)
    params: dict = {"d": d, "brand": resolve_brand(client, brand_id)}
    total = int(client.command(sql.DATE_COUNT, parameters=params))
    if total == 0:
        raise NotFound(f"no user features on {d}" + (f" for brand {brand_id}" if brand_id else "") +
                       f": run `ownlens-ml features build --date {d}` first")
    est = model.estimator
    parts, chunks, done = max(1, -(-total // batch_rows)), [], 0
    for part in range(parts):
        frame = query_frame(client, sql.DATE_PART, params | {"parts": parts, "part": part})
        distances = est.transform(frame[model.features])
        segments = distances.argmin(1)
        chunks.append(pa.table({"user_id": pa.array(frame["user_id"].astype(str)), "brand_id": pa.array(frame["brand_id"].astype(str)),
                                "segment": pa.array(segments.astype(np.int32)), "value": pa.array(confidence(distances)),
                                "label": pa.array(np.asarray(est.segment_names_, dtype=object)[segments].astype(str))}))
        done += len(frame)
        if progress:
            progress(done)
    raw = {"raw": scratch_table(client, "segments")}
    client.command(sql.RAW, parameters=raw)
    try:
        client.insert_arrow(raw["raw"], pa.concat_tables(chunks))
        write = {**params, **raw, "ids": segment_ids(model), "names": list(est.segment_names_),
                 "version": model.version or "unregistered", "model_id": model.model_id or ""}
        replace_partition(client, "customer_user_segment_assignments", d, sql.ASSIGNMENTS, write,
                          keep=sql.OTHER_BRANDS if params["brand"] else None)
        store_user_predictions(client, model, d, raw["raw"], params["brand"])
    finally:
        drop_scratch(client, raw["raw"])
    write_profiles(client, model, d)
    seconds = time.perf_counter() - t0
    return {"model": model.spec_name, "version": model.version, "date": str(d), "rows": done, "seconds": round(seconds, 3),
            "rows_per_s": round(done / seconds) if seconds else None, "table": "customer_user_segment_assignments"}


def write_profiles(client: Client, model: TrainedModel, d: date) -> None:
    """customer_user_segments: one row per segment of this version, its profile computed in SQL for ``d``."""
    names = list(model.estimator.segment_names_)
    descriptions = [f"{n}: {model.estimator.sizes_[i]:.0%} of users when fitted; segmentation {model.version}"
                    for i, n in enumerate(names)]
    client.command(sql.PROFILE, parameters={"d": d, "ids": segment_ids(model), "names": names, "descriptions": descriptions,
                                            "model_id": model.model_id or "", "version": model.version or "unregistered"})
