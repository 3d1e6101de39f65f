"""User segmentation: K-Means on PCA of behavioural features (seed 003), stored in customer_user_segments.

The inputs come from customer_user_features of a date (so they are point in time). Training fits the
scaler, PCA and K-Means on one feature date (the number of segments picked by silhouette unless given)
and evaluates on a later date: silhouette, Davies-Bouldin and Calinski-Harabasz, how stable the
assignment is from one date to the next, and, as the oracle check, how much of the users' true latent
traits (simulator) the segments separate. Segments are named after the trait they stand out on, the
segment types seed 003 lists. ``assign`` writes customer_user_segment_assignments,
customer_user_segments (profiles computed in SQL) and ml_model_predictions.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from sklearn.base import ClusterMixin, TransformerMixin
from sklearn.utils.validation import validate_data

from ownlens.ml.data.loaders import as_date, latest_feature_date, query_frame
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models.base import BaseMLModel, BaseTaskPredictor, BaseTaskTrainer
from ownlens.ml.models.data import brand_filter
from ownlens.ml.models.estimators import JsonStateEstimator
from ownlens.ml.models.model import TrainedModel
from ownlens.ml.models.prediction import store_user_predictions
from ownlens.ml.models.spec import TaskModel
from ownlens.ml.warehouse import replace_partition

if TYPE_CHECKING:  # annotations only
    from ownlens.ml.models.training import TrainingResult

# name -> SQL over customer_user_features (uf); heavy-tailed counts on a log scale
INPUTS = {
    "sessions_last_30d": "log1p(uf.sessions_last_30d)",
    "active_days_last_30d": "uf.active_days_last_30d",
    "days_since_last_session": "log1p(uf.days_since_last_session)",
    "avg_session_duration_sec": "log1p(uf.avg_session_duration_sec)",
    "articles_per_session": "JSONExtractFloat(uf.ml_features, 'avg_articles_per_session')",
    "engagement_score": "uf.engagement_score",
    "avg_scroll_depth": "uf.avg_scroll_depth",
    "click_through_rate": "uf.click_through_rate",
    "video_share": "uf.total_video_plays / greatest(uf.total_article_views, 1)",
    "has_newsletter": "uf.has_newsletter",
    "is_subscriber": "uf.is_subscriber",
    "mobile_first": "dictGetOrDefault('dict_device_types', 'device_type_name', uf.preferred_device_type_id, '') = 'mobile'",
    "category_diversity": "uf.category_diversity",
    "weekend_session_share": "JSONExtractFloat(uf.ml_features, 'weekend_session_share')",
    "evening_session_share": "JSONExtractFloat(uf.ml_features, 'evening_session_share')",
    "ad_click_rate": "JSONExtractFloat(uf.ml_features, 'ad_click_rate')",
}

# a segment is named after the trait it stands out on most (mean >= 0.4 sd above or below all users)
NAMES = (
    ("is_subscriber", 1, "Paying subscribers"),
    ("has_newsletter", 1, "Newsletter subscribers"),
    ("video_share", 1, "Video consumers"),
    ("sessions_last_30d", 1, "High-engagement users"),
    ("avg_session_duration_sec", 1, "In-depth readers"),
    ("avg_session_duration_sec", -1, "Quick skimmers"),
    ("days_since_last_session", 1, "Lapsing readers"),
    ("mobile_first", 1, "Mobile-first users"),
    ("mobile_first", -1, "Desktop readers"),
    ("ad_click_rate", 1, "Ad clickers"),
    ("weekend_session_share", 1, "Weekend readers"),
    ("evening_session_share", 1, "Evening readers"),
)
STANDS_OUT = 0.4

# the simulator's latent traits the segments should separate (the oracle check)
TRUTH = """
SELECT toString(u.user_id) AS user_id, log(u.activity_rate) AS log_activity_rate, u.ad_responsiveness AS ad_responsiveness,
       u.click_affinity AS click_affinity, t.churn_probability AS churn_probability,
       t.conversion_probability AS conversion_probability
