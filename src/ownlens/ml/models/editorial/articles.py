"""Article performance: how big will an article be at 7 days, and how many of its readers will finish it?

Asked at publication (metadata, the author's record, what the brand's readers were reading) and again after 1, 3
and 6 hours of traction. One booster learns every stage: each training article appears once per stage with the
traction it had by then (``hours_observed``), later windows unknown. Trained on articles whose 7-day outcome was
known before the test date, judged on articles published from it on (Spearman and R2 of log views, precision of the
predicted top decile, completion R2), next to a baseline that extrapolates early views and an oracle: the same
learner given each article's true latent appeal (simulator truth), fitted on the same articles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, Field

from ownlens.ml.data.loaders import as_date, query_frame, resolve_brand
from ownlens.ml.errors import NotFound
from ownlens.ml.features.editorial import ARTICLE_FEATURES_SELECT, HORIZONS_H, OUTCOME_DAYS, TRACTION, events_span, midnight
from ownlens.ml.models.editorial.estimator import ArticlePerformanceRegressor
from ownlens.ml.models.lookup import lookup_frame
from ownlens.ml.models.oracle import simulated
from ownlens.ml.models.protocol import Evaluation, TrainingResult
from ownlens.ml.models.scoring import canonical_key, store_user_predictions
from ownlens.ml.models.spec import CategoryEncoder
from ownlens.ml.models.trained import TrainedModel
from ownlens.ml.warehouse import drop_scratch, replace_partition, scratch_table

NAME = "article_performance"
STAGES = (0, *HORIZONS_H)  # hours of traction known when a prediction is made
CATEGORICAL = ["brand_id", "category_id", "topic"]
METADATA = [*CATEGORICAL, "word_count", "has_video", "is_premium", "publish_hour", "publish_weekday", "author_articles_30d",
            "author_avg_log_views_7d", "author_avg_completion_7d", "category_views_24h", "topic_views_24h",
            "topic_views_growth_24h", "brand_views_24h"]
TRACTION_COLUMNS = [f"{k}_{h}h" for h in HORIZONS_H for k in TRACTION]
FEATURES = [*METADATA, "hours_observed", *TRACTION_COLUMNS]
TEST_DAYS = 7  # articles published in the week from the test date are judged


class ArticlePerformance(BaseModel):
    """An article's predicted performance with what was known of it then."""

    article_id: str
    brand_id: str
    published_at: str = Field(description="publication time (UTC)")
    as_of: str = Field(description="the time the prediction was made for: traction after it is not used")
    hours_observed: int = Field(description="hours of traction the prediction used: 0 (metadata only), 1, 3 or 6")
    views_observed: int = Field(description="views in those hours")
    predicted_views_7d: float = Field(description="predicted article views in the 7 days after publication")
    predicted_completion_rate_7d: float | None = Field(description="predicted share of views read to 75 % or more")
    feature_date: str = Field(description="the date of as_of")
    model_version: str


def rows(client: Client, start: datetime, end: datetime, as_of: datetime, articles=(), brand=None) -> pd.DataFrame:
    """Articles published in [start, end) before ``as_of``, with what was known of them at ``as_of``."""
    params = {"from": start, "to": end, "as_of": as_of, "articles": list(articles), "brand": brand}
    frame = query_frame(client, ARTICLE_FEATURES_SELECT, params)
    published = frame["publish_timestamp"]
    # (DateTime columns arrive as seconds since the epoch)
    return frame.assign(publish_timestamp=pd.to_datetime(published.astype("int64"), unit="s", utc=True)
                        if pd.api.types.is_numeric_dtype(published) else pd.to_datetime(published, utc=True))


def staged(frame: pd.DataFrame, stages=STAGES) -> pd.DataFrame:
    """Each article once per stage, with the traction windows closed by then (later ones NaN)."""
    parts = []
    for h in stages:
        part = frame.assign(hours_observed=h)
        later = [f"{k}_{hz}h" for hz in HORIZONS_H if hz > h for k in TRACTION]
        part[later] = np.nan
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def current_stage(frame: pd.DataFrame) -> pd.DataFrame:
    """Each article at the latest stage whose traction window has closed."""
    stage = np.zeros(len(frame), dtype=np.int64)
    for h in HORIZONS_H:
        stage = np.where(frame[f"views_{h}h"].notna(), h, stage)
    return frame.assign(hours_observed=stage)


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in FEATURES + ["views_7d", "readers_7d", "completion_rate_7d"]:
        if c in out and c not in CATEGORICAL:
            out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out


