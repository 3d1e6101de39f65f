"""Training and evaluation of segmentation: fit on one feature date, judge on a later one.

Judged by silhouette, Davies-Bouldin and Calinski-Harabasz on the test date, by how many users keep their
segment from the date before, and (the oracle check) by how much of the users' true latent traits the segments
separate, next to random segments of the same sizes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import as_date, query_frame, resolve_brand
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import oracle
from ownlens.ml.models.customer.segmentation import sql
from ownlens.ml.models.customer.segmentation.estimator import KMeansSegmenter
from ownlens.ml.models.protocol import Evaluation, TrainingResult
from ownlens.ml.models.spec import CategoryEncoder
from ownlens.ml.models.trained import TrainedModel

NAME = "segmentation"
DEFAULT_LIMIT = 200_000
EVALUATION_SAMPLE = 10_000  # rows the silhouette is computed on


@dataclass
class SegmentationTest:
    """The users of a test date (and of the date before, for stability) with their inputs; once scored, their segments."""

    d: date
    frame: pd.DataFrame
    previous: pd.DataFrame | None = None
    traits: pd.DataFrame | None = field(default=None, repr=False)  # the simulator's latent traits (evaluation only)
    seed: int = 0

    @property
    def rows(self) -> int:
        return len(self.frame)


def inputs(client: Client, d: date, brand_id=None, limit: int | None = None) -> pd.DataFrame:
    """The segmentation inputs of ``d``'s users (a fixed hash sample of ``limit``)."""
    params = {"d": d, "brand": resolve_brand(client, brand_id), "limit": int(limit or 0)}
    frame = query_frame(client, sql.DATE_SAMPLE if limit else sql.DATE_INPUTS, params)
    if frame.empty:
        raise NotFound(f"no user features on {d}: run `ownlens-ml features build --date {d}` first")
    return frame


def feature_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query(sql.FEATURE_DATES).result_rows]


def test_set(client: Client, *, test_date=None, brand_id=None, limit: int | None = DEFAULT_LIMIT, seed: int = 0, **_) -> SegmentationTest:
    """The users of ``test_date`` (default: the latest feature date) and of the feature date before it."""
    dates = feature_dates(client)
    if not dates:
        raise NotFound("no user features yet: run `ownlens-ml features build --date YYYY-MM-DD` first")
    d = as_date(test_date, "test_date") if test_date else dates[-1]
    frame = inputs(client, d, brand_id, limit)
    earlier = [x for x in dates if x < d]
    previous = inputs(client, earlier[-1], brand_id, limit) if earlier else None
    return SegmentationTest(d, frame, previous, oracle.user_traits(client, d, frame["user_id"].tolist()), seed)


