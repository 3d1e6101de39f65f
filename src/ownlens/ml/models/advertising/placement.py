"""Ad placement: Thompson sampling over placements with a revenue model (seed 003's ad optimisation).

From the ad impressions and clicks in customer_events of the 30 days before D (point in time), each (device
type, placement) gets a Beta posterior of its click-through rate, and each placement its revenue per impression
(CPM) and per click (``bandit.PlacementBandit``). A user's expected revenue per impression at a placement is
CPM + CTR x (the user's own ad responsiveness, shrunk to 1) x revenue per click. A decision samples the CTRs from
their posteriors (exploration) or takes their means (exploitation) and picks the placement with the highest
expected revenue. Evaluation compares, on a later date's users, the revenue per 1,000 impressions of the current
allocation, of the model's choices and of the oracle's (the simulator's true click rates), so the uplift captured
is reported, not just a number.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, Field

from ownlens.ml.data.loaders import as_date, latest_feature_date, query_frame, resolve_brand
from ownlens.ml.errors import NotFound
from ownlens.ml.models import oracle
from ownlens.ml.models.advertising.bandit import ALL, PlacementBandit
from ownlens.ml.models.lookup import LookupServer
from ownlens.ml.models.protocol import Evaluation, TrainingResult
from ownlens.ml.models.scoring import store_user_predictions
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import CategoryEncoder, TaskModel
from ownlens.ml.models.trained import TrainedModel
from ownlens.ml.warehouse import drop_scratch, scratch_table

HISTORY_DAYS, HORIZON_DAYS = 30, 7
FEATURES = ["device", "placement"]  # what the bandit is fitted on; decisions also weigh each user's ad history
INPUTS = ("device", "placement", "ad_impressions", "ad_clicks")

STATS = """
SELECT dictGetOrDefault('dict_device_types', 'device_type_name', e.device_type_id, 'other') AS device,
       toString(e.ad_placement) AS placement,
       countIf(e.event_type = 'ad_impression') AS impressions, countIf(e.event_type = 'ad_click') AS clicks,
       sumIf(e.revenue, e.event_type = 'ad_impression') AS impression_revenue, sumIf(e.revenue, e.event_type = 'ad_click') AS click_revenue
FROM customer_events AS e
WHERE e.event_type IN ('ad_impression', 'ad_click') AND e.ad_placement != ''
  AND e.event_timestamp >= {start:Date} AND e.event_timestamp < {end:Date}
  AND ({brand:Nullable(UUID)} IS NULL OR e.brand_id = {brand:Nullable(UUID)})
GROUP BY device, placement
"""

_USER_COLUMNS = """
SELECT toString(uf.user_id) AS user_id, toString(uf.brand_id) AS brand_id,
       dictGetOrDefault('dict_device_types', 'device_type_name', uf.preferred_device_type_id, 'other') AS device,
       uf.total_ad_impressions AS ad_impressions, uf.total_ad_clicks AS ad_clicks
FROM customer_user_features AS uf
"""
DATE_USERS = _USER_COLUMNS + "WHERE uf.feature_date = {d:Date} AND ({brand:Nullable(UUID)} IS NULL OR uf.brand_id = {brand:Nullable(UUID)})"
SAMPLE_USERS = DATE_USERS + " ORDER BY cityHash64(uf.user_id) LIMIT {limit:UInt64}"
GIVEN_USERS = _USER_COLUMNS + "WHERE uf.feature_date = {d:Date} AND uf.user_id IN {users:Array(UUID)}"
DATES_WITH_HORIZON = """
SELECT DISTINCT feature_date FROM customer_user_features
WHERE feature_date + {h:UInt32} <= (SELECT max(toDate(event_timestamp)) FROM customer_events) ORDER BY feature_date
"""
EVENTS_KNOWN = "SELECT max(toDate(event_timestamp)) >= {end:Date} FROM customer_events"
STORED_VERSION = "SELECT any(model_version) FROM ml_model_predictions WHERE model_name = {m:String} AND prediction_date = {d:Date}"
STORED_DATES = "SELECT DISTINCT prediction_date FROM ml_model_predictions WHERE model_name = {m:String} ORDER BY prediction_date"
RAW = "CREATE TABLE {raw:Identifier} (user_id String, brand_id String, value Float64, label String) ENGINE = Memory"


def stats(client: Client, start: date, end: date, brand_id=None) -> pd.DataFrame:
    """Ad impressions, clicks and revenue per (device, placement) between ``start`` and ``end``."""
    return query_frame(client, STATS, {"start": start, "end": end, "brand": resolve_brand(client, brand_id)})


def fit_bandit(frame: pd.DataFrame, seed: int = 0) -> PlacementBandit:
    """A bandit fitted on (device, placement) stats: clicked and unclicked impressions as weighted rows, and each
    placement's prices (revenue per 1,000 impressions and per click) from the same days."""
    if frame.empty or frame["impressions"].sum() == 0:
        raise NotFound("no ad impressions in the window: ad placement needs ad_impression events in customer_events")
    pooled = frame.groupby("placement")[["impressions", "clicks", "impression_revenue", "click_revenue"]].sum()
    cpm = (pooled["impression_revenue"] / pooled["impressions"].clip(lower=1) * 1000).to_dict()
    click_value = (pooled["click_revenue"] / pooled["clicks"].clip(lower=1)).to_dict()
    cells = frame[["device", "placement"]].to_numpy(dtype=object)
    X = np.vstack([cells, cells])
    y = np.r_[np.ones(len(frame), int), np.zeros(len(frame), int)]
    weight = np.r_[frame["clicks"].to_numpy(float), (frame["impressions"] - frame["clicks"]).to_numpy(float)]
    return PlacementBandit(cpm=cpm, click_value=click_value, random_state=seed).fit(X, y, sample_weight=weight)


