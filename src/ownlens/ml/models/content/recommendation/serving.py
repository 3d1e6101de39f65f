"""Reads of the recommender: users' recommendations now (the newest stored batch, else computed live), the realised
performance of a stored batch, and the outcomes of an A/B test of two recommenders."""

from __future__ import annotations

import time
from datetime import date

import numpy as np
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, Field

from ownlens.ml.data.loaders import query_frame
from ownlens.ml.errors import NotFound
from ownlens.ml.models.content.recommendation import signals as S
from ownlens.ml.models.content.recommendation import sql
from ownlens.ml.models.content.recommendation.batch import prepared
from ownlens.ml.models.content.recommendation.estimator import TOP_K, top_k
from ownlens.ml.models.lookup import LookupServer
from ownlens.ml.models.trained import TrainedModel

CONTEXT_TTL_S = 60.0  # a live lookup reuses the date's candidates and co-reading model this long


class Recommended(BaseModel):
    article_id: str
    rank: int
    score: float


class Recommendations(BaseModel):
    """A user's top articles."""

    user_id: str
    model_version: str
    recommendation_date: str
    source: str = Field(description="`batch`: stored by the latest batch run; `live`: computed now (users the batch did not "
                                    "cover, or more than it keeps).")
    cold_start: bool = Field(False, description="The user has no reading history: popular and fresh articles.")
    recommendations: list[Recommended]


class RecommendationOptions(BaseModel):
    k: int = Field(TOP_K, ge=1, le=100, description=f"How many articles (the batch keeps {TOP_K}; more are computed live).")


def stored(client: Client, users: list[str], d: date, k: int = TOP_K) -> dict[str, dict]:
    """Users' stored recommendations of the newest batch on or before ``d`` (the in-memory dictionary when it holds
    that date's batch, else the table), by user."""
    out: dict[str, dict] = {}
    try:
        rows = client.query(sql.STORED_DICT, parameters={"users": users}).result_rows
    except Exception:  # the dictionary is missing or cannot load: the table answers
        rows = []
    for user, day, articles, scores, version in rows:
        if articles and day == d:
            n = min(k, len(articles))
            out[user] = {"model_version": version, "recommendation_date": str(day),
                         "recommendations": [{"article_id": str(a), "rank": i + 1, "score": float(s)}
                                             for i, (a, s) in enumerate(zip(articles[:n], scores[:n]))]}
    rest = [u for u in users if u not in out]
    if rest:
        table = query_frame(client, sql.STORED, {"users": rest, "d": d, "k": k})
        for user, group in table.groupby("user_id", sort=False):
            out[user] = {"model_version": str(group["model_version"].iloc[0]),
                         "recommendation_date": str(group["recommendation_date"].iloc[0]),
                         "recommendations": [{"article_id": a, "rank": int(r), "score": float(s)}
                                             for a, r, s in zip(group["article_id"], group["rank"], group["score"])]}
    return out


def live(client: Client, model: TrainedModel, users: list[str], d: date, k: int = TOP_K,
         ctx: S.DateContext | None = None) -> list[dict]:
    """Recommendations computed now for given users (cold users get popular and fresh articles)."""
    ctx = ctx or prepared(client, model, d)
    ids, profile, recent = sql.user_reads(client, ctx.candidates, d, sql.GIVEN_USERS, {"users": users})
    batch = S.user_batch(ctx, ids, profile, recent, model.estimator)
    top, scores = top_k(S.scores(model, ctx, batch, slice(None)), batch.recent, k)
    cold = np.asarray(batch.profile.getnnz(axis=1) == 0)
    articles = ctx.candidates["article_id"].to_numpy()
    position = {u: i for i, u in enumerate(batch.user_ids)}
    out = []
    for user in users:
        i = position[user]
        picked = [(articles[j], float(s)) for j, s in zip(top[i], scores[i]) if np.isfinite(s)]  # a user who read every candidate gets fewer
        out.append({"user_id": user, "model_version": model.version or "unregistered", "recommendation_date": str(d),
                    "source": "live", "cold_start": bool(cold[i]),
                    "recommendations": [{"article_id": a, "rank": r + 1, "score": round(s, 6)} for r, (a, s) in enumerate(picked)]})
    return out


