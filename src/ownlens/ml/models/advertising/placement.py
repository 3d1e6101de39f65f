"""Ad placement: Thompson sampling over placements with a revenue model (seed 003's ad optimisation).

From the ad impressions and clicks in customer_events of the 30 days before D (point in time), each
(device type, placement) gets a Beta posterior of its click-through rate, and each placement its revenue
per impression (CPM) and per click. A user's expected revenue per impression at a placement is
CPM + CTR x (the user's own ad responsiveness, shrunk to 1) x revenue per click. A decision samples the CTRs
from their posteriors (exploration, Thompson sampling) or takes their means (exploitation) and picks the
placement with the highest expected revenue. Evaluation compares, on a later date's users, the revenue per
1,000 impressions of the current allocation, of the model's choices and of the oracle's (the simulator's
true click rates), so the uplift captured is reported, not just a number.
"""

from __future__ import annotations

import time
import uuid
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import as_date, latest_feature_date, query_frame
from ownlens.ml.errors import NotFound
from ownlens.ml.models.base import BaseMLModel, BaseTaskPredictor, BaseTaskTrainer
from ownlens.ml.models.data import brand_filter
from ownlens.ml.models.estimators import JsonStateEstimator
from ownlens.ml.models.model import TrainedModel
from ownlens.ml.models.prediction import store_user_predictions
from ownlens.ml.models.spec import TaskModel

if TYPE_CHECKING:  # annotations only
    from ownlens.ml.models.training import TrainingResult

HISTORY_DAYS, HORIZON_DAYS = 30, 7
ALL = "all"  # the context that pools every device

STATS = """
SELECT dictGetOrDefault('dict_device_types', 'device_type_name', e.device_type_id, 'other') AS device,
       toString(e.ad_placement) AS placement,
       countIf(e.event_type = 'ad_impression') AS impressions, countIf(e.event_type = 'ad_click') AS clicks,
       sumIf(e.revenue, e.event_type = 'ad_impression') AS impression_revenue, sumIf(e.revenue, e.event_type = 'ad_click') AS click_revenue
FROM customer_events AS e
WHERE e.event_type IN ('ad_impression', 'ad_click') AND e.ad_placement != ''
  AND e.event_timestamp >= {start:Date} AND e.event_timestamp < {end:Date}{where}
GROUP BY device, placement
"""

USERS = """
SELECT toString(uf.user_id) AS user_id, toString(uf.brand_id) AS brand_id,
       dictGetOrDefault('dict_device_types', 'device_type_name', uf.preferred_device_type_id, 'other') AS device,
       uf.total_ad_impressions AS ad_impressions, uf.total_ad_clicks AS ad_clicks
FROM customer_user_features AS uf
WHERE uf.feature_date = {d:Date}{where}
"""


