"""Trending: per brand and hour, which categories, topics and articles are read far above their usual level.

Every hour each item (a category, a topic, an article) has its views, its velocity (views in the hour) and
acceleration (the change from the hour before), and an expectation: its own views over the two weeks before the last
day, spread over the week by the hour-of-week profile of all readers (so 2 a.m. on a Sunday expects little). Categories
and topics are scored by how far above that expectation they are (the burst detector's z-score, see ``burst``) and
flagged as a burst when far enough; articles, too young for a baseline of their own, by their seasonally adjusted
velocity. Stored per brand and hour, top 20 per level, with the reason in words.

Judged on the simulator's injected topic bursts (``sim_topic_bursts``): a burst is found when any hour of it is
flagged for its topic (its category), a flagged run of hours is right when it overlaps a burst of its item (up to 12
hours after the burst's end, while the burst's articles are still read); with the detection delay in hours. The
oracle flags exactly the burst hours with enough views to be seen.
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

from ownlens.ml.data.loaders import as_date, as_uuid, query_frame, resolve_brand
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.features.editorial import events_span, midnight
from ownlens.ml.models.editorial.burst import HOURS_PER_WEEK
from ownlens.ml.models.lookup import lookup_frame
from ownlens.ml.models.oracle import simulated
from ownlens.ml.models.protocol import Evaluation, TrainingResult
from ownlens.ml.models.spec import CategoryEncoder
from ownlens.ml.models.trained import TrainedModel
from ownlens.ml.warehouse import drop_scratch, replace_partition, scratch_table

NAME = "trending"
LEVELS = ("category", "topic", "article")
FEATURES = ["hour_of_week", "views", "weekly_volume", "hour_index"]
TOP_K = 20  # stored per brand, hour and level
HISTORY_DAYS = 15  # an hour's baseline: its item's views from 15 days to 1 day before it (two weeks)
TEST_DAYS = 14  # two weeks: a brand has about four bursts in them
AFTER_END_H = 12  # a flag this long after a burst's end still belongs to it (its articles are still read)
GAP_H = 2  # flagged hours this close are one episode
H = 3600

SERIES_SQL = """
WITH hourly AS (
    SELECT e.brand_id AS brand_id, toStartOfHour(e.event_timestamp) AS hour, e.category_id AS category_id,
           a.topic AS topic, e.article_id AS article_id, count() AS n
    FROM editorial_content_events AS e
    INNER JOIN (SELECT article_id, any(topic) AS topic FROM editorial_articles
                WHERE ({brand:Nullable(UUID)} IS NULL OR brand_id = {brand:Nullable(UUID)}) GROUP BY article_id) AS a
        ON a.article_id = e.article_id
    WHERE e.event_type = 'article_view' AND e.event_timestamp >= {history:DateTime} AND e.event_timestamp < {to:DateTime}
      AND ({brand:Nullable(UUID)} IS NULL OR e.brand_id = {brand:Nullable(UUID)})
    GROUP BY brand_id, hour, category_id, topic, article_id
),
items AS (
    SELECT brand_id, hour, 'category' AS level, toString(category_id) AS item, toUInt64(sum(n)) AS views, toUInt64(max(n)) AS top_views
    FROM hourly WHERE has({levels:Array(String)}, 'category') GROUP BY brand_id, hour, category_id
    UNION ALL
    SELECT brand_id, hour, 'topic' AS level, toString(topic) AS item, toUInt64(sum(n)) AS views, toUInt64(max(n)) AS top_views
    FROM hourly WHERE has({levels:Array(String)}, 'topic') GROUP BY brand_id, hour, topic
    UNION ALL
    SELECT brand_id, hour, 'article' AS level, toString(article_id) AS item, toUInt64(sum(n)) AS views, toUInt64(max(n)) AS top_views
    FROM hourly WHERE has({levels:Array(String)}, 'article') AND hour >= {from:DateTime} - 3600
    GROUP BY brand_id, hour, article_id
)
SELECT toString(brand_id) AS brand_id, toUInt32(hour) AS hour_s, level, item, views, top_views, volume / 2 AS weekly_volume,
       previous_views
