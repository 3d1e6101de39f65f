"""Training and evaluation of the recommender: the blend is learnt on one date's next-7-day reads and judged on a
later date's, next to each signal alone and next to the oracle (the simulator's reading preferences)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client
from scipy import sparse

from ownlens.ml.data.loaders import as_date, resolve_brand
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import oracle
from ownlens.ml.models.content.recommendation import signals as S
from ownlens.ml.models.content.recommendation import sql
from ownlens.ml.models.content.recommendation.estimator import HybridRecommender, ranking_metrics, top_k
from ownlens.ml.models.protocol import Evaluation, TrainingResult
from ownlens.ml.models.spec import CategoryEncoder
from ownlens.ml.models.trained import TrainedModel

NAME = "recommendation"
DEFAULT_SAMPLE = 5_000


@dataclass
class RecommendationTest:
    """A date's candidates and a sample of users who read any of them in the 7 days after: their reading before the
    date, their reads after it (``truth``, already-read articles excluded), and everyone's reads of the week before
    (for the date's co-reading model). Once scored, ``top`` holds the version's top-k."""

    d: date
    candidates: pd.DataFrame
    user_ids: np.ndarray
    profile: pd.DataFrame
    recent: pd.DataFrame
    everyone: pd.DataFrame
    truth: sparse.csr_matrix
    oracle_scores: np.ndarray | None = field(default=None, repr=False)  # simulator truth (evaluation only)
    top: np.ndarray | None = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        return len(self.user_ids)


def dates_with_horizon(client: Client) -> list[date]:
    return [r[0] for r in client.query(sql.DATES_WITH_HORIZON, parameters={"h": sql.HORIZON_DAYS}).result_rows]


def judged(client: Client, d: date, brand_id=None, sample: int = DEFAULT_SAMPLE, with_oracle: bool = True) -> RecommendationTest:
    """The users of ``d`` a ranking can be judged on (a hash sample who read a candidate within a week), with their reads."""
    cands = sql.candidates(client, d)
    if cands.empty:
        raise NotFound(f"no articles were published in the {sql.CANDIDATE_DAYS} days before {d}: nothing to recommend")
    params: dict = {"d": d, "horizon": sql.HORIZON_DAYS, "candidates": cands["article_id"].tolist(), "sample": sample,
                    "brand": resolve_brand(client, brand_id)}
    ids, profile, recent = sql.user_reads(client, cands, d, sql.JUDGED_USERS, params)
    if len(ids) == 0:
        raise NotFound(f"no user read any of {d}'s candidate articles in the {sql.HORIZON_DAYS} days after it: "
                       "pick an earlier date with a week of data after it")
    end = d + timedelta(days=sql.HORIZON_DAYS)
    later = S.counts(sql.read_counts(client, cands, sql.JUDGED_USERS, params, d, end), len(ids), len(cands))
    read = S.counts(recent, len(ids), len(cands))
    truth = (later - later.multiply(read > 0)).tocsr()  # already-read articles are never recommended, nor judged
    truth.eliminate_zeros()
    scores = oracle.reading_scores(client, cands, ids, d, end) if with_oracle else None
    return RecommendationTest(d, cands, ids, profile, recent, sql.everyone_reads(client, cands, d), truth, scores)


def test_set(client: Client, *, test_date=None, brand_id=None, limit: int | None = DEFAULT_SAMPLE, seed: int = 0, **_) -> RecommendationTest:
    """The judged users of ``test_date`` (default: the latest feature date with a week of reading after it)."""
    dates = dates_with_horizon(client)
    if not dates and test_date is None:
        raise NotFound(f"no feature date has {sql.HORIZON_DAYS} days of reading after it: build features for an earlier date")
    return judged(client, as_date(test_date, "test_date") if test_date else dates[-1], brand_id, _sample(limit))


def _sample(limit) -> int:
    sample = int(limit or DEFAULT_SAMPLE)
    if sample < 10:
        raise InvalidInput(f"--limit must be at least 10 users for recommendation (got {limit})")
    return sample


def _prepared(model_or_est, test: RecommendationTest) -> tuple[S.DateContext, S.UserBatch]:
    est = getattr(model_or_est, "estimator", model_or_est)
    ctx = S.context(test.candidates, test.d, est)
    batch = S.user_batch(ctx, test.user_ids, test.profile, test.recent, est)
    S.fit_co_reading(ctx, S.counts(test.everyone, int(test.everyone["i"].max()) + 1 if len(test.everyone) else 0,
                                   len(test.candidates)), est)
    return ctx, batch


def train(client: Client, *, feature_date=None, test_date=None, brand_id=None, limit: int | None = DEFAULT_SAMPLE,
          seed: int = 0, **_) -> TrainingResult:
    """Learn the blend on ``feature_date`` (default: the latest date whose week of reads ends by the test date) and
    evaluate on ``test_date`` (default: the latest feature date with a week of reads after it); ``limit`` users each."""
    t0 = time.perf_counter()
    sample = _sample(limit)
    test = test_set(client, test_date=test_date, brand_id=brand_id, limit=sample)
    earlier = [d for d in dates_with_horizon(client) if d + timedelta(days=sql.HORIZON_DAYS) <= test.d]
    fit_d = as_date(feature_date, "feature_date") if feature_date else (earlier[-1] if earlier else test.d)
    est = HybridRecommender(random_state=seed)
    fit_on = test if fit_d == test.d else judged(client, fit_d, brand_id, sample, with_oracle=False)
    ctx, batch = _prepared(est, fit_on)
    found = S.signals(ctx, batch, slice(None), est)
    unread = (batch.recent > 0).toarray() == 0  # what the user read already is never recommended, nor learnt from
    est.fit(S.design(found, list(S.SIGNALS), unread), (fit_on.truth.toarray() > 0)[unread],
            groups=np.broadcast_to(np.arange(len(fit_on.user_ids))[:, None], unread.shape)[unread])
    model = TrainedModel(NAME, "ranking", list(S.SIGNALS), CategoryEncoder({}), est,
                         {"algorithm": algorithm(est), "trained_at": datetime.now(timezone.utc).isoformat()})
    evaluation = evaluate(client, model, test)
    split = {"kind": "time" if fit_d != test.d else "same date", "train_dates": [str(fit_d)], "test_date": str(test.d),
             "train_rows": sample, "test_rows": evaluation.metrics["users"]}
    model.info["split"] = split
    return TrainingResult(model, evaluation.metrics, evaluation.oracle_metrics, split, evaluation.scored, (fit_d, fit_d),
                          {"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


def algorithm(est: HybridRecommender) -> str:
    """What the blend uses, for the registry: the signals with a weight (co-reading named by its method)."""
    used = [("co-reading-" + est.collaborative.replace("_", "-")) if name == "collaborative" else name.replace("_", "-")
            for name, w in zip(S.SIGNALS, est.weights_) if w]
    return "hybrid(" + "+".join(used) + ")"


def evaluate(client: Client, model: TrainedModel, test: RecommendationTest) -> Evaluation:
    """Precision, recall, hit rate and NDCG at k of ``model``'s top-k on the test users' next week of reading,
    each signal alone, catalog coverage, and the oracle's ranking on the same users."""
    est = model.estimator
    ctx, batch = _prepared(model, test)
    found = S.signals(ctx, batch, slice(None), est)
    compared = {name: ranking_metrics(top_k(found[name], batch.recent, est.k)[0], test.truth) for name in S.SIGNALS}
    top, _ = top_k(est.blend([found[name] for name in model.features]), batch.recent, est.k)
    metrics = ranking_metrics(top, test.truth)
    metrics["catalog_coverage"] = float(len(np.unique(top)) / len(ctx.candidates))
    metrics["candidates"] = len(ctx.candidates)
    metrics["weights"] = dict(zip(model.features, map(float, est.weights_)))
    metrics["signals_alone"] = {k: {m: v[m] for m in ("precision_at_k", "recall_at_k")} for k, v in compared.items()}
    oracle_metrics = None
    if test.oracle_scores is not None:
        oracle_metrics = ranking_metrics(top_k(test.oracle_scores, batch.recent, est.k)[0], test.truth)
    return Evaluation(metrics, oracle_metrics, replace(test, top=top))


def plots(result, plt) -> list[tuple[str, str]]:
    """precision@10 and recall@10 of each signal alone, the hybrid and the oracle, on the same users."""
    from ownlens.ml.models.reports import bars

    series = {name: v for name, v in result.metrics["signals_alone"].items()}
    series["hybrid (model)"] = {m: result.metrics[m] for m in ("precision_at_k", "recall_at_k")}
    if result.oracle_metrics:
        series["oracle"] = {m: result.oracle_metrics[m] for m in ("precision_at_k", "recall_at_k")}
    by_metric = {m: {name: values[m] for name, values in series.items()} for m in ("precision_at_k", "recall_at_k")}
    k = result.model.estimator.k
    return [bars(plt, f"{m} (k={k}) on the test users' next {sql.HORIZON_DAYS} days of reading", {m: v}, m)
            for m, v in by_metric.items()]