def server(client: Client, model: TrainedModel, cache_ttl_s: float = 0.0) -> LookupServer:
    """Each user's newest stored top-k when the batch covers them (``source: batch``), else computed now; the date's
    context (candidates, co-reading) is kept a minute between live lookups."""
    contexts: dict[date, tuple[float, S.DateContext]] = {}

    def lookup(client: Client, model: TrainedModel, users: list[str], d: date, k: int = TOP_K) -> tuple[list[dict], list]:
        k = RecommendationOptions(k=k).k
        found = stored(client, users, d, k) if k <= TOP_K else {}
        records = {u: {"user_id": u, "source": "batch", "cold_start": False, **r} for u, r in found.items()}
        missing = [u for u in users if u not in records]
        if missing:
            hit = contexts.get(d)
            if hit is None or hit[0] < time.monotonic():
                contexts.clear()
                contexts[d] = hit = (time.monotonic() + CONTEXT_TTL_S, prepared(client, model, d))
            records |= {r["user_id"]: r for r in live(client, model, missing, d, k, hit[1])}
        return [records[u] for u in users], []

    return LookupServer(client, model, lookup, cache_ttl_s=cache_ttl_s, cacheable=True, explode="recommendations")


def realised(client: Client, d: date) -> dict | None:
    """How many of ``d``'s stored recommendations were read in the 7 days after it (all users, in SQL); None until
    those days have passed."""
    params = {"d": d, "h": sql.HORIZON_DAYS}
    if not int(client.command(sql.READING_KNOWN, parameters=params)):
        return None
    version, recommended, hits, users, users_hit = client.query(sql.REALISED, parameters=params).result_rows[0]
    if not recommended:
        raise NotFound(f"no stored recommendations for {d}: run `ownlens-ml predict recommendation --date {d}` first")
    return {"model_version": version, "realised_precision_at_k": hits / recommended, "realised_hit_rate_at_k": users_hit / users,
            "users": users}


def stored_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query(sql.STORED_DATES).result_rows]


def ab_outcomes(client: Client, test, dates: list[date] | None = None) -> dict:
    """Each arm's users, once each (their first batch), who read at least one article recommended to them within 7
    days, over the batches made under the test (holding both arms) after what both versions learnt from."""
    from ownlens.ml.models.trained import load
    from ownlens.ml.registry.abtests import unseen_dates

    if not dates:
        rows = client.query(sql.TEST_BATCHES, parameters={"s": test.start, "a": test.version_a, "b": test.version_b}).result_rows
        dates = [r[0] for r in rows if test.end is None or r[0] <= test.end]
    versions = {"A": load(client, "recommendation", test.version_a), "B": load(client, "recommendation", test.version_b)}
    dates, excluded = unseen_dates(dates, versions, sql.HORIZON_DAYS)
    out: dict = {"dates": [str(d) for d in dates], "excluded_dates": excluded,
                 "outcome": "users who read an article recommended to them (in their first batch) within 7 days",
                 "arms": {}, "counts": {}}
    if not dates:
        return {**out, "reason": f"no recommendation batch under the test since {test.start} with {sql.HORIZON_DAYS} days of "
                                 "reading after it, after what both versions learnt from, yet: run `ownlens-ml predict "
                                 "recommendation` while the test runs, and wait a week"}
    found = {arm: rest for arm, *rest in client.query(sql.ARM_OUTCOMES, parameters={
        "test": test.test_id, "split": test.split, "dates": dates, "version_a": test.version_a,
        "version_b": test.version_b}).result_rows}
    for arm, version in (("A", test.version_a), ("B", test.version_b)):
        if arm not in found:
            return {**out, "reason": f"variant {arm} ({version}) stored no recommendations on {out['dates']}: run "
                                     "`ownlens-ml predict recommendation` while the test runs (it stores each user's arm)"}
        users, users_hit, recommended, hits = found[arm]
        out["counts"][arm] = (int(users_hit), int(users))
        out["arms"][arm] = {"version": version, "users": int(users),
                            "hit_rate": users_hit / users, "precision_at_k": hits / recommended if recommended else None}
    return out