FROM sim_users AS u
INNER JOIN sim_user_truth AS t ON t.user_id = u.user_id AND t.feature_date = {d:Date}
WHERE u.user_id IN (SELECT toUUID(arrayJoin({users:Array(String)})))
"""


def inputs_sql(where: str = "") -> str:
    columns = ",\n    ".join(f"toFloat64({sql}) AS {name}" for name, sql in INPUTS.items())
    return f"""
SELECT toString(uf.user_id) AS user_id, toString(uf.brand_id) AS brand_id,
    {columns}
FROM customer_user_features AS uf
WHERE uf.feature_date = {{d:Date}}{where}
"""


class KMeansSegmenter(ClusterMixin, TransformerMixin, JsonStateEstimator):
    """Median imputation, standard scaling, PCA (``variance`` kept) and K-Means, as one scikit-learn estimator.

    ``n_clusters=None`` picks the number with the best silhouette between ``min_clusters`` and ``max_clusters``
    on a sample of ``selection_rows``. ``predict`` gives segment numbers, ``transform`` distances to the
    segment centres, ``confidence`` how much nearer the nearest centre is than the second (0..1).
    """

    fitted_attributes = ("n_features_in_", "medians_", "mean_", "scale_", "pca_mean_", "components_", "centers_",
                         "n_clusters_", "silhouette_by_k_", "segment_names_", "sizes_")

    def __init__(self, n_clusters=None, *, min_clusters=3, max_clusters=8, variance=0.9, selection_rows=10_000,
                 random_state=0):
        self.n_clusters = n_clusters
        self.min_clusters = min_clusters
        self.max_clusters = max_clusters
        self.variance = variance
        self.selection_rows = selection_rows
        self.random_state = random_state

    def fit(self, X, y=None, input_names: list[str] | None = None):
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.metrics import silhouette_score

        X = validate_data(self, X, ensure_all_finite="allow-nan", reset=True)
        if len(X) < 2:
            raise ValueError(f"segmentation needs at least 2 rows, got {len(X)}")
        medians = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0) if np.isnan(X).any() else np.median(X, axis=0)
        self.medians_ = np.nan_to_num(medians)
        filled = np.where(np.isnan(X), self.medians_, X)
        self.mean_, scale = filled.mean(0), filled.std(0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (filled - self.mean_) / self.scale_
        n_components = self.variance if 0 < self.variance < 1 and min(Z.shape) > 1 else min(Z.shape)
        pca = PCA(n_components=n_components, svd_solver="full", random_state=self.random_state).fit(Z)
        self.pca_mean_, self.components_ = pca.mean_, pca.components_
        P = pca.transform(Z)
        rng = np.random.default_rng(self.random_state)
        sample = P[rng.choice(len(P), min(len(P), self.selection_rows), replace=False)]
        self.silhouette_by_k_ = {}
        if self.n_clusters is None:
            top = min(self.max_clusters, len(sample) - 1)
            for k in range(min(self.min_clusters, top), top + 1):
                labels = KMeans(k, n_init=3, random_state=self.random_state).fit_predict(sample)
                if len(np.unique(labels)) > 1:
                    self.silhouette_by_k_[str(k)] = float(silhouette_score(sample, labels))
            k = int(max(self.silhouette_by_k_, key=self.silhouette_by_k_.get)) if self.silhouette_by_k_ else 1
        else:
            k = int(self.n_clusters)
        km = KMeans(min(k, len(P)), n_init=5, random_state=self.random_state).fit(P)
        self.centers_, self.n_clusters_, self.labels_ = km.cluster_centers_, int(km.n_clusters), km.labels_
        self.sizes_ = np.bincount(self.labels_, minlength=self.n_clusters_) / len(P)
        self.segment_names_ = name_segments(filled, self.labels_, self.n_clusters_, input_names or list(INPUTS))
        return self

    def _project(self, X) -> np.ndarray:
        X = validate_data(self, X, ensure_all_finite="allow-nan", reset=False)
        filled = np.where(np.isnan(X), self.medians_, X)
        return ((filled - self.mean_) / self.scale_ - self.pca_mean_) @ self.components_.T

    def transform(self, X) -> np.ndarray:
        P = self._project(X)
        return np.sqrt(((P[:, None, :] - self.centers_[None, :, :]) ** 2).sum(-1))

    def predict(self, X) -> np.ndarray:
        return self.transform(X).argmin(1)

    def confidence(self, X) -> np.ndarray:
        d = np.sort(self.transform(X), axis=1)
        if d.shape[1] < 2:
            return np.ones(len(d))
        return np.clip(1 - d[:, 0] / np.maximum(d[:, 1], 1e-12), 0, 1)

    def feature_importances(self) -> np.ndarray:
        """How far apart the segment centres lie along each input (standardised), as shares of the total."""
        centres = self.centers_ @ self.components_ + self.pca_mean_
        spread = (np.asarray(self.sizes_)[:, None] * (centres - centres.T @ np.asarray(self.sizes_)) ** 2).sum(0)
        return spread / spread.sum() if spread.sum() > 0 else np.full(len(spread), 1 / len(spread))


def name_segments(X: np.ndarray, labels: np.ndarray, k: int, names: list[str]) -> list[str]:
    """Seed 003's segment types: each segment after the trait it stands out on most (unique names)."""
    mean, sd = X.mean(0), np.where(X.std(0) > 0, X.std(0), 1.0)
    z = np.array([(X[labels == c].mean(0) - mean) / sd if (labels == c).any() else np.zeros(X.shape[1]) for c in range(k)])
    out: list[str] = []
    for c in range(k):
        scored = sorted(((direction * z[c, names.index(col)], label) for col, direction, label in NAMES if col in names),
                        reverse=True)
        picks = [label for score, label in scored if score >= STANDS_OUT and label not in out]
        if picks:
            out.append(picks[0])
            continue
        base = "Casual browsers" if "sessions_last_30d" in names and z[c, names.index("sessions_last_30d")] < 0 else "Regular readers"
        label, n = base, 2
        while label in out:
            label, n = f"{base} {n}", n + 1
        out.append(label)
    return out