FROM (
    SELECT brand_id, hour, level, item, views, top_views,
           sum(views) OVER (PARTITION BY brand_id, level, item ORDER BY toUInt32(hour)
                            RANGE BETWEEN 1292400 PRECEDING AND 86400 PRECEDING) AS volume,
           sum(views) OVER (PARTITION BY brand_id, level, item ORDER BY toUInt32(hour)
                            RANGE BETWEEN 3600 PRECEDING AND 3600 PRECEDING) AS previous_views
    FROM items
)
WHERE hour >= {from:DateTime}
"""

TRUTH_SQL = """
SELECT toString(brand_id) AS brand_id, toString(category_id) AS category_id, toString(topic) AS topic,
       toUInt32(start_at) AS start_s, toUInt32(end_at) AS end_s, intensity
FROM sim_topic_bursts
WHERE end_at > {from:DateTime} AND start_at < {to:DateTime} AND ({brand:Nullable(UUID)} IS NULL OR brand_id = {brand:Nullable(UUID)})
"""


def true_bursts(client: Client, start, end, brand) -> pd.DataFrame:
    """The simulator's bursts overlapping [start, end) (of one brand, or all); none in a warehouse it never ran in."""
    if not simulated(client):
        return pd.DataFrame(columns=["brand_id", "category_id", "topic", "start_s", "end_s", "intensity"])
    return query_frame(client, TRUTH_SQL, {"from": start, "to": end, "brand": brand})


class TrendingItem(BaseModel):
    """One trending category, topic or article in an hour."""

    level: str = Field(description="category, topic or article")
    item: str = Field(description="the category or article id, or the topic's name")
    name: str = Field(description="what an editor calls it: the category's name, the topic, the article's title")
    hour: str = Field(description="the hour (UTC) the views were counted in")
    rank: int
    views: int = Field(description="views in the hour (the velocity)")
    expected_views: float = Field(description="its usual views in that hour of the week")
    acceleration: int = Field(description="views in the hour less views in the hour before")
    score: float = Field(description="categories and topics: z-score against the usual level; articles: views per hour "
                                     "adjusted for the hour of the week")
    is_burst: bool
    reason: str


class Trending(BaseModel):
    """What was trending in a brand in the latest hour with views before ``as_of``, and the bursts of the window."""

    brand_id: str
    as_of: str = Field(description="the end of the window: views after it are not used")
    hours: int = Field(description="the window's length in hours")
    hour: str = Field(description="the latest hour with views in the window, whose lists these are")
    categories: list[TrendingItem]
    topics: list[TrendingItem]
    articles: list[TrendingItem]
    bursts: list[TrendingItem] = Field(description="every category and topic hour flagged as a burst in the window")
    feature_date: str
    model_version: str


class TrendingOptions(BaseModel):
    hours: int = Field(24, ge=1, le=168, description="The window: the hours before as_of (or the feature date) looked at.")
    k: int = Field(10, ge=1, le=TOP_K, description="How many items per level.")


def series(client: Client, start: datetime, end: datetime, brand=None, levels=LEVELS) -> pd.DataFrame:
    """Every item's hours with views in [start, end), with its usual weekly volume and the hour before's views."""
    frame = query_frame(client, SERIES_SQL, {"from": start, "to": end, "history": start - timedelta(days=HISTORY_DAYS),
                                             "brand": brand, "levels": list(levels)})
    if frame.empty:
        return frame.assign(hour_of_week=pd.Series(dtype=int), hour_index=pd.Series(dtype=int))
    hour = pd.to_datetime(frame["hour_s"].astype("int64"), unit="s", utc=True)
    return frame.assign(hour=hour, hour_of_week=(hour.dt.dayofweek * 24 + hour.dt.hour).to_numpy(),
                        hour_index=frame["hour_s"].astype("int64") // H,
                        views=frame["views"].astype(float), weekly_volume=frame["weekly_volume"].astype(float),
                        previous_views=frame["previous_views"].astype(float))


