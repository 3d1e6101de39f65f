"""Top-10 recommendations for every user of a date into customer_recommendations (already-read articles excluded,
only articles published before the date), replacing that date's rows; with a running A/B test each user gets their
arm's version and each row names the version that made it."""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import as_date, latest_feature_date, resolve_brand
from ownlens.ml.errors import NotFound
from ownlens.ml.models.content.recommendation import signals as S
from ownlens.ml.models.content.recommendation import sql
from ownlens.ml.models.content.recommendation.estimator import top_k
from ownlens.ml.models.trained import TrainedModel
from ownlens.ml.warehouse import drop_scratch, reload_if_loaded, replace_partition, scratch_table

CHUNK_USERS = 10_000  # users scored at once (a chunk x candidates score matrix per signal)
BATCH_USERS = 100_000  # users read from the warehouse at once


def prepared(client: Client, model: TrainedModel, d: date) -> S.DateContext:
    """The date's context for ``model``, with its co-reading model fitted on the readers of the week before ``d``."""
    cands = sql.candidates(client, d)
    if cands.empty:
        raise NotFound(f"no articles were published in the {sql.CANDIDATE_DAYS} days before {d}: nothing to recommend")
    ctx = S.context(cands, d, model.estimator)
    everyone = sql.everyone_reads(client, cands, d)
    n_users = int(everyone["i"].max()) + 1 if len(everyone) else 0
    return S.fit_co_reading(ctx, S.counts(everyone, n_users, len(cands)), model.estimator)


def recommend_batch(client: Client, model: TrainedModel, d, *, brand_id=None, progress=None, ab_test=None,
                    batch_users: int = BATCH_USERS) -> dict:
    """Top-10 recommendations for every user of ``d`` (of the brand, if given), replacing that date's rows."""
    from ownlens.ml.models.trained import load

    t0 = time.perf_counter()
    d = as_date(d) if d else latest_feature_date(client)
    params: dict = {"d": d, "brand": resolve_brand(client, brand_id), "test": "", "split": 0.0, "arm": ""}
    passes = [(model, "")]
    if ab_test is not None:
        params |= {"test": ab_test.test_id, "split": ab_test.split}
        passes = [(load(client, model.spec_name, v), arm) for arm, v in (("A", ab_test.version_a), ("B", ab_test.version_b))]
    total = int(client.command(sql.BATCH_USER_COUNT, parameters=params))
    if total == 0:
        raise NotFound(f"no user features on {d}" + (f" for brand {brand_id}" if brand_id else "") +
                       f": run `ownlens-ml features build --date {d}` first")
    raw = {"raw": scratch_table(client, "recs")}
    client.command(sql.RAW, parameters=raw)
    parts, done, candidates = max(1, -(-total // batch_users)), 0, None
    try:
        for number, (m, arm) in enumerate(passes):
            ctx = prepared(client, m, d)
            if candidates is not None and ctx.candidates["article_id"].tolist() != candidates:
                raise RuntimeError("the candidates of one date differ between passes")  # a query is not deterministic
            candidates = ctx.candidates["article_id"].tolist()
            for part in range(parts):
                part_params = {**params, "parts": parts, "part": part, "arm": arm}
                ids, profile, recent = sql.user_reads(client, ctx.candidates, d, sql.BATCH_USERS, part_params)
                batch = S.user_batch(ctx, ids, profile, recent, m.estimator)
                for start in range(0, len(batch.user_ids), CHUNK_USERS):
                    rows = slice(start, start + CHUNK_USERS)
                    top, scores = top_k(S.scores(m, ctx, batch, rows), batch.recent[rows], m.estimator.k)
                    n, k = top.shape
                    finite = np.isfinite(scores).ravel()
                    client.insert_arrow(raw["raw"], pa.table({
                        "user_id": pa.array(np.repeat(batch.user_ids[rows], k)[finite]),
                        "item": pa.array(top.ravel()[finite].astype(np.uint16)),
                        "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.uint16), n)[finite]),
                        "score": pa.array(scores.ravel()[finite]),
                        "pass_no": pa.array(np.full(int(finite.sum()), number, np.uint8))}))
                done += len(batch.user_ids)
                if progress:
                    progress(done)
        write = {**params, **raw, "candidates": candidates, "algorithm": model.info.get("algorithm") or "hybrid",
                 "versions": [m.version or "unregistered" for m, _ in passes], "model_ids": [m.model_id or "" for m, _ in passes]}
        rows = replace_partition(client, "customer_recommendations", d, sql.RECOMMENDATIONS, write,
                                 keep=sql.OTHER_BRANDS if params["brand"] else None)
    finally:
        drop_scratch(client, raw["raw"])
    reload_if_loaded(client, "dict_user_recommendations")
    seconds = time.perf_counter() - t0
    version = " | ".join(m.version or "unregistered" for m, _ in passes)
    return {"model": model.spec_name, "version": version, "date": str(d), "users": done, "rows": rows,
            "seconds": round(seconds, 3), "table": "customer_recommendations"}