def _frame(client: Client, d: date, brand_id=None, limit: int | None = None) -> pd.DataFrame:
    params: dict = {"d": d}
    where = brand_filter(client, brand_id, params)
    sql = inputs_sql(where)
    if limit:
        sql += " ORDER BY cityHash64(uf.user_id) LIMIT {limit:UInt64}"
        params["limit"] = int(limit)
    frame = query_frame(client, sql, params)
    if frame.empty:
        raise NotFound(f"no user features on {d}: run `ownlens-ml features build --date {d}` first")
    return frame


def _feature_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query("SELECT DISTINCT feature_date FROM customer_user_features ORDER BY feature_date").result_rows]


def truth_separation(client: Client, d: date, users: pd.Series, labels: np.ndarray) -> dict | None:
    """Share of each true latent trait's variance lying between segments (eta squared); None without simulator truth."""
    truth = query_frame(client, TRUTH, {"d": d, "users": users.tolist()})
    if truth.empty:
        return None
    frame = truth.merge(pd.DataFrame({"user_id": users.to_numpy(), "segment": labels}), on="user_id")
    out = {}
    for trait in [c for c in truth.columns if c != "user_id"]:
        values = frame[trait].astype(float)
        total = ((values - values.mean()) ** 2).sum()
        between = (frame.groupby("segment")[trait].transform("mean") - values.mean()).pow(2).sum()
        out[trait] = float(between / total) if total > 0 else 0.0
    out["mean"] = float(np.mean(list(out.values())))
    return out