def train(client: Client, *, feature_date=None, test_date=None, brand_id=None, limit: int | None = DEFAULT_LIMIT,
          n_clusters: int | None = None, seed: int = 0, **_) -> TrainingResult:
    """Fit on ``feature_date`` (default: the feature date before ``test_date``) and evaluate on ``test_date``
    (default: the latest feature date)."""
    t0 = time.perf_counter()
    if n_clusters is not None and n_clusters < 2:
        raise InvalidInput(f"--clusters must be at least 2 (got {n_clusters})")
    test = test_set(client, test_date=test_date, brand_id=brand_id, limit=limit, seed=seed)
    earlier = [d for d in feature_dates(client) if d < test.d]
    fit_d = as_date(feature_date, "feature_date") if feature_date else (earlier[-1] if earlier else test.d)
    fit_rows = inputs(client, fit_d, brand_id, limit)
    names = list(sql.INPUTS)
    estimator = KMeansSegmenter(n_clusters, random_state=seed).fit(fit_rows[names])
    model = TrainedModel(NAME, "clustering", names, CategoryEncoder({}), estimator,
                         {"algorithm": "kmeans-pca", "trained_at": datetime.now(timezone.utc).isoformat()})
    if fit_d != test.d and (test.previous is None or earlier[-1] != fit_d):
        test = replace(test, previous=fit_rows)  # stability against the fitted date's users
    evaluation = evaluate(client, model, test)
    split = {"kind": "time" if fit_d != test.d else "same date", "train_dates": [str(fit_d)], "test_date": str(test.d),
             "train_rows": len(fit_rows), "test_rows": test.rows}
    model.info["split"] = split
    return TrainingResult(model, evaluation.metrics, evaluation.oracle_metrics, split, evaluation.scored, (fit_d, fit_d),
                          {"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


def evaluate(client: Client, model: TrainedModel, test: SegmentationTest) -> Evaluation:
    """Clustering metrics of ``model``'s segments of the test users, their stability from the date before, and the
    share of the users' true latent traits they separate (next to random segments of the same sizes)."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    est = model.estimator
    X = test.frame[model.features]
    labels = est.predict(X)
    P = est._project(X)
    rng = np.random.default_rng(test.seed)
    sample = rng.choice(len(P), min(len(P), EVALUATION_SAMPLE), replace=False)
    several = len(np.unique(labels)) > 1
    metrics = {
        "n_segments": int(est.n_clusters_),
        "silhouette": float(silhouette_score(P[sample], labels[sample])) if several and len(np.unique(labels[sample])) > 1 else None,
        "davies_bouldin": float(davies_bouldin_score(P, labels)) if several else None,
        "calinski_harabasz": float(calinski_harabasz_score(P, labels)) if several else None,
        "segment_shares": {est.segment_names_[c]: float(np.mean(labels == c)) for c in range(est.n_clusters_)},
    }
    if test.previous is not None:  # the same users a date earlier: how many stay in their segment
        before = test.previous[["user_id"]].assign(before=est.predict(test.previous[model.features]))
        both = before.merge(test.frame[["user_id"]].assign(after=labels), on="user_id")
        metrics["stability"] = float((both["before"] == both["after"]).mean()) if len(both) else None
    oracle_metrics = None
    if test.traits is not None:
        separated = oracle.separation(test.traits, test.frame["user_id"], labels)
        metrics["truth_separation"] = separated["mean"]
        # what segments of the same sizes drawn at random reach
        metrics["truth_separation_random"] = oracle.separation(test.traits, test.frame["user_id"], rng.permutation(labels))["mean"]
        oracle_metrics = {"truth_separation_by_trait": separated}
    scored = replace(test, frame=test.frame.assign(segment=labels, segment_name=np.asarray(est.segment_names_, dtype=object)[labels]))
    return Evaluation(metrics, oracle_metrics, scored)


def plots(result, plt) -> list[tuple[str, str]]:
    """Segment sizes, each segment's profile (inputs in standard deviations from all users), truth separation."""
    from ownlens.ml.data.exploration import _figure_html
    from ownlens.ml.models.reports import bars

    test = result.test.frame
    names = result.model.features
    out = [bars(plt, "Segment sizes on the test date", {"share of users": result.metrics["segment_shares"]}, "share of users")]
    z = (test.groupby("segment_name")[names].mean() - test[names].mean()) / test[names].std().replace(0, 1)
    fig, ax = plt.subplots(figsize=(11, 0.6 * len(z) + 2))
    image = ax.imshow(z.to_numpy(), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_yticks(range(len(z)), z.index)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    fig.colorbar(image, ax=ax, label="sd from all users")
    out.append(("Segment profiles (mean of each input, in standard deviations from all users)", _figure_html(fig)))
    truth = (result.oracle_metrics or {}).get("truth_separation_by_trait")
    if truth:
        out.append(bars(plt, "Share of each true latent trait's variance between segments (simulator truth; random segments ≈ 0)",
                        {"segments": {k: v for k, v in truth.items() if k != "mean"}}, "eta squared"))
    return out