class PlacementBandit(JsonStateEstimator):
    """Beta-Bernoulli Thompson sampling per (device, placement) with a revenue model; ``prior_strength``
    pseudo-impressions pull sparse contexts towards the all-device rate and a user's responsiveness towards 1."""

    fitted_attributes = ("contexts_", "placements_", "alpha_", "beta_", "cpm_", "click_value_", "base_ctr_")

    def __init__(self, *, prior_strength=200.0, user_prior_clicks=2.0, random_state=0):
        self.prior_strength = prior_strength
        self.user_prior_clicks = user_prior_clicks
        self.random_state = random_state

    def fit(self, stats: pd.DataFrame, y=None):
        """``stats``: one row per (device, placement) with impressions, clicks, impression_revenue, click_revenue."""
        if stats.empty or stats["impressions"].sum() == 0:
            raise NotFound("no ad impressions in the window: ad placement needs ad_impression events in customer_events")
        placements = sorted(stats["placement"].unique())
        pooled = stats.groupby("placement")[["impressions", "clicks", "impression_revenue", "click_revenue"]].sum().reindex(placements)
        pooled_ctr = (pooled["clicks"] + 1) / (pooled["impressions"] + 2)
        contexts = [ALL, *sorted(stats["device"].unique())]
        alpha, beta = np.zeros((len(contexts), len(placements))), np.zeros((len(contexts), len(placements)))
        for i, ctx in enumerate(contexts):
            rows = (pooled if ctx == ALL else stats[stats["device"] == ctx].set_index("placement")).reindex(placements).fillna(0)
            prior = 2.0 if ctx == ALL else self.prior_strength  # device contexts shrink towards the pooled rate
            alpha[i] = rows["clicks"].to_numpy() + prior * pooled_ctr.to_numpy()
            beta[i] = rows["impressions"].to_numpy() - rows["clicks"].to_numpy() + prior * (1 - pooled_ctr.to_numpy())
        self.contexts_, self.placements_, self.alpha_, self.beta_ = contexts, placements, alpha, beta
        self.cpm_ = (pooled["impression_revenue"] / pooled["impressions"].clip(lower=1) * 1000).to_numpy()
        self.click_value_ = (pooled["click_revenue"] / pooled["clicks"].clip(lower=1)).to_numpy()
        self.base_ctr_ = float(pooled["clicks"].sum() / max(pooled["impressions"].sum(), 1))
        return self

    def responsiveness(self, impressions, clicks) -> np.ndarray:
        """Each user's click rate relative to the average, shrunk to 1 for users with little history."""
        impressions, clicks = np.nan_to_num(np.asarray(impressions, float)), np.nan_to_num(np.asarray(clicks, float))
        prior = self.user_prior_clicks
        return (clicks + prior) / (impressions * self.base_ctr_ + prior)

    def expected_revenue(self, devices, responsiveness, explore: bool = False, rng=None) -> np.ndarray:
        """Expected revenue per 1,000 impressions, users x placements (CTRs sampled when ``explore``)."""
        index = {c: i for i, c in enumerate(self.contexts_)}
        rows = np.array([index.get(d, 0) for d in devices], dtype=int)
        a, b = self.alpha_[rows], self.beta_[rows]
        if explore:
            ctr = (rng or np.random.default_rng(self.random_state)).beta(a, b)
        else:
            ctr = a / (a + b)
        return self.cpm_[None, :] + 1000 * ctr * np.asarray(responsiveness, float)[:, None] * self.click_value_[None, :]

    def decide(self, devices, responsiveness, explore: bool = False, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """The placement (index) with the highest expected revenue per user, and all expected revenues."""
        revenue = self.expected_revenue(devices, responsiveness, explore, rng)
        return revenue.argmax(1), revenue

    def predict(self, X) -> np.ndarray:
        """X: rows of (device, ad impressions, ad clicks); the chosen placement names (no exploration)."""
        X = np.asarray(X, dtype=object)
        choice, _ = self.decide(X[:, 0], self.responsiveness(X[:, 1], X[:, 2]))
        return np.asarray(self.placements_, dtype=object)[choice]

    def feature_importances(self) -> np.ndarray:
        return np.array([0.5, 0.25, 0.25])


def _stats(client: Client, start: date, end: date, brand_id=None) -> pd.DataFrame:
    params: dict = {"start": start, "end": end}
    where = brand_filter(client, brand_id, params, alias="e")
    return query_frame(client, STATS.replace("{where}", where), params)


def _window(d: date, days: int) -> tuple[date, date]:
    return d - pd.Timedelta(days=days).to_pytimedelta(), d


ORACLE = """
SELECT toString(s.user_id) AS user_id, s.ad_responsiveness AS ad_ctr, count() AS impressions
FROM customer_events AS e INNER JOIN sim_users AS s ON s.user_id = e.user_id
WHERE e.event_type = 'ad_impression' AND e.event_timestamp >= {d:Date} AND e.event_timestamp < {end:Date}
  AND e.user_id IN {users:Array(UUID)}
GROUP BY user_id, ad_ctr
"""


def policy_revenue(client: Client, est: PlacementBandit, d: date, users: pd.DataFrame) -> dict | None:
    """Revenue per 1,000 impressions in the week after ``d`` (the simulator's true click rates) for the current
    allocation, the model's choices and the oracle's; None without simulator tables."""
    from ownlens.ml.simulation import catalog as cat

    truth = query_frame(client, ORACLE, {"d": d, "end": d + pd.Timedelta(days=HORIZON_DAYS).to_pytimedelta(),
                                         "users": users["user_id"].tolist()})
    if truth.empty:
        return None
    frame = truth.merge(users, on="user_id")
    order = [cat.AD_PLACEMENTS.index(p) for p in est.placements_]
    cpm, lift = cat.AD_CPM_EUR[order], cat.AD_PLACEMENT_CTR_LIFT[order]
    true = cpm[None, :] + 1000 * frame["ad_ctr"].to_numpy()[:, None] * lift[None, :] * cat.AD_CLICK_EUR
    choice, _ = est.decide(frame["device"].to_numpy(), est.responsiveness(frame["ad_impressions"], frame["ad_clicks"]))
    weights = frame["impressions"].to_numpy(float)
    share = cat.AD_PLACEMENT_SHARE[order] / cat.AD_PLACEMENT_SHARE[order].sum()
    current = float(np.average(true @ share, weights=weights))
    model = float(np.average(true[np.arange(len(true)), choice], weights=weights))
    best = float(np.average(true.max(1), weights=weights))
    return {"current_allocation": current, "model": model, "oracle": best,
            "uplift_captured": (model - current) / (best - current) if best > current else None, "users": len(frame)}


def _ad_dates(client: Client) -> list[date]:
    rows = client.query("SELECT DISTINCT feature_date FROM customer_user_features WHERE feature_date + {h:UInt32} <= "
                        "(SELECT max(toDate(event_timestamp)) FROM customer_events) ORDER BY feature_date",
                        parameters={"h": HORIZON_DAYS}).result_rows
    return [r[0] for r in rows]


def train(client: Client, *, feature_date=None, test_date=None, brand_id=None, limit: int | None = 50_000,
          register: bool = True, seed: int = 0, **_) -> "TrainingResult":
    """Fit the posteriors on the 30 days before the test date (default: the latest feature date with a week of
    events after it) and judge the decisions on that week: CTR calibration per placement and policy revenue."""
    from ownlens.ml.models.training import finish_task_training, recorded_run

    dates = _ad_dates(client)
    if test_date is None and feature_date is None and not dates:
        raise NotFound(f"no feature date has {HORIZON_DAYS} days of events after it: build features for an earlier date")
    test_d = as_date(test_date or feature_date, "test_date") if (test_date or feature_date) else dates[-1]
    with recorded_run(client, AD_PLACEMENT.name, {"test_date": test_d, "brand_id": brand_id, "limit": limit, "seed": seed}) as run:
        t0 = time.perf_counter()
        start, end = _window(test_d, HISTORY_DAYS)
        est = PlacementBandit(random_state=seed).fit(_stats(client, start, end, brand_id))
        later = _stats(client, test_d, test_d + pd.Timedelta(days=HORIZON_DAYS).to_pytimedelta(), brand_id)
        realised = later.groupby("placement")[["impressions", "clicks"]].sum().reindex(est.placements_).fillna(0)
        predicted = est.alpha_[0] / (est.alpha_[0] + est.beta_[0])
        observed = (realised["clicks"] / realised["impressions"].clip(lower=1)).to_numpy()
        weights = realised["impressions"].to_numpy(float)
        metrics = {
            "ctr_by_placement": {p: {"predicted": float(pr), "realised": float(ob)} for p, pr, ob in zip(est.placements_, predicted, observed)},
            "ctr_mean_abs_error": float(np.average(np.abs(predicted - observed), weights=weights)) if weights.sum() else None,
            "best_placement": est.placements_[int(np.argmax(est.cpm_ + 1000 * predicted * est.click_value_))],
        }
        params: dict = {"d": test_d}
        users = query_frame(client, USERS.replace("{where}", brand_filter(client, brand_id, params)) +
                            " ORDER BY cityHash64(uf.user_id) LIMIT {limit:UInt64}", {**params, "limit": int(limit or 50_000)})
        revenue = policy_revenue(client, est, test_d, users) if not users.empty else None
        oracle = None
        if revenue is not None:
            metrics["revenue_per_1000"] = revenue["model"]
            metrics["current_allocation_revenue_per_1000"] = revenue["current_allocation"]
            metrics["uplift_captured"] = revenue["uplift_captured"]
            oracle = {"revenue_per_1000": revenue["oracle"]}
        split = {"kind": "time", "train_dates": [str(start), str(end)], "test_date": str(test_d),
                 "train_rows": int(est.alpha_.size), "test_rows": int(len(users))}
        return finish_task_training(client, AD_PLACEMENT, est, ["device", "ad_impressions", "ad_clicks"], metrics, oracle,
                                    split, (start, end), run, register, extra={"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


def decide_users(client: Client, model: TrainedModel, user_ids: list[str], d: date, device: str | None = None,
                 explore: bool = False, seed: int | None = None) -> pd.DataFrame:
    """Placement decisions for given users on ``d`` (unknown users: average responsiveness, ``device`` or all)."""
    est = model.estimator
    known = query_frame(client, USERS.replace("{where}", " AND uf.user_id IN {users:Array(UUID)}"), {"d": d, "users": list(user_ids)})
    frame = pd.DataFrame({"user_id": list(user_ids)}).merge(known, on="user_id", how="left")
    devices = [device or (dv if isinstance(dv, str) else ALL) for dv in frame["device"]]
    responsiveness = est.responsiveness(frame["ad_impressions"], frame["ad_clicks"])
    choice, revenue = est.decide(devices, responsiveness, explore, np.random.default_rng(seed))
    names = np.asarray(est.placements_, dtype=object)
    return pd.DataFrame({"user_id": frame["user_id"], "known_user": frame["device"].notna(), "device": devices,
                         "placement": names[choice], "expected_revenue_per_1000": revenue.max(1).round(4),
                         "alternatives": [dict(zip(est.placements_, r.round(4))) for r in revenue],
                         "explored": explore, "feature_date": str(d), "model_version": model.version})


def predict_batch(client: Client, model: TrainedModel, d, brand_id=None, progress=None) -> dict:
    """Each user's best placement on ``d`` (no exploration) into ml_model_predictions, replacing that date's rows."""
    t0 = time.perf_counter()
    d = as_date(d) if d else latest_feature_date(client)
    params: dict = {"d": d}
    where = brand_filter(client, brand_id, params)
    users = query_frame(client, USERS.replace("{where}", where), params)
    if users.empty:
        raise NotFound(f"no user features on {d}: run `ownlens-ml features build --date {d}` first")
    est = model.estimator
    choice, revenue = est.decide(users["device"].to_numpy(), est.responsiveness(users["ad_impressions"], users["ad_clicks"]))
    rows = pa.table({"user_id": pa.array(users["user_id"].astype(str)), "brand_id": pa.array(users["brand_id"].astype(str)),
                     "value": pa.array(revenue.max(1)), "label": pa.array(np.asarray(est.placements_, dtype=object)[choice].astype(str))})
    raw = f"_ads_{uuid.uuid4().hex[:12]}"
    client.command(f"CREATE TABLE {raw} (user_id String, brand_id String, value Float64, label String) ENGINE = Memory")
    try:
        client.insert_arrow(raw, rows)
        written = store_user_predictions(client, model, d, raw, "value", "label", params, brand_id)
    finally:
        client.command(f"DROP TABLE IF EXISTS {raw}")
    if progress:
        progress(written)
    seconds = time.perf_counter() - t0
    return {"model": AD_PLACEMENT.name, "version": model.version, "date": str(d), "rows": written, "seconds": round(seconds, 3),
            "placements": {str(k): int(v) for k, v in zip(*np.unique(rows.column("label").to_numpy(zero_copy_only=False), return_counts=True))},
            "table": "ml_model_predictions"}


def plots(result, plt) -> list[tuple[str, str]]:
    """Revenue per 1,000 impressions by policy, and each placement's predicted vs realised click rate."""
    from ownlens.ml.models.evaluation import bars

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
    from ownlens.ml.registry import store

    end = d + pd.Timedelta(days=HORIZON_DAYS).to_pytimedelta()
    if not int(client.command("SELECT max(toDate(event_timestamp)) >= {end:Date} FROM customer_events", parameters={"end": end})):
        return None
    version = client.command("SELECT any(model_version) FROM ml_model_predictions WHERE model_name = {m:String} AND prediction_date = {d:Date}",
                             parameters={"m": AD_PLACEMENT.name, "d": d})
    if not version:
        raise NotFound(f"no stored ad placement decisions for {d}: run `ownlens-ml predict ad_placement --date {d}` first")
    est = store.load(client, AD_PLACEMENT.name, version).estimator
    stats = _stats(client, d, end).groupby("placement")[["impressions", "clicks", "impression_revenue", "click_revenue"]].sum()
    out: dict = {"model_version": version}
    for i, placement in enumerate(est.placements_):
        if placement in stats.index and stats.loc[placement, "impressions"] > 0:
            row = stats.loc[placement]
            out[f"realised_ctr:{placement}"] = float(row["clicks"] / row["impressions"])
            out[f"expected_ctr:{placement}"] = float(est.alpha_[0, i] / (est.alpha_[0, i] + est.beta_[0, i]))
            out[f"realised_revenue_per_1000:{placement}"] = float(1000 * (row["impression_revenue"] + row["click_revenue"]) / row["impressions"])
    return out


def stored_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query("SELECT DISTINCT prediction_date FROM ml_model_predictions WHERE model_name = {m:String} "
                                       "ORDER BY 1", parameters={"m": AD_PLACEMENT.name}).result_rows]


AD_PLACEMENT = TaskModel(
    name="ad_placement",
    task="bandit",
    description="Ad placement by Thompson sampling over (device, placement) click rates and a revenue model",
    algorithm="thompson-sampling",
    output_table="ml_model_predictions",
    train=train,
    predict_batch=predict_batch,
    primary_metric="revenue_per_1000",
    plots=plots,
    realised=realised,
    stored_dates=stored_dates,
)



class AdPlacementModel(BaseMLModel):
    spec = AD_PLACEMENT


class AdPlacementTrainingPipeline(BaseTaskTrainer):
    task, model_class = AD_PLACEMENT, AdPlacementModel


class AdPlacementPredictor(BaseTaskPredictor):
    """``AdPlacementPredictor().predict(user_id, explore=True)``: the placement to show, with every placement's value."""

    task = AD_PLACEMENT

    def _lookup(self, user_ids, d, device: str | None = None, explore: bool = False, seed: int | None = None):
        return decide_users(self.client, self.model, user_ids, d, device, explore, seed)