def views_observed(frame: pd.DataFrame) -> np.ndarray:
    out = np.zeros(len(frame))
    for h in HORIZONS_H:
        out = np.where(frame["hours_observed"] == h, frame[f"views_{h}h"].fillna(0), out)
    return out


# -- the extrapolation baseline: early views times their usual growth ------------------------------------------
def fit_baseline(train: pd.DataFrame) -> dict:
    """log1p(views at 7 days) - log1p(views after h hours), averaged per stage; the mean log outcome per brand and
    category for stage 0 (no views yet)."""
    y = np.log1p(train["views_7d"])
    growth = {str(h): float((y - np.log1p(train[f"views_{h}h"])).mean()) for h in HORIZONS_H}
    prior = train.assign(y=y).groupby(["brand_id", "category_id"])["y"].mean()
    return {"growth": growth, "mean": float(y.mean()), "prior": {f"{b}|{c}": float(v) for (b, c), v in prior.items()}}


def baseline_predictions(baseline: dict, frame: pd.DataFrame) -> np.ndarray:
    keys = frame["brand_id"].astype(str) + "|" + frame["category_id"].astype(str)
    out = keys.map(baseline["prior"]).fillna(baseline["mean"]).to_numpy(float)
    for h in HORIZONS_H:
        at = (frame["hours_observed"] == h).to_numpy()
        out[at] = np.log1p(frame.loc[at, f"views_{h}h"].to_numpy(float)) + baseline["growth"][str(h)]
    return out


# -- metrics ------------------------------------------------------------------------------------------------------
def top_decile_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Of the articles predicted in the top 10 %, the share that were in the top 10 %."""
    k = max(1, int(round(0.1 * len(y))))
    return float(len(np.intersect1d(np.argsort(-p, kind="stable")[:k], np.argsort(-y, kind="stable")[:k])) / k)


def stage_metrics(frame: pd.DataFrame, log_views: np.ndarray, completion: np.ndarray | None, prefix: str = "") -> dict:
    from scipy.stats import spearmanr
    from sklearn.metrics import r2_score

    out = {}
    y = np.log1p(frame["views_7d"].to_numpy(float))
    stage = frame["hours_observed"].to_numpy()
    for h in STAGES:
        at = stage == h
        if at.sum() < 3:
            continue
        out[f"{prefix}spearman_{h}h"] = float(spearmanr(y[at], log_views[at]).statistic)
        out[f"{prefix}r2_{h}h"] = float(r2_score(y[at], log_views[at]))
        out[f"{prefix}top_decile_precision_{h}h"] = top_decile_precision(y[at], log_views[at])
        if completion is not None:
            c = frame["completion_rate_7d"].to_numpy(float)[at]
            known = np.isfinite(c) & np.isfinite(completion[at])
            if known.sum() >= 3:
                out[f"{prefix}completion_r2_{h}h"] = float(r2_score(c[known], completion[at][known]))
    return out


# -- train and evaluate ------------------------------------------------------------------------------------------
@dataclass
class ArticleTest:
    """Articles published in the test week, once per stage, with their outcomes; the oracle's and the baseline's
    predictions (log1p views) on the same rows; once scored, the model's."""

    d: date
    frame: pd.DataFrame
    baseline: np.ndarray
    oracle: np.ndarray | None = field(default=None, repr=False)
    split: dict = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.frame)


def _span(client: Client) -> tuple[date, date]:
    first, last = events_span(client)
    return first.date(), last.date()