# -- scoring ------------------------------------------------------------------------------------------------------
def score(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Expected views, acceleration, score and burst flag of every row (articles are never bursts)."""
    detector = model.estimator
    X = frame[model.features].to_numpy(float)  # (the version's own inputs: older versions have fewer)
    article = (frame["level"] == "article").to_numpy()
    adjusted = frame["views"].to_numpy(float) / (HOURS_PER_WEEK * detector.profile_[frame["hour_of_week"].to_numpy(int)])
    return frame.assign(expected_views=detector.expected(X), acceleration=frame["views"] - frame["previous_views"],
                        score=np.where(article, adjusted, detector.decision_function(X)),
                        is_burst=np.where(article, 0, detector.predict(X)).astype(np.uint8))


def reasons(frame: pd.DataFrame) -> list[str]:
    out = []
    for r in frame.itertuples(index=False):
        change = f"{'up' if r.acceleration >= 0 else 'down'} {abs(int(r.acceleration))} on the hour before"
        if r.level == "article":
            out.append(f"{int(r.views)} views in the hour ({r.score:.0f} adjusted for the hour of the week), {change}")
        else:
            usual = f"{r.views / max(r.expected_views, 0.1):.1f}x its usual {r.expected_views:.1f} for {r.hour:%a %H}:00"
            lead = f"; its top article has {r.top_views / max(r.views, 1):.0%} of them" if r.views else ""
            out.append(f"{'burst: ' if r.is_burst else ''}{int(r.views)} views, {usual}, {change}{lead}")
    return out


def ranked(frame: pd.DataFrame, k: int = TOP_K) -> pd.DataFrame:
    """The top ``k`` per brand, hour and level by score, ranked from 1, with their names and reasons."""
    if frame.empty:
        return frame.assign(rank=pd.Series(dtype=int), reason=pd.Series(dtype=str))
    top = frame.sort_values(["brand_id", "hour_s", "level", "score", "views", "item"],  # (ties by name: the same list every time)
                            ascending=[True, True, True, False, False, True], kind="stable")
    top = top.assign(rank=top.groupby(["brand_id", "hour_s", "level"]).cumcount() + 1)
    top = top[top["rank"] <= k].reset_index(drop=True)
    return top.assign(reason=reasons(top))


def names_of(client: Client, frame: pd.DataFrame) -> pd.Series:
    """Category names and article titles for the items of ``frame`` (topics are their own names)."""
    cats = [c for c in frame.loc[frame["level"] == "category", "item"].unique()]
    arts = [a for a in frame.loc[frame["level"] == "article", "item"].unique()]
    known: dict[str, str] = {}
    if cats:
        known |= dict(client.query("SELECT toString(category_id), any(category_name) FROM categories "
                                   "WHERE category_id IN {ids:Array(UUID)} GROUP BY category_id", parameters={"ids": cats}).result_rows)
    if arts:
        known |= dict(client.query("SELECT toString(article_id), any(title) FROM editorial_articles "
                                   "WHERE article_id IN {ids:Array(UUID)} GROUP BY article_id", parameters={"ids": arts}).result_rows)
    return frame["item"].map(lambda i: known.get(i, i))


# -- the test: hours after the training history, against the injected bursts ---------------------------------------
@dataclass
class TrendTest:
    """Category and topic hours of the test window, with the injected bursts over them (empty without simulator
    truth); ``truth`` marks hours inside a burst of the row's item."""

    test_date: date
    frame: pd.DataFrame = field(repr=False)
    bursts: pd.DataFrame = field(repr=False)
    split: dict

    @property
    def rows(self) -> int:
        return len(self.frame)

    def __len__(self) -> int:
        return len(self.frame)


def _truth(frame: pd.DataFrame, bursts: pd.DataFrame) -> np.ndarray:
    inside = np.zeros(len(frame), dtype=bool)
    if bursts.empty or frame.empty:
        return inside
    hour, brand, item, level = (frame[c].to_numpy() for c in ("hour_s", "brand_id", "item", "level"))
    for b in bursts.itertuples(index=False):
        key = np.where(level == "topic", b.topic, b.category_id)
        inside |= (brand == b.brand_id) & (item == key) & (hour + H > b.start_s) & (hour < b.end_s)
    return inside


def episodes(frame: pd.DataFrame, flags: np.ndarray) -> pd.DataFrame:
    """Runs of flagged hours per brand, level and item (gaps up to ``GAP_H`` hours joined)."""
    flagged = frame.loc[flags.astype(bool), ["brand_id", "level", "item", "hour_s"]].sort_values(["brand_id", "level", "item", "hour_s"])
    if flagged.empty:
        return pd.DataFrame(columns=["brand_id", "level", "item", "start_s", "end_s"])
    hour = flagged["hour_s"].to_numpy(np.int64)
    same = (flagged[["brand_id", "level", "item"]].to_numpy() == np.roll(flagged[["brand_id", "level", "item"]].to_numpy(), 1, axis=0)).all(axis=1)
    new = ~same | (np.diff(hour, prepend=hour[0] - 10**9) > GAP_H * H)
    new[0] = True
    run = np.cumsum(new)
    return flagged.assign(run=run).groupby("run").agg(brand_id=("brand_id", "first"), level=("level", "first"),
                                                      item=("item", "first"), start_s=("hour_s", "min"), end_s=("hour_s", "max"))


def detection_metrics(frame: pd.DataFrame, flags: np.ndarray, bursts: pd.DataFrame, weeks: float) -> dict:
    """Per level: precision of flagged episodes, recall of bursts, F1, median detection delay (hours from a burst's
    start to its first flagged hour) and false alarms per brand and week."""
    found = episodes(frame, flags)
    brands = max(frame["brand_id"].nunique(), 1)
    out = {}
    for level, key, prefix in (("topic", "topic", ""), ("category", "category_id", "category_")):
        eps = found[found["level"] == level]
        right = np.zeros(len(eps), dtype=bool)
        delays = []
        for b in bursts.itertuples(index=False):
            mine = (eps["brand_id"] == b.brand_id).to_numpy() & (eps["item"] == getattr(b, key)).to_numpy()
            overlap = mine & (eps["end_s"].to_numpy() + H > b.start_s) & (eps["start_s"].to_numpy() < b.end_s + AFTER_END_H * H)
            right |= overlap
            during = mine & (eps["end_s"].to_numpy() + H > b.start_s) & (eps["start_s"].to_numpy() < b.end_s)
            if during.any():
                began = int(b.start_s) // H * H  # (in whole hours: the hour it began in is hour 0)
                delays.append((max(int(eps["start_s"].to_numpy()[during].min()), began) - began) / H)
        n_bursts = len(bursts)
        precision = float(right.mean()) if len(eps) else None  # (nothing flagged: no precision, but no F1 either)
        recall = len(delays) / n_bursts if n_bursts else None
        f1 = None if recall is None else (2 * precision * recall / (precision + recall) if precision and recall else 0.0)
        out |= {f"{prefix}burst_precision": precision, f"{prefix}burst_recall": recall, f"{prefix}burst_f1": f1,
                f"{prefix}detection_delay_h": float(np.median(delays)) if delays else None,
                f"{prefix}false_alarms_per_brand_week": round(float((~right).sum()) / brands / max(weeks, 1e-9), 3),
                f"{prefix}episodes": int(len(eps))}
    out["bursts"] = int(len(bursts))
    return out


def _windows(client: Client, test_date, brand_id, seed=0) -> TrendTest:
    first, last = events_span(client)
    start = (first + timedelta(days=HISTORY_DAYS)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    end = last.replace(minute=0, second=0, microsecond=0)
    d = midnight(as_date(test_date, "test_date")) if test_date else midnight((end - timedelta(days=TEST_DAYS)).date())
    test_end = min(d + timedelta(days=TEST_DAYS), end)
    if not (start + timedelta(days=2) <= d < test_end):
        raise NotFound(f"article views cover {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}: trending learns its profile "
                       f"from {HISTORY_DAYS} days of history and at least 2 more before the test date; pick a test date "
                       f"from {(start + timedelta(days=2)).date()} to {(end - timedelta(hours=1)).date()}")
    brand = resolve_brand(client, brand_id)
    frame = series(client, d, test_end, brand, ("category", "topic"))
    bursts = true_bursts(client, d, test_end, brand)
    frame = frame.assign(truth=_truth(frame, bursts))
    split = {"kind": "time", "test_date": str(d.date()), "test_end": test_end.isoformat(), "test_rows": len(frame),
             "train_from": start.isoformat(), "train_dates": [str(start.date()), str((d - timedelta(days=1)).date())],
             "bursts": len(bursts)}
    return TrendTest(d.date(), frame, bursts, split)


def test_set(client: Client, *, test_date=None, brand_id=None, seed: int = 0, **_) -> TrendTest:
    return _windows(client, test_date, brand_id, seed)


def evaluate(client: Client, model: TrainedModel, test: TrendTest) -> Evaluation:
    scored = score(model, test.frame)
    weeks = (pd.Timestamp(test.split["test_end"]) - pd.Timestamp(test.split["test_date"], tz="UTC")).total_seconds() / (7 * 86400)
    truth = not test.bursts.empty
    metrics = {**detection_metrics(scored, scored["is_burst"].to_numpy(), test.bursts, weeks), "hours": int(scored["hour_s"].nunique()),
               "rows": test.rows, "flagged_hours": int(scored["is_burst"].sum())}
    oracle = None
    if truth:  # the burst hours with enough views to be seen
        seen = test.frame["truth"].to_numpy() & (test.frame["views"].to_numpy() >= model.estimator.min_views)
        oracle = detection_metrics(scored, seen, test.bursts, weeks)
        scored = scored.assign(oracle=seen.astype(np.uint8))
    return Evaluation(metrics, oracle, replace(test, frame=scored))


def train(client: Client, *, test_date=None, brand_id=None, seed: int = 0, z_threshold: float | None = None, **_) -> TrainingResult:
    """Learn the hour-of-week profile and the overdispersion from the category and topic hours before the test date
    (default: the last two weeks of data), then judge the flags of the test weeks against the injected bursts."""
    from ownlens.ml.models.editorial.burst import SeasonalBurstDetector

    t0 = time.perf_counter()
    test = _windows(client, test_date, brand_id, seed)
    brand = resolve_brand(client, brand_id)
    history = series(client, datetime.fromisoformat(test.split["train_from"]), midnight(test.test_date), brand, ("category", "topic"))
    if len(history) < 24:
        raise NotFound(f"too few category and topic hours with views before {test.test_date} ({len(history)}): simulate or load more days")
    params = {} if z_threshold is None else {"z_threshold": float(z_threshold)}
    detector = SeasonalBurstDetector(**params).fit(history[FEATURES].to_numpy(float))
    model = TrainedModel(NAME, "detection", FEATURES, CategoryEncoder({}), detector,
                         {"algorithm": "seasonal-poisson-z", "trained_at": datetime.now(timezone.utc).isoformat(),
                          "dispersion": detector.dispersion_, "training_hours": int(history["hour_s"].nunique())})
    model.info["split"] = test.split
    evaluation = evaluate(client, model, test)
    window = (date.fromisoformat(test.split["train_dates"][0]), date.fromisoformat(test.split["train_dates"][1]))
    return TrainingResult(model, evaluation.metrics, evaluation.oracle_metrics, test.split, evaluation.scored, window,
                          {"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


# -- batch: every hour of a day, stored ---------------------------------------------------------------------------
def trending_rows(client: Client, model: TrainedModel, start: datetime, end: datetime, brand=None, k: int = TOP_K) -> pd.DataFrame:
    """The ranked lists of every hour in [start, end), named, with reasons."""
    frame = series(client, start, end, brand)
    if frame.empty:
        return frame
    top = ranked(score(model, frame), k)
    return top.assign(item_name=names_of(client, top))


def predict_batch(client: Client, model: TrainedModel, d, *, brand_id=None, progress=None, ab_test=None, **_) -> dict:
    """Trending as known at the start of ``d``, as every batch of ``d``: every hour of the day before, the top 20
    categories, topics and articles per brand, stored in editorial_trending (replacing that day's rows, of the brand
    if given). Default ``d``: the day after the latest article view."""
    t0 = time.perf_counter()
    d = as_date(d, "date") if d else events_span(client)[1].date() + timedelta(days=1)
    day = d - timedelta(days=1)
    brand = resolve_brand(client, brand_id)
    top = trending_rows(client, model, midnight(day), midnight(d), brand)
    if top.empty:
        raise NotFound(f"no article views on {day} (the day before {d})" + (f" in brand {brand_id}" if brand_id else "")
                       + ": pick a date with editorial events the day before")
    table = pa.table({
        "brand_id": pa.array(top["brand_id"].astype(str)), "hour": pa.array(top["hour_s"].astype(np.uint32)),
        "level": pa.array(top["level"].astype(str)), "item": pa.array(top["item"].astype(str)),
        "item_name": pa.array(top["item_name"].astype(str)), "rank": pa.array(top["rank"].astype(np.uint16)),
        "views": pa.array(top["views"].astype(np.uint64)), "expected_views": pa.array(top["expected_views"].astype(float)),
        "velocity": pa.array(top["views"].astype(float)), "acceleration": pa.array(top["acceleration"].astype(float)),
        "score": pa.array(top["score"].astype(float)), "is_burst": pa.array(top["is_burst"].astype(np.uint8)),
        "reason": pa.array(top["reason"].astype(str)),
        "model_id": pa.array([model.model_id] * len(top), pa.string()),
        "model_version": pa.array([model.version or "unregistered"] * len(top)),
    })
    staging = scratch_table(client, "trending_rows")
    client.command(f"CREATE TABLE {staging} (brand_id String, hour UInt32, level String, item String, item_name String, "
                   "rank UInt16, views UInt64, expected_views Float64, velocity Float64, acceleration Float64, score Float64, "
                   "is_burst UInt8, reason String, model_id Nullable(String), model_version String) ENGINE = Memory")
    try:
        client.insert_arrow(staging, table)
        replace_partition(client, "editorial_trending", day,
                          "SELECT toUUID(brand_id), toDateTime(hour, 'UTC'), level, item, item_name, rank, views, expected_views, "
                          "velocity, acceleration, score, is_burst, reason, toUUIDOrNull(model_id), model_version, now() "
                          "FROM {staging:Identifier}", {"staging": staging, "brand": brand},
                          keep="toDate(hour) = {p:Date} AND brand_id != {brand:UUID}" if brand else None)
    finally:
        drop_scratch(client, staging)
    if progress:
        progress(len(top))
    seconds = time.perf_counter() - t0
    return {"model": NAME, "version": model.version, "date": str(d), "hours_of": str(day), "rows": len(top), "bursts": int(top["is_burst"].sum()),
            "seconds": round(seconds, 3), "rows_per_s": round(len(top) / seconds) if seconds else None, "table": "editorial_trending"}


def stored_dates(client: Client) -> list[date]:
    """The dates whose batch is stored (the day after the hours)."""
    return [r[0] for r in client.query("SELECT DISTINCT toDate(hour) + 1 FROM editorial_trending ORDER BY 1").result_rows]


STORED_BURSTS = """
SELECT toString(brand_id) AS brand_id, level, item, toUInt32(hour) AS hour_s
FROM editorial_trending
WHERE toDate(hour) = {day:Date} AND is_burst = 1 AND level != 'article'
"""


def realised(client: Client, d) -> dict | None:
    """How the bursts stored for ``d`` (the hours of the day before) did against the simulator's injected bursts of
    that day: precision and recall per level; None without simulator truth (a real warehouse) or nothing stored."""
    d = as_date(d, "date")
    day = d - timedelta(days=1)
    if not simulated(client) or not int(client.command("SELECT count() FROM sim_topic_bursts")):
        return None
    if not int(client.command("SELECT count() FROM editorial_trending WHERE toDate(hour) = {day:Date}", parameters={"day": day})):
        return None
    flagged = query_frame(client, STORED_BURSTS, {"day": day})
    bursts = true_bursts(client, midnight(day), midnight(d), None)
    found = detection_metrics(flagged, np.ones(len(flagged), dtype=bool), bursts, 1 / 7)
    keep = ("burst_precision", "burst_recall", "category_burst_precision", "category_burst_recall", "bursts")
    return {k: found[k] for k in keep if found.get(k) is not None} | {"flagged_hours": len(flagged)}


# -- live lookups: a brand's trending lists now (or at the start of a date) ---------------------------------------
def _item(r) -> dict:
    return {"level": r.level, "item": r.item, "name": str(r.item_name), "hour": r.hour.isoformat(), "rank": int(r.rank),
            "views": int(r.views), "expected_views": round(float(r.expected_views), 3), "acceleration": int(r.acceleration),
            "score": round(float(r.score), 3), "is_burst": bool(r.is_burst), "reason": r.reason}


class TrendingServer:
    """A brand's trending lists for the latest hour with views in the ``hours`` before ``as_of`` (the start of the
    feature date; by default now, or the end of the latest hour with views if that is earlier), computed from the
    events with the serving version's profile; with the window's bursts."""

    entity = ("brand_id",)

    def __init__(self, client: Client, model: TrainedModel, cache_ttl_s: float = 0.0):
        self.client, self.model = client, model

    def records(self, keys: list, feature_date=None, hours: int = 24, k: int = 10, **_) -> tuple[list[dict], list]:
        brands = [as_uuid(b) for b in keys]
        if not 1 <= int(hours) <= 168:
            raise InvalidInput(f"hours must be from 1 to 168 (got {hours})")
        if feature_date is not None:
            as_of = midnight(as_date(feature_date, "feature_date"))
        else:  # now, or the end of the latest hour with views when the events stop before now (a loaded or simulated day)
            now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            as_of = min(now, events_span(self.client)[1].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        start = as_of - timedelta(hours=int(hours))
        records, known = [], set()
        for brand in dict.fromkeys(brands):
            top = trending_rows(self.client, self.model, start, as_of, brand, k)
            if top.empty:
                continue
            latest = top[top["hour_s"] == top["hour_s"].max()]
            lists = {level: [_item(r) for r in latest[latest["level"] == level].itertuples(index=False)] for level in LEVELS}
            bursts = top[top["is_burst"] == 1].sort_values(["hour_s", "score"], ascending=[False, False])
            records.append({"brand_id": brand, "as_of": as_of.isoformat(), "hours": int(hours), "hour": latest["hour"].iloc[0].isoformat(),
                            "categories": lists["category"], "topics": lists["topic"], "articles": lists["article"],
                            "bursts": [_item(r) for r in bursts.itertuples(index=False)], "feature_date": str(as_of.date()),
                            "model_version": self.model.version or "unregistered"})
            known.add(brand)
        return records, [b for b in brands if b not in known]

    def frame(self, keys: list, feature_date=None, **options) -> pd.DataFrame:
        return lookup_frame(*self.records(keys, feature_date, **options), "brands are unknown or had no article views in the window")

    def cached_record(self, key, **options) -> dict | None:
        return None


def server(client: Client, model: TrainedModel, cache_ttl_s: float = 0.0) -> TrendingServer:
    return TrendingServer(client, model, cache_ttl_s)


def plots(result, plt) -> list[tuple[str, str]]:
    """Per brand, the test weeks' topic hours: the flagged topics' views against their expectation, with the injected
    bursts shaded; the bursts found and missed."""
    from ownlens.ml.data.exploration import _figure_html

    frame, bursts = result.test.frame, result.test.bursts
    brands = sorted(frame["brand_id"].unique())[:3]
    fig, axes = plt.subplots(len(brands), 1, figsize=(11, 2.8 * max(len(brands), 1)), squeeze=False)
    for ax, brand in zip(axes[:, 0], brands):
        topics = frame[(frame["brand_id"] == brand) & (frame["level"] == "topic")]
        total = topics.groupby("hour")[["views", "expected_views"]].sum()
        ax.plot(total.index, total["views"], lw=0.8, label="topic views")
        ax.plot(total.index, total["expected_views"], lw=0.8, ls="--", label="expected")
        flagged = topics[topics["is_burst"] == 1]
        ax.scatter(flagged["hour"], flagged["views"], s=12, color="red", zorder=3, label="flagged burst hour")
        for b in bursts[bursts["brand_id"] == brand].itertuples(index=False):
            ax.axvspan(pd.Timestamp(b.start_s, unit="s", tz="UTC"), pd.Timestamp(b.end_s, unit="s", tz="UTC"), color="orange", alpha=0.2)
        ax.set_title(f"brand {brand[:8]}: injected bursts shaded", fontsize=9)
        ax.set_ylabel("views per hour")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return [("Trending timeline: flagged burst hours against the injected bursts", _figure_html(fig))]