@dataclass
class PlacementTest:
    """A test date's users and the realised ad clicks per placement in the week after it."""

    d: date
    users: pd.DataFrame
    realised: pd.DataFrame
    brand: str | None = None

    @property
    def rows(self) -> int:
        return len(self.users)


def test_set(client: Client, *, test_date=None, brand_id=None, limit: int | None = 50_000, **_) -> PlacementTest:
    """The users of ``test_date`` (default: the latest feature date with a week of events after it)."""
    if test_date is None:
        dates = [r[0] for r in client.query(DATES_WITH_HORIZON, parameters={"h": HORIZON_DAYS}).result_rows]
        if not dates:
            raise NotFound(f"no feature date has {HORIZON_DAYS} days of events after it: build features for an earlier date")
        test_date = dates[-1]
    d = as_date(test_date, "test_date")
    brand = resolve_brand(client, brand_id)
    users = query_frame(client, SAMPLE_USERS, {"d": d, "brand": brand, "limit": int(limit or 50_000)})
    later = stats(client, d, d + timedelta(days=HORIZON_DAYS), brand)
    return PlacementTest(d, users, later, brand)


def train(client: Client, *, feature_date=None, test_date=None, brand_id=None, limit: int | None = 50_000, seed: int = 0,
          **_) -> TrainingResult:
    """Fit the posteriors on the 30 days before the test date (default: the latest feature date with a week of
    events after it) and judge the decisions on that week: CTR calibration per placement and policy revenue."""
    t0 = time.perf_counter()
    test = test_set(client, test_date=test_date or feature_date, brand_id=brand_id, limit=limit)
    start, end = test.d - timedelta(days=HISTORY_DAYS), test.d
    est = fit_bandit(stats(client, start, end, test.brand), seed)
    model = TrainedModel(AD_PLACEMENT.name, "bandit", FEATURES, CategoryEncoder({}), est,
                         {"algorithm": AD_PLACEMENT.algorithm, "trained_at": datetime.now(timezone.utc).isoformat()})
    evaluation = evaluate(client, model, test)
    split = {"kind": "time", "train_dates": [str(start), str(end)], "test_date": str(test.d),
             "train_rows": int(est.alpha_.size), "test_rows": test.rows}
    model.info["split"] = split
    return TrainingResult(model, evaluation.metrics, evaluation.oracle_metrics, split, evaluation.scored,
                          (start, end - timedelta(days=1)), {"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


def evaluate(client: Client, model: TrainedModel, test: PlacementTest) -> Evaluation:
    """Predicted vs realised click rate per placement in the week after the test date, and the revenue per 1,000
    impressions of the current allocation, of ``model``'s choices and of the oracle's on the test users."""
    est = model.estimator
    realised = test.realised.groupby("placement")[["impressions", "clicks"]].sum().reindex(est.placements_).fillna(0)
    predicted = est.alpha_[0] / (est.alpha_[0] + est.beta_[0])
    observed = (realised["clicks"] / realised["impressions"].clip(lower=1)).to_numpy()
    weights = realised["impressions"].to_numpy(float)
    metrics = {
        "ctr_by_placement": {p: {"predicted": float(pr), "realised": float(ob)} for p, pr, ob in zip(est.placements_, predicted, observed)},
        "ctr_mean_abs_error": float(np.average(np.abs(predicted - observed), weights=weights)) if weights.sum() else None,
        "best_placement": est.placements_[int(np.argmax(est.cpm_ + 1000 * predicted * est.click_value_))],
    }
    oracle_metrics = None
    truth = oracle.ad_revenue(client, test.users["user_id"].tolist(), test.d, HORIZON_DAYS, est.placements_) if len(test.users) else None
    if truth is not None:  # revenue per 1,000 impressions in the week after, at the simulator's true click rates
        frame, revenue, share = truth
        users = frame.merge(test.users, on="user_id")
        revenue = revenue[frame["user_id"].isin(users["user_id"]).to_numpy()]
        choice, _ = est.decide(users["device"].to_numpy(), est.responsiveness(users["ad_impressions"], users["ad_clicks"]))
        weight = users["impressions"].to_numpy(float)
        current = float(np.average(revenue @ share, weights=weight))
        chosen = float(np.average(revenue[np.arange(len(revenue)), choice], weights=weight))
        best = float(np.average(revenue.max(1), weights=weight))
        metrics.update({"revenue_per_1000": chosen, "current_allocation_revenue_per_1000": current,
                        "uplift_captured": (chosen - current) / (best - current) if best > current else None})
        oracle_metrics = {"revenue_per_1000": best}
    return Evaluation(metrics, oracle_metrics, replace(test))


class Placement(BaseModel):
    """Where to show a user's ad."""

    user_id: str
    placement: str
    expected_revenue_per_1000: float = Field(description="Expected revenue per 1,000 impressions at the chosen placement (EUR).")
    alternatives: dict[str, float] = Field(description="Expected revenue per 1,000 impressions at every placement.")
    explored: bool = Field(description="True: click rates were sampled from their posteriors (Thompson sampling).")
    known_user: bool
    device: str
    feature_date: str
    model_version: str


class PlacementOptions(BaseModel):
    device: str | None = Field(None, description="The device context (default: the user's usual device, or all devices).")
    explore: bool = Field(True, description="Sample click rates from their posteriors (Thompson sampling); false: their means.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed of the sampling, for reproducible answers.")


def decide_users(client: Client, model: TrainedModel, users: list[str], d: date, device: str | None = None,
                 explore: bool = True, seed: int | None = None) -> tuple[list[dict], list]:
    """Placement decisions for given users on ``d`` (unknown users: average responsiveness, ``device`` or all)."""
    est = model.estimator
    if device is not None and device not in est.contexts_:
        raise NotFound(f"the model knows no device {device!r}: use one of {', '.join(est.contexts_)}")
    known = query_frame(client, GIVEN_USERS, {"d": d, "users": list(users)})
    frame = pd.DataFrame({"user_id": list(users)}).merge(known, on="user_id", how="left")
    devices = [device or (dv if isinstance(dv, str) else ALL) for dv in frame["device"]]
    choice, revenue = est.decide(devices, est.responsiveness(frame["ad_impressions"], frame["ad_clicks"]), explore,
                                 np.random.default_rng(seed))
    return [{"user_id": u, "placement": est.placements_[c], "expected_revenue_per_1000": round(float(r.max()), 4),
             "alternatives": {p: round(float(v), 4) for p, v in zip(est.placements_, r)}, "explored": bool(explore),
             "known_user": isinstance(dv, str), "device": device_, "feature_date": str(d),
             "model_version": model.version or "unregistered"}
            for u, c, r, dv, device_ in zip(frame["user_id"], choice, revenue, frame["device"], devices)], []


def server(client: Client, model: TrainedModel, cache_ttl_s: float = 0.0) -> LookupServer:
    return LookupServer(client, model, decide_users)  # every answer is drawn anew (Thompson sampling): never cached


def predict_batch(client: Client, model: TrainedModel, d, *, brand_id=None, progress=None, ab_test=None) -> dict:
    """Each user's best placement on ``d`` (no exploration) into ml_model_predictions, replacing that date's rows."""
    t0 = time.perf_counter()
    d = as_date(d) if d else latest_feature_date(client)
    brand = resolve_brand(client, brand_id)
    users = query_frame(client, DATE_USERS, {"d": d, "brand": brand})
    if users.empty:
        raise NotFound(f"no user features on {d}: run `ownlens-ml features build --date {d}` first")
    est = model.estimator
    choice, revenue = est.decide(users["device"].to_numpy(), est.responsiveness(users["ad_impressions"], users["ad_clicks"]))
    labels = np.asarray(est.placements_, dtype=object)[choice].astype(str)
    raw = {"raw": scratch_table(client, "ads")}
    client.command(RAW, parameters=raw)
    try:
        client.insert_arrow(raw["raw"], pa.table({"user_id": pa.array(users["user_id"].astype(str)),
                                                  "brand_id": pa.array(users["brand_id"].astype(str)),
                                                  "value": pa.array(revenue.max(1)), "label": pa.array(labels)}))
        written = store_user_predictions(client, model, d, raw["raw"], brand)
    finally:
        drop_scratch(client, raw["raw"])
    if progress:
        progress(written)
    seconds = time.perf_counter() - t0
    return {"model": model.spec_name, "version": model.version, "date": str(d), "rows": written, "seconds": round(seconds, 3),
            "placements": {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))},
            "table": "ml_model_predictions"}