def _windows(client: Client, test_date=None, brand_id=None, limit: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Training articles (published from the data's second day until 7 days before the test date, so every outcome
    was known on it) and test articles (published in the week from the test date, outcomes complete)."""
    first, last = _span(client)
    end = last + timedelta(days=1)
    d = as_date(test_date, "test_date") if test_date else end - timedelta(days=TEST_DAYS + OUTCOME_DAYS)
    test_end = min(d + timedelta(days=TEST_DAYS), end - timedelta(days=OUTCOME_DAYS))
    train_start, train_end = first + timedelta(days=1), d - timedelta(days=OUTCOME_DAYS)
    if test_end <= d or train_end <= train_start:
        raise NotFound(f"editorial events cover {first} .. {last}: article performance needs articles with a complete "
                       f"{OUTCOME_DAYS}-day outcome before and after the test date; pick a test date from "
                       f"{train_start + timedelta(days=OUTCOME_DAYS + 1)} to {end - timedelta(days=OUTCOME_DAYS + 1)}")
    brand = resolve_brand(client, brand_id)
    train = rows(client, midnight(train_start), midnight(train_end), midnight(d), brand=brand)
    test = rows(client, midnight(d), midnight(test_end), midnight(end), brand=brand)
    train, test = train[train["views_7d"].notna()], test[test["views_7d"].notna()]
    if limit and len(train) > limit:
        train = train.nlargest(limit, "publish_timestamp")
    if len(train) < 20 or test.empty:
        raise NotFound(f"too few articles with a complete outcome ({len(train)} before {d}, {len(test)} from it): "
                       "simulate or load more days")
    split = {"kind": "time", "test_date": str(d), "train_dates": [str(train_start), str(train_end - timedelta(days=1))],
             "train_articles": len(train), "test_articles": len(test), "as_of_train": str(d)}
    return _numeric(train), _numeric(test), split


def _oracle(client: Client, train: pd.DataFrame, test: pd.DataFrame, encoder: CategoryEncoder, seed: int) -> np.ndarray | None:
    """The same learner given each article's true latent appeal, fitted on the training articles."""
    from ownlens.ml.models.estimators import OwnLensRegressor
    from ownlens.ml.models.spec import matrix

    if not simulated(client):
        return None
    ids = list(set(train["article_id"]) | set(test["article_id"]))
    truth = query_frame(client, "SELECT s.article_id AS id, s.quality AS appeal FROM sim_articles AS s "
                                "WHERE s.article_id IN {ids:Array(UUID)}", {"ids": ids})
    if truth.empty:
        return None
    appeal = truth.set_index("id")["appeal"]

    def X(frame):
        return np.column_stack([matrix(frame, FEATURES, encoder), frame["article_id"].map(appeal).to_numpy(float)])

    est = OwnLensRegressor(n_estimators=300, learning_rate=0.05, max_depth=4, random_state=seed)
    return est.fit(X(train), np.log1p(train["views_7d"].to_numpy(float))).predict(X(test))


def _test(client, train, test, split, seed, encoder=None) -> ArticleTest:
    train_s, test_s = staged(train), staged(test)
    encoder = encoder or CategoryEncoder.fit(train_s, CATEGORICAL)
    split = {**split, "train_rows": len(train_s), "test_rows": len(test_s)}
    return ArticleTest(date.fromisoformat(split["test_date"]), test_s, baseline_predictions(fit_baseline(train), test_s),
                       _oracle(client, train_s, test_s, encoder, seed), split)


def test_set(client: Client, *, test_date=None, brand_id=None, limit: int | None = None, seed: int = 0, **_) -> ArticleTest:
    train, test, split = _windows(client, test_date, brand_id, limit)
    return _test(client, train, test, split, seed)


def train(client: Client, *, test_date=None, brand_id=None, limit: int | None = None, seed: int = 0,
          algorithm: str = "xgboost", **_) -> TrainingResult:
    """Fit on the articles whose outcome was known by the test date (default: 14 days before the data ends), every
    stage; evaluate on the week of articles from the test date."""
    t0 = time.perf_counter()
    train_rows, test_rows, split = _windows(client, test_date, brand_id, limit)
    staged_train = staged(train_rows)
    encoder = CategoryEncoder.fit(staged_train, CATEGORICAL)
    from ownlens.ml.models.spec import matrix

    estimator = ArticlePerformanceRegressor(algorithm, random_state=seed).fit(
        matrix(staged_train, FEATURES, encoder), np.log1p(staged_train["views_7d"].to_numpy(float)),
        completion=staged_train["completion_rate_7d"].to_numpy(float))
    model = TrainedModel(NAME, "regression", FEATURES, encoder, estimator,
                         {"algorithm": algorithm, "trained_at": datetime.now(timezone.utc).isoformat(),
                          "baseline": fit_baseline(train_rows)})
    test = _test(client, train_rows, test_rows, split, seed, encoder)
    model.info["split"] = test.split
    evaluation = evaluate(client, model, test)
    window = (date.fromisoformat(split["train_dates"][0]), date.fromisoformat(split["train_dates"][1]))
    return TrainingResult(model, evaluation.metrics, evaluation.oracle_metrics, test.split, evaluation.scored, window,
                          {"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


def evaluate(client: Client, model: TrainedModel, test: ArticleTest) -> Evaluation:
    X = model.matrix(test.frame)
    log_views, completion = model.estimator.predict(X), model.estimator.predict_completion(X)
    metrics = {**stage_metrics(test.frame, log_views, completion), **stage_metrics(test.frame, test.baseline, None, "baseline_"),
               "articles": int(test.frame["article_id"].nunique()), "rows": test.rows}
    oracle = stage_metrics(test.frame, test.oracle, None) if test.oracle is not None else None
    scored = replace(test, frame=test.frame.assign(prediction=log_views, completion_prediction=completion,
                                                    baseline=test.baseline, oracle=test.oracle if test.oracle is not None else np.nan))
    return Evaluation(metrics, oracle, scored)


# -- scoring ------------------------------------------------------------------------------------------------------
def predict_frame(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions for articles at their latest closed stage."""
    frame = current_stage(_numeric(frame))
    X = model.matrix(frame)
    return frame.assign(views_observed=views_observed(frame), predicted_views_7d=np.expm1(model.estimator.predict(X)).clip(0),
                        predicted_completion_rate_7d=model.estimator.predict_completion(X))


def predict_batch(client: Client, model: TrainedModel, d, *, brand_id=None, progress=None, ab_test=None, **_) -> dict:
    """Every article published in the 7 days before ``d`` as known at the start of ``d``; replaces ``d``'s rows of
    editorial_article_predictions and ml_model_predictions (of the brand, if given)."""
    t0 = time.perf_counter()
    d = as_date(d, "date") if d else _span(client)[1] + timedelta(days=1)
    brand = resolve_brand(client, brand_id)
    frame = rows(client, midnight(d - timedelta(days=OUTCOME_DAYS)), midnight(d), midnight(d), brand=brand)
    if frame.empty:
        raise NotFound(f"no article was published in the {OUTCOME_DAYS} days before {d}" + (f" in brand {brand_id}" if brand_id else ""))
    scored = predict_frame(model, frame)
    decile = (10 - np.floor(scored["predicted_views_7d"].rank(ascending=False, method="first", pct=True).to_numpy() * 10 - 1e-9)).clip(1, 10)
    version, model_id = model.version or "unregistered", model.model_id
    table = pa.table({
        "article_id": pa.array(scored["article_id"].astype(str)), "prediction_date": pa.array([d] * len(scored), pa.date32()),
        "brand_id": pa.array(scored["brand_id"].astype(str)),
        "publish_timestamp": pa.array(pd.to_datetime(scored["publish_timestamp"]).dt.tz_localize(None).astype("datetime64[s]")),
        "hours_observed": pa.array(scored["hours_observed"].astype(np.uint8)),
        "views_observed": pa.array(scored["views_observed"].astype(np.uint64)),
        "predicted_views_7d": pa.array(scored["predicted_views_7d"].astype(float)),
        "predicted_completion_rate_7d": pa.array(scored["predicted_completion_rate_7d"].fillna(np.nan).astype(float)),
        "performance_decile": pa.array(decile.astype(np.uint8)),
        "model_id": pa.array([model_id] * len(scored), pa.string()), "model_version": pa.array([version] * len(scored)),
    })
    _write(client, d, table, brand)
    raw = scratch_table(client, "article_predictions")
    client.command(f"CREATE TABLE {raw} (article_id String, brand_id String, value Float64, label String) ENGINE = Memory")
    try:
        client.insert_arrow(raw, pa.table({"article_id": table["article_id"], "brand_id": table["brand_id"],
                                           "value": table["predicted_views_7d"],
                                           "label": pa.array([f"decile {int(x)}" for x in decile])}))
        store_user_predictions(client, model, d, raw, brand, entity_type="article")
    finally:
        drop_scratch(client, raw)
    if progress:
        progress(len(scored))
    seconds = time.perf_counter() - t0
    return {"model": NAME, "version": model.version, "date": str(d), "rows": len(scored), "seconds": round(seconds, 3),
            "rows_per_s": round(len(scored) / seconds) if seconds else None, "table": "editorial_article_predictions"}


def _write(client: Client, d: date, table: pa.Table, brand) -> None:
    staging = scratch_table(client, "article_rows")
    client.command(f"CREATE TABLE {staging} AS editorial_article_predictions ENGINE = Memory")
    try:
        names = [f.name for f in table.schema]
        client.insert_arrow(staging, table.cast(pa.schema([pa.field(n, table.schema.field(n).type) for n in names])))
        replace_partition(client, "editorial_article_predictions", d,
                          f"SELECT {', '.join(names)}, now() FROM {{staging:Identifier}}", {"staging": staging, "brand": brand},
                          keep="prediction_date = {p:Date} AND brand_id != {brand:UUID}" if brand else None)
    finally:
        drop_scratch(client, staging)


# -- single lookups ------------------------------------------------------------------------------------------------
PUBLISHED = "SELECT min(publish_timestamp), max(publish_timestamp) FROM editorial_articles WHERE article_id IN {ids:Array(UUID)}"


class ArticleServer:
    """An article's prediction as of now (the API's default) or the start of a given date, at the latest stage whose
    window had closed then; an article with no views yet gets its prediction from metadata."""

    entity = ("article_id",)

    def __init__(self, client: Client, model: TrainedModel, cache_ttl_s: float = 0.0):
        self.client, self.model = client, model

    def records(self, keys: list, feature_date=None, **_) -> tuple[list[dict], list]:
        keys = [canonical_key(self.entity, k) for k in keys]
        as_of = midnight(as_date(feature_date, "feature_date")) if feature_date is not None else datetime.now(timezone.utc).replace(microsecond=0)
        lo, hi = self.client.query(PUBLISHED, parameters={"ids": keys}).result_rows[0]
        frame = pd.DataFrame()
        if lo is not None and lo.year > 1970:
            lo, hi = (t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t for t in (lo, hi))
            frame = rows(self.client, lo, hi + timedelta(seconds=1), as_of, keys)
        if frame.empty:
            return [], keys
        scored = predict_frame(self.model, frame)
        version = self.model.version or "unregistered"
        records = [{"article_id": r.article_id, "brand_id": r.brand_id, "published_at": pd.Timestamp(r.publish_timestamp).isoformat(),
                    "as_of": as_of.isoformat(), "hours_observed": int(r.hours_observed), "views_observed": int(r.views_observed),
                    "predicted_views_7d": round(float(r.predicted_views_7d), 3),
                    "predicted_completion_rate_7d": None if not np.isfinite(r.predicted_completion_rate_7d)
                    else round(float(r.predicted_completion_rate_7d), 4),
                    "feature_date": str(as_of.date()), "model_version": version}
                   for r in scored.itertuples(index=False)]
        known = {r["article_id"] for r in records}
        order = {k: i for i, k in enumerate(keys)}
        return sorted(records, key=lambda r: order[r["article_id"]]), [k for k in keys if k not in known]

    def frame(self, keys: list, feature_date=None, **options) -> pd.DataFrame:
        return lookup_frame(*self.records(keys, feature_date, **options), "articles are unknown or not yet published then")

    def cached_record(self, key, **options) -> dict | None:
        return None


def server(client: Client, model: TrainedModel, cache_ttl_s: float = 0.0) -> ArticleServer:
    return ArticleServer(client, model, cache_ttl_s)


REALISED = """
SELECT count(), rankCorr(p.predicted_views_7d, toFloat64(ifNull(v.views, 0))),
       avg(abs(log1p(p.predicted_views_7d) - log1p(ifNull(v.views, 0)))), avg(p.predicted_views_7d), avg(ifNull(v.views, 0))
FROM editorial_article_predictions AS p
LEFT JOIN (
    SELECT e.article_id AS article_id, count() AS views
    FROM editorial_content_events AS e
    INNER JOIN (SELECT article_id, any(publish_timestamp) AS published FROM editorial_articles GROUP BY article_id) AS a
        ON a.article_id = e.article_id
    WHERE e.event_type = 'article_view' AND e.event_timestamp < a.published + INTERVAL 7 DAY
      AND e.article_id IN (SELECT article_id FROM editorial_article_predictions WHERE prediction_date = {d:Date})
    GROUP BY e.article_id
) AS v ON v.article_id = p.article_id
WHERE p.prediction_date = {d:Date}
  AND p.publish_timestamp + INTERVAL 7 DAY <= (SELECT max(event_timestamp) FROM editorial_content_events)
SETTINGS join_use_nulls = 1
"""


def realised(client: Client, d) -> dict | None:
    """How the predictions stored for ``d`` did once their articles' 7 days have passed (in ClickHouse): the rank
    correlation of predicted and actual views, and the mean absolute error of log views; None until then."""
    rows, spearman, mae_log, predicted, actual = client.query(REALISED, parameters={"d": as_date(d, "date")}).result_rows[0]
    if rows < 10:
        return None
    return {"rows": int(rows), "spearman": float(spearman), "mae_log_views": float(mae_log),
            "mean_predicted_views": float(predicted), "mean_views": float(actual)}


def stored_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query("SELECT DISTINCT prediction_date FROM editorial_article_predictions ORDER BY 1").result_rows]


def plots(result, plt) -> list[tuple[str, str]]:
    """Predicted vs actual views per stage; precision by predicted decile (lift), next to the baseline and oracle."""
    from ownlens.ml.data.exploration import _figure_html

    test = result.test.frame
    y = np.log1p(test["views_7d"].to_numpy(float))
    fig, axes = plt.subplots(1, len(STAGES), figsize=(4 * len(STAGES), 3.8), sharey=True)
    for ax, h in zip(axes, STAGES):
        at = (test["hours_observed"] == h).to_numpy()
        ax.scatter(np.expm1(test["prediction"].to_numpy()[at]), np.expm1(y[at]), s=4, alpha=0.4, label="model")
        top = float(np.expm1(y[at]).max()) if at.any() else 1
        ax.plot([0, top], [0, top], ls=":", color="grey")
        ax.set_title(f"after {h} h" if h else "at publication"); ax.set_xlabel("predicted views at 7 days")
    axes[0].set_ylabel("actual views at 7 days")
    fig.tight_layout()
    out = [("Predicted vs actual views at 7 days, by hours of traction known", _figure_html(fig))]
    fig, ax = plt.subplots(figsize=(9, 4))
    at = (test["hours_observed"] == 1).to_numpy()
    sub = test[at]
    for column, label in (("prediction", "model"), ("baseline", "extrapolated early views"), ("oracle", "oracle (true appeal)")):
        if sub[column].notna().all():
            decile = pd.qcut(sub[column].rank(method="first"), 10, labels=False)
            lift = sub.assign(d=decile).groupby("d")["views_7d"].mean() / max(sub["views_7d"].mean(), 1e-9)
            ax.plot(lift.index + 1, lift.to_numpy(), marker="o", label=label)
    ax.axhline(1, ls=":", color="grey"); ax.set_xlabel("predicted decile after 1 hour (10 = biggest)")
    ax.set_ylabel("mean views / all articles' mean"); ax.legend(fontsize=8); ax.set_title("Lift by predicted decile")
    out.append(("Lift by decile (after one hour of traction)", _figure_html(fig)))
    return out