def train(client: Client, *, feature_date=None, test_date=None, brand_id=None, limit: int | None = 200_000,
          n_clusters: int | None = None, register: bool = True, seed: int = 0, **_) -> "TrainingResult":
    """Fit on ``feature_date`` (default: the feature date before ``test_date``) and evaluate on ``test_date``
    (default: the latest feature date); returns the result with clustering metrics and the truth separation."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    from ownlens.ml.models.training import finish_task_training, recorded_run

    dates = _feature_dates(client)
    if not dates:
        raise NotFound("no user features yet: run `ownlens-ml features build --date YYYY-MM-DD` first")
    test_d = as_date(test_date, "test_date") if test_date else dates[-1]
    earlier = [d for d in dates if d < test_d]
    fit_d = as_date(feature_date, "feature_date") if feature_date else (earlier[-1] if earlier else test_d)
    parameters = {"feature_date": fit_d, "test_date": test_d, "brand_id": brand_id, "limit": limit,
                  "n_clusters": n_clusters, "seed": seed}
    with recorded_run(client, SEGMENTATION.name, parameters) as run:
        t0 = time.perf_counter()
        if n_clusters is not None and n_clusters < 2:
            raise InvalidInput(f"--clusters must be at least 2 (got {n_clusters})")
        fit_rows = _frame(client, fit_d, brand_id, limit)
        names = list(INPUTS)
        estimator = KMeansSegmenter(n_clusters, random_state=seed).fit(fit_rows[names].to_numpy(float), input_names=names)
        test = _frame(client, test_d, brand_id, limit)
        X = test[names].to_numpy(float)
        labels = estimator.predict(X)
        P = estimator._project(X)
        rng = np.random.default_rng(seed)
        sample = rng.choice(len(P), min(len(P), 10_000), replace=False)
        several = len(np.unique(labels)) > 1
        metrics = {
            "n_segments": estimator.n_clusters_,
            "silhouette": float(silhouette_score(P[sample], labels[sample])) if several and len(np.unique(labels[sample])) > 1 else None,
            "davies_bouldin": float(davies_bouldin_score(P, labels)) if several else None,
            "calinski_harabasz": float(calinski_harabasz_score(P, labels)) if several else None,
            "segment_shares": {estimator.segment_names_[c]: float(np.mean(labels == c)) for c in range(estimator.n_clusters_)},
        }
        if fit_d != test_d:  # the same users a date later: how many stay in their segment
            both = fit_rows[["user_id"]].assign(before=estimator.labels_).merge(test[["user_id"]].assign(after=labels), on="user_id")
            metrics["stability"] = float((both["before"] == both["after"]).mean()) if len(both) else None
        separation = truth_separation(client, test_d, test["user_id"], labels)
        oracle = None
        if separation is not None:  # the same, for segments drawn at random in the same sizes
            shuffled = truth_separation(client, test_d, test["user_id"], rng.permutation(labels))
            metrics["truth_separation"] = separation["mean"]
            metrics["truth_separation_random"] = shuffled["mean"]  # what segments of the same sizes drawn at random reach
            oracle = {"truth_separation_by_trait": separation}
        split = {"kind": "time" if fit_d != test_d else "same date", "train_dates": [str(fit_d)], "test_date": str(test_d),
                 "train_rows": len(fit_rows), "test_rows": len(test)}
        test = test.assign(segment=labels, segment_name=np.asarray(estimator.segment_names_, dtype=object)[labels])
        return finish_task_training(client, SEGMENTATION, estimator, names, metrics, oracle, split, (fit_d, fit_d), run,
                                    register, test, {"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


def segment_ids(model: TrainedModel) -> list[str]:
    """Stable segment ids: one per (registered model, segment number)."""
    base = uuid.UUID("6f1d2c3a-5b7e-4c1d-9a2b-0c4e5f6a7b8c")
    key = model.model_id or f"unregistered {model.version}"
    return [str(uuid.uuid5(base, f"{key}:{c}")) for c in range(model.estimator.n_clusters_)]


def assign(client: Client, model: TrainedModel, d, brand_id=None, progress=None, batch_rows: int = 250_000) -> dict:
    """Assign every user of ``d`` to a segment; replaces that date's assignments (of the brand, if given)."""
    t0 = time.perf_counter()
    d = as_date(d) if d else latest_feature_date(client)
    params: dict = {"d": d}
    where = brand_filter(client, brand_id, params)
    source = inputs_sql(where)
    total = int(client.command(f"SELECT count() FROM ({source})", parameters=params))
    if total == 0:
        raise NotFound(f"no user features on {d}" + (f" for brand {brand_id}" if brand_id else "") +
                       f": run `ownlens-ml features build --date {d}` first")
    ids, names, est = segment_ids(model), model.estimator.segment_names_, model.estimator
    parts, chunks, done = max(1, -(-total // batch_rows)), [], 0
    for part in range(parts):
        frame = query_frame(client, f"SELECT * FROM ({source}) WHERE cityHash64(user_id) % {{parts:UInt64}} = {{part:UInt64}}",
                            params | {"parts": parts, "part": part})
        X = frame[model.features].to_numpy(float)
        distances = est.transform(X)
        labels = distances.argmin(1)
        ordered = np.sort(distances, axis=1)
        confidence = np.clip(1 - ordered[:, 0] / np.maximum(ordered[:, 1], 1e-12), 0, 1) if ordered.shape[1] > 1 else np.ones(len(X))
        chunks.append(pa.table({"user_id": pa.array(frame["user_id"].astype(str)), "brand_id": pa.array(frame["brand_id"].astype(str)),
                                "segment": pa.array(labels.astype(np.int32)), "confidence": pa.array(confidence)}))
        done += len(frame)
        if progress:
            progress(done)
    raw = f"_segments_{uuid.uuid4().hex[:12]}"
    client.command(f"CREATE TABLE {raw} (user_id String, brand_id String, segment Int32, confidence Float64) ENGINE = Memory")
    try:
        client.insert_arrow(raw, pa.concat_tables(chunks))
        write = {"d": d, "ids": ids, "names": list(names), "version": model.version or "unregistered",
                 "model_id": model.model_id or "", **params}
        keep_brand = where.replace("uf.brand_id = {brand:UUID}", "brand_id != {brand:UUID}")
        replace_partition(client, "customer_user_segment_assignments", d, f"""
SELECT toUUID(user_id), toUUID({{ids:Array(String)}}[segment + 1]), {{d:Date}}, toUUID(brand_id), confidence,
       toUUIDOrNull({{model_id:String}}), {{version:String}}, now()
FROM {raw}""", write, keep=f"assignment_date = {{d:Date}}{keep_brand}" if brand_id else None)
        store_user_predictions(client, model, d, raw, "confidence", "{names:Array(String)}[segment + 1]", write, brand_id)
    finally:
        client.command(f"DROP TABLE IF EXISTS {raw}")
    _write_profiles(client, model, d)
    seconds = time.perf_counter() - t0
    return {"model": SEGMENTATION.name, "version": model.version, "date": str(d), "rows": done, "seconds": round(seconds, 3),
            "rows_per_s": round(done / seconds) if seconds else None, "table": SEGMENTATION.output_table}


PROFILE = """
INSERT INTO customer_user_segments
SELECT s.segment_id, {names:Array(String)}[indexOf({ids:Array(String)}, toString(s.segment_id))],
       {descriptions:Array(String)}[indexOf({ids:Array(String)}, toString(s.segment_id))], NULL,
       toUUIDOrNull({model_id:String}), {version:String},
       toJSONString(map('assignment_date', toString({d:Date}), 'share', toString(round(count() / any(t.n), 4)),
                        'avg_sessions_last_30d', toString(round(avg(uf.sessions_last_30d), 2)),
                        'avg_session_duration_sec', toString(round(avg(uf.avg_session_duration_sec), 1)),
                        'avg_engagement_score', toString(round(avg(uf.engagement_score), 2)),
                        'avg_days_since_last_session', toString(round(avg(uf.days_since_last_session), 1)),
                        'video_share', toString(round(sum(uf.total_video_plays) / greatest(sum(uf.total_article_views), 1), 3)),
                        'newsletter_share', toString(round(avg(uf.has_newsletter), 3)),
                        'subscriber_share', toString(round(avg(uf.is_subscriber), 3)),
                        'mobile_share', toString(round(avg(dictGetOrDefault('dict_device_types', 'device_type_name', uf.preferred_device_type_id, '') = 'mobile'), 3)))),
       count(), now()
FROM customer_user_segment_assignments AS s
INNER JOIN customer_user_features AS uf ON uf.user_id = s.user_id AND uf.feature_date = {d:Date}
CROSS JOIN (SELECT count() AS n FROM customer_user_segment_assignments WHERE assignment_date = {d:Date}
            AND model_version = {version:String}) AS t
WHERE s.assignment_date = {d:Date} AND s.model_version = {version:String}
GROUP BY s.segment_id
"""


def _write_profiles(client: Client, model: TrainedModel, d: date) -> None:
    """customer_user_segments: one row per segment of this version, its profile computed in SQL for ``d``."""
    names = list(model.estimator.segment_names_)
    descriptions = [f"{n}: {model.estimator.sizes_[i]:.0%} of users when fitted; segmentation {model.version}"
                    for i, n in enumerate(names)]
    client.command(PROFILE, parameters={"d": d, "ids": segment_ids(model), "names": names, "descriptions": descriptions,
                                        "model_id": model.model_id or "", "version": model.version or "unregistered"})


def profiles(client: Client, version: str | None = None) -> pd.DataFrame:
    """The segments of a version (default: every version), newest first, profile JSON parsed."""
    rows = query_frame(client, "SELECT segment_id, segment_name, model_version, user_count, segment_profile, created_at "
                               "FROM customer_user_segments FINAL WHERE {version:String} = '' OR model_version = {version:String} "
                               "ORDER BY created_at DESC, user_count DESC", {"version": version or ""})
    rows["segment_profile"] = rows["segment_profile"].map(json.loads)
    return rows


def segment_of(client: Client, model: TrainedModel, user_ids: list[str], d: date) -> pd.DataFrame:
    """The segment of given users on ``d`` from their features (the model's assignment, computed now)."""
    frame = query_frame(client, inputs_sql(" AND uf.user_id IN {users:Array(UUID)}"), {"d": d, "users": list(user_ids)})
    if frame.empty:
        return pd.DataFrame(columns=["user_id", "brand_id", "segment_id", "segment_name", "confidence", "feature_date", "model_version"])
    X = frame[model.features].to_numpy(float)
    labels, confidence = model.estimator.predict(X), model.estimator.confidence(X)
    ids = np.asarray(segment_ids(model), dtype=object)
    return pd.DataFrame({"user_id": frame["user_id"], "brand_id": frame["brand_id"], "segment_id": ids[labels],
                         "segment_name": np.asarray(model.estimator.segment_names_, dtype=object)[labels],
                         "confidence": confidence.round(4), "feature_date": str(d), "model_version": model.version})


def plots(result, plt) -> list[tuple[str, str]]:
    """Segment sizes, each segment's profile (inputs in standard deviations from all users), truth separation."""
    from ownlens.ml.models.evaluation import _figure_html, bars

    test = result.test
    inputs = result.model.features
    out = [bars(plt, "Segment sizes on the test date", {"share of users": result.metrics["segment_shares"]}, "share of users")]
    z = (test.groupby("segment_name")[inputs].mean() - test[inputs].mean()) / test[inputs].std().replace(0, 1)
    fig, ax = plt.subplots(figsize=(11, 0.6 * len(z) + 2))
    image = ax.imshow(z.to_numpy(), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_yticks(range(len(z)), z.index)
    ax.set_xticks(range(len(inputs)), inputs, rotation=60, ha="right")
    fig.colorbar(image, ax=ax, label="sd from all users")
    out.append(("Segment profiles (mean of each input, in standard deviations from all users)", _figure_html(fig)))
    truth = (result.oracle_metrics or {}).get("truth_separation_by_trait")
    if truth:
        out.append(bars(plt, "Share of each true latent trait's variance between segments (simulator truth; random segments ≈ 0)",
                        {"segments": {k: v for k, v in truth.items() if k != "mean"}}, "eta squared"))
    return out


def realised(client: Client, d: date) -> dict:
    """How the users' segments of ``d`` moved since the previous assignment date of the same version: the segment
    shares' drift (PSI, JS; computed in ClickHouse) as ``prediction_drift``, and each segment's share."""
    from ownlens.ml.monitoring.drift import column_drift

    version = client.command("SELECT any(model_version) FROM customer_user_segment_assignments WHERE assignment_date = {d:Date}",
                             parameters={"d": d})
    if not version:
        raise NotFound(f"no segment assignments for {d}: run `ownlens-ml predict segmentation --date {d}` first")
    params = {"d": d, "v": version}
    shares = client.query("SELECT s.segment_name, count() / (SELECT count() FROM customer_user_segment_assignments "
                          "WHERE assignment_date = {d:Date} AND model_version = {v:String}) FROM customer_user_segment_assignments AS a "
                          "INNER JOIN (SELECT segment_id, any(segment_name) AS segment_name FROM customer_user_segments FINAL "
                          "GROUP BY segment_id) AS s ON s.segment_id = a.segment_id "
                          "WHERE a.assignment_date = {d:Date} AND a.model_version = {v:String} GROUP BY s.segment_name",
                          parameters=params).result_rows
    out: dict = {"model_version": version, **{f"segment_share:{name}": float(share) for name, share in shares}}
    reference = client.command("SELECT max(assignment_date) FROM customer_user_segment_assignments WHERE assignment_date < {d:Date} "
                               "AND model_version = {v:String}", parameters=params)
    if reference and str(reference) != "1970-01-01":
        values = ("SELECT toString(segment_id) AS v, assignment_date = {ref:Date} AS is_ref FROM customer_user_segment_assignments "
                  "WHERE assignment_date IN ({ref:Date}, {d:Date}) AND model_version = {v:String}")
        out["prediction_drift"] = column_drift(client, values, {**params, "ref": as_date(reference)}, "segment", "categorical")
        out["reference"] = as_date(reference)
    return out


def stored_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query("SELECT DISTINCT assignment_date FROM customer_user_segment_assignments ORDER BY 1").result_rows]


SEGMENTATION = TaskModel(
    name="segmentation",
    task="clustering",
    description="Behavioural user segments (K-Means on PCA of customer_user_features)",
    algorithm="kmeans-pca",
    output_table="customer_user_segment_assignments",
    train=train,
    predict_batch=assign,
    primary_metric="silhouette",
    plots=plots,
    realised=realised,
    stored_dates=stored_dates,
)


class SegmentationModel(BaseMLModel):
    spec = SEGMENTATION


class SegmentationTrainingPipeline(BaseTaskTrainer):
    task, model_class = SEGMENTATION, SegmentationModel


class SegmentationPredictor(BaseTaskPredictor):
    """``SegmentationPredictor().predict(user_id)``: the user's segment id, name and confidence."""

    task = SEGMENTATION

    def _lookup(self, user_ids, d, **options):
        return segment_of(self.client, self.model, user_ids, d)