def plots(result, plt) -> list[tuple[str, str]]:
    """Revenue per 1,000 impressions by policy, and each placement's predicted vs realised click rate."""
    from ownlens.ml.models.reports import bars

    m = result.metrics
    out = [bars(plt, "Click-through rate by placement: posterior mean (before the test date) vs realised (the week after)",
                {k: {p: v[k] for p, v in m["ctr_by_placement"].items()} for k in ("predicted", "realised")}, "CTR")]
    if "revenue_per_1000" in m and result.oracle_metrics:
        out.append(bars(plt, "Expected revenue per 1,000 impressions on the test users (simulator's true click rates)",
                        {"EUR": {"current allocation": m["current_allocation_revenue_per_1000"], "model": m["revenue_per_1000"],
                                 "oracle": result.oracle_metrics["revenue_per_1000"]}}, "EUR per 1,000"))
    return out


def realised(client: Client, d: date) -> dict | None:
    """Realised click rate and revenue per 1,000 impressions by placement in the week after ``d``, next to what the
    version that stored ``d``'s decisions expected; None until that week has passed."""
    from ownlens.ml.models.trained import load

    end = d + timedelta(days=HORIZON_DAYS)
    if not int(client.command(EVENTS_KNOWN, parameters={"end": end})):
        return None
    version = client.command(STORED_VERSION, parameters={"m": AD_PLACEMENT.name, "d": d})
    if not version:
        raise NotFound(f"no stored ad placement decisions for {d}: run `ownlens-ml predict ad_placement --date {d}` first")
    est = load(client, AD_PLACEMENT.name, version).estimator
    found = stats(client, d, end).groupby("placement")[["impressions", "clicks", "impression_revenue", "click_revenue"]].sum()
    out: dict = {"model_version": version}
    for i, placement in enumerate(est.placements_):
        if placement in found.index and found.loc[placement, "impressions"] > 0:
            row = found.loc[placement]
            out[f"realised_ctr:{placement}"] = float(row["clicks"] / row["impressions"])
            out[f"expected_ctr:{placement}"] = float(est.alpha_[0, i] / (est.alpha_[0, i] + est.beta_[0, i]))
            out[f"realised_revenue_per_1000:{placement}"] = float(1000 * (row["impression_revenue"] + row["click_revenue"]) / row["impressions"])
    return out


def stored_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query(STORED_DATES, parameters={"m": AD_PLACEMENT.name}).result_rows]


AD_PLACEMENT = TaskModel(
    name="ad_placement",
    task="bandit",
    description="Ad placement by Thompson sampling over (device, placement) click rates and a revenue model",
    algorithm="thompson-sampling",
    primary_metric="revenue_per_1000",
    output_table="ml_model_predictions",
    record=Placement,
    prototype=PlacementBandit,
    input_names=INPUTS,
    train=train,
    test_set=test_set,
    evaluate=evaluate,
    predict_batch=predict_batch,
    server=server,
    lookup_options=PlacementOptions,
    prediction_fields=("expected_revenue_per_1000", "placement"),
    plots=plots,
    realised=realised,
    stored_dates=stored_dates,
)

AdPlacementModel, AdPlacementTrainingPipeline, AdPlacementPredictor, AdPlacementEvaluator = seed_classes(AD_PLACEMENT)
