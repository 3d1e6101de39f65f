"""The customer lifetime value model's functions (seed 004): what each customer is expected to bring over a horizon,
from one-off purchases (BG/NBD + Gamma-Gamma, ``lifetime.BuyTillYouDie``) and from their subscription (the
shifted-beta-geometric retention of every subscription, pooled over cohorts of all ages, times the plan's price).

``train`` fits both on everything before a cutoff and validates on the holdout after it (default: the last
``HOLDOUT_DAYS`` of data): predicted against actual purchases and revenue per customer, per quarterly cohort (of first
purchase, of subscription start, and of first revenue for the total) and in total, as MAPE and R2 (seed 004's
targets: MAPE < 15 %, R2 > 0.80), next to a "last period repeats" baseline (each customer's revenue of the as many
days before the cutoff) and the simulator's oracle (each customer's true purchase rate, dropout, mean order and
subscription churn, and whether they were still buying at the cutoff); and, with Prophet installed, the top-down
forecast of each cohort's revenue on the same holdout (``revenue_forecast.py``, the ``prophet_*`` metrics).

``predict_batch`` stores each customer's expected value over ``HORIZON_DAYS`` in customer_lifetime_value.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, Field
from sklearn.metrics import r2_score

from ownlens.ml.data.loaders import as_date, as_uuid
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import oracle
from ownlens.ml.models.customer import value_data
from ownlens.ml.models.customer.clv import ShiftedBetaGeometric, fit_sbg_durations
from ownlens.ml.models.customer.lifetime import BuyTillYouDie
from ownlens.ml.models.lookup import lookup_frame
from ownlens.ml.models.protocol import Evaluation, TrainingResult
from ownlens.ml.models.spec import CategoryEncoder
from ownlens.ml.models.trained import TrainedModel
from ownlens.ml.warehouse import replace_partition

log = logging.getLogger(__name__)

NAME = "clv"
HOLDOUT_DAYS = 60
MIN_HOLDOUT_DAYS = 28
HORIZON_DAYS = 365
PERIOD = value_data.PERIOD_DAYS
FEATURES = ["frequency", "recency", "T", "monetary_value"]


class CustomerValue(BaseModel):
    """A customer's expected value over the horizon: purchases and subscription."""

    user_id: str
    prediction_date: date
    horizon_days: int
    expected_purchases: float
    probability_alive: float = Field(description="P(still buying): BG/NBD's probability the customer has not dropped out (0 for non-buyers).")
    expected_order_value_eur: float
    expected_purchase_revenue_eur: float
    subscribed: bool
    plan_code: str | None
    tenure_months: int | None
    probability_subscribed_at_horizon: float
    expected_subscription_revenue_eur: float
    clv_eur: float = Field(description="Expected revenue over the horizon: purchases plus subscription payments.")
    model_version: str


class ValueOptions(BaseModel):
    horizon_days: int = Field(HORIZON_DAYS, ge=7, le=3650, description="The horizon of the expected value, in days.")


# -- subscriptions under the sBG ------------------------------------------------------------------------------------
def _renewals_passed(started: pd.Series, cutoff: date) -> np.ndarray:
    """Renewals (every ``PERIOD`` days after the start) that fell before the cutoff."""
    age = (pd.Timestamp(cutoff) - started).dt.days.to_numpy()
    return np.maximum((age - 1) // PERIOD, 0)


def sbg_training_rows(subs: pd.DataFrame, cutoff: date) -> tuple[np.ndarray, np.ndarray]:
    """Each subscription's periods and whether it churned, as known at the cutoff (a later cancellation is unknown)."""
    churned = subs["cancelled_on"].notna().to_numpy() & (subs["cancelled_on"] < pd.Timestamp(cutoff)).to_numpy()
    lasted = ((subs["cancelled_on"] - subs["started_on"]).dt.days // PERIOD).to_numpy(dtype=float, na_value=0)
    periods = np.where(churned, np.maximum(lasted, 1), _renewals_passed(subs["started_on"], cutoff))
    return periods, churned


def expected_payments(fit: ShiftedBetaGeometric, started: pd.Series, cutoff: date, days: int) -> tuple[np.ndarray, np.ndarray]:
    """For subscriptions active at the cutoff: the expected number of renewal payments in the ``days`` after it and
    P(still subscribed at the end), under the sBG given the renewals each has survived."""
    n = _renewals_passed(started, cutoff)
    age = (pd.Timestamp(cutoff) - started).dt.days.to_numpy()
    first = (age + PERIOD - 1) // PERIOD  # the first renewal on or after the cutoff
    count = np.maximum(((age + days - 1) // PERIOD) - first + 1, 0)
    top = int((n + count).max()) + 1 if len(n) else 1
    survival = fit.survival(top)
    payments = np.zeros(len(n))
    for j in range(int(count.max()) if len(count) else 0):
        k = first + j
        payments += np.where(j < count, survival[np.minimum(k, top)] / survival[n], 0.0)
    last = np.minimum(first + count - 1, top)
    still = np.where(count > 0, survival[np.maximum(last, n)] / survival[n], 1.0)
    return payments, still


# -- the test set and its metrics ----------------------------------------------------------------------------------
@dataclass
class ValueTest:
    cutoff: date
    days: int
    purchases: pd.DataFrame = field(repr=False)
    subscriptions: pd.DataFrame = field(repr=False)
    split: dict = field(default_factory=dict)


def _cutoff(client: Client, test_date) -> tuple[date, int]:
    first, last, rows = value_data.span(client)
    if rows == 0:
        raise NotFound("no payments or subscriptions in the warehouse: simulate (ownlens-ml simulate) or load revenue_* tables first")
    end = last + timedelta(days=1)
    cutoff = as_date(test_date, "test_date") if test_date else end - timedelta(days=HOLDOUT_DAYS)
    days = min(HOLDOUT_DAYS, (end - cutoff).days)
    if days < MIN_HOLDOUT_DAYS or cutoff <= first + timedelta(days=90):
        raise InvalidInput(f"the holdout must start at least 90 days after the first payment ({first}) and leave "
                           f"{MIN_HOLDOUT_DAYS} days before the last ({last}): pass a test date in between")
    return cutoff, days


def test_set(client: Client, *, test_date=None, **_) -> ValueTest:
    cutoff, days = _cutoff(client, test_date)
    purchases = value_data.purchase_summary(client, cutoff, days)
    subs = value_data.subscriptions(client, cutoff, days)
    active = subs["cancelled_on"].isna() | (subs["cancelled_on"] >= pd.Timestamp(cutoff))
    return ValueTest(cutoff, days, purchases, subs[active].reset_index(drop=True),
                     {"kind": "time", "test_date": str(cutoff), "test_dates": [str(cutoff), str(cutoff + timedelta(days=days - 1))],
                      "train_dates": [str(value_data.span(client)[0]), str(cutoff - timedelta(days=1))],
                      "test_rows": int(len(purchases) + active.sum()), "holdout_days": days})


def _mape(actual, predicted) -> float:
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    keep = actual > 0
    return float(np.mean(np.abs(predicted[keep] - actual[keep]) / actual[keep])) if keep.any() else float("nan")


def _r2(actual, predicted) -> float:
    return float(r2_score(actual, predicted)) if len(actual) > 1 else float("nan")


def _cohort_scores(prefix: str, cohort: pd.Series, actual: pd.Series, predicted: pd.Series) -> dict:
    g = pd.DataFrame({"c": cohort.to_numpy(), "a": actual.to_numpy(float), "p": predicted.to_numpy(float)}).groupby("c").sum()
    return {f"{prefix}_cohort_mape": round(_mape(g["a"], g["p"]), 4), f"{prefix}_cohort_r2": round(_r2(g["a"], g["p"]), 4)}


def _scores(purchases: pd.DataFrame, subs: pd.DataFrame, buy: np.ndarray, buy_revenue: np.ndarray, sub_revenue: np.ndarray) -> dict:
    """Every metric of one set of predictions (the model's, the baseline's or the oracle's) on the same rows."""
    p_cohort = purchases["first_purchase"].dt.to_period("Q").astype(str)
    s_cohort = subs["started_on"].dt.to_period("Q").astype(str)
    out = {"purchase_customer_r2": round(_r2(purchases["holdout_purchases"], buy), 4),
           "purchase_revenue_customer_r2": round(_r2(purchases["holdout_revenue"], buy_revenue), 4),
           "purchase_total_mape": round(_mape([purchases["holdout_purchases"].sum()], [buy.sum()]), 4)}
    out |= _cohort_scores("purchase", p_cohort, purchases["holdout_purchases"], pd.Series(buy))
    out |= _cohort_scores("purchase_revenue", p_cohort, purchases["holdout_revenue"], pd.Series(buy_revenue))
    if len(subs):
        out |= _cohort_scores("subscription_revenue", s_cohort, subs["holdout_revenue"], pd.Series(sub_revenue))
        out["subscription_revenue_total_mape"] = round(_mape([subs["holdout_revenue"].sum()], [sub_revenue.sum()]), 4)
    # the total per customer: purchases and subscription, by the month of their first revenue
    total = pd.concat([
        pd.DataFrame({"user_id": purchases["user_id"], "cohort": p_cohort, "actual": purchases["holdout_revenue"], "predicted": buy_revenue}),
        pd.DataFrame({"user_id": subs["user_id"], "cohort": s_cohort, "actual": subs["holdout_revenue"], "predicted": sub_revenue}),
    ]).groupby("user_id").agg(cohort=("cohort", "min"), actual=("actual", "sum"), predicted=("predicted", "sum"))
    out["revenue_customer_r2"] = round(_r2(total["actual"], total["predicted"]), 4)
    out["revenue_total_mape"] = round(_mape([total["actual"].sum()], [total["predicted"].sum()]), 4)
    out |= _cohort_scores("revenue", total["cohort"], total["actual"], total["predicted"])
    return out


def _summary_matrix(purchases: pd.DataFrame) -> np.ndarray:
    return purchases[FEATURES].to_numpy(float)


def _sbg(model: TrainedModel) -> ShiftedBetaGeometric:
    s = model.info["sbg"]
    return ShiftedBetaGeometric(float(s["alpha"]), float(s["beta"]), float(s.get("log_likelihood", 0.0)))


def evaluate(client: Client, model: TrainedModel, test: "ValueTest | ScoredValue") -> Evaluation:
    """The version's holdout predictions against what happened, next to the "last period repeats" baseline and the
    oracle, all on the same customers."""
    test = test.test if isinstance(test, ScoredValue) else test
    weeks = test.days / value_data.WEEK_DAYS
    X = _summary_matrix(test.purchases)
    buy = model.estimator.predict(X, weeks)
    buy_revenue = buy * model.estimator.expected_spend(X)
    payments, _ = expected_payments(_sbg(model), test.subscriptions["started_on"], test.cutoff, test.days)
    sub_revenue = payments * test.subscriptions["monthly_price_eur"].to_numpy(float)
    metrics = _scores(test.purchases, test.subscriptions, buy, buy_revenue, sub_revenue)
    baseline = _scores(test.purchases, test.subscriptions, test.purchases["last_period_purchases"].to_numpy(float),
                       test.purchases["last_period_revenue"].to_numpy(float), test.subscriptions["last_period_revenue"].to_numpy(float))
    metrics |= {f"baseline_{k}": v for k, v in baseline.items()}
    metrics |= {"customers": int(len(test.purchases)), "subscriptions": int(len(test.subscriptions)), "holdout_days": test.days}
    metrics |= cohort_forecast_scores(client, test)
    truth = oracle.customer_value(client, test.purchases["user_id"].tolist(), test.subscriptions, test.cutoff, test.days)
    oracle_metrics = None
    if truth is not None:
        buy_true, revenue_true, sub_true = truth
        oracle_metrics = _scores(test.purchases, test.subscriptions, buy_true, revenue_true, sub_true)
    scored = test.purchases.assign(predicted_purchases=buy, predicted_revenue=buy_revenue)
    return Evaluation(metrics, oracle_metrics, ScoredValue(test, scored, test.subscriptions.assign(predicted_revenue=sub_revenue)))


def cohort_forecast_scores(client: Client, test: ValueTest) -> dict:
    """Prophet's cohort revenue forecast over the same holdout (``revenue_forecast.py``); nothing without Prophet."""
    from ownlens.ml.models.customer import revenue_forecast
    from ownlens.ml.models.operations import forecast

    try:
        forecaster = forecast.prophet(uncertainty_samples=0)
    except InvalidInput:
        log.info("cohort revenue forecast skipped: Prophet is not installed (pip install 'ownlens[forecast]')")
        return {}
    daily = value_data.cohort_revenue(client, test.cutoff, test.days)
    return revenue_forecast.scores(revenue_forecast.cohort_forecast(daily, test.cutoff, test.days, forecaster))


@dataclass
class ScoredValue:
    """A test set scored by a version (``evaluate`` takes it as the test set again)."""

    test: ValueTest = field(repr=False)
    purchases: pd.DataFrame = field(repr=False)
    subscriptions: pd.DataFrame = field(repr=False)


def train(client: Client, *, test_date=None, brand_id=None, seed: int = 0, **_) -> TrainingResult:
    """Fit BG/NBD + Gamma-Gamma and the sBG on everything before the holdout, then validate on it."""
    if brand_id is not None:
        raise InvalidInput("customer value is fitted on every brand's customers: leave out --brand")
    t0 = time.perf_counter()
    test = test_set(client, test_date=test_date)
    purchases = test.purchases
    if len(purchases) < 10:
        raise NotFound(f"only {len(purchases)} customers bought before {test.cutoff}: BG/NBD needs at least 10")
    history = (pd.Timestamp(test.cutoff) - purchases["first_purchase"].min()).days
    if history < 90:
        raise InvalidInput(f"purchases start {history} days before the holdout ({test.cutoff}): the purchase model needs at "
                           "least 90 days of them, pass a later test date")
    estimator = BuyTillYouDie(horizon=HORIZON_DAYS / value_data.WEEK_DAYS).fit(_summary_matrix(purchases))
    subs = value_data.subscriptions(client, test.cutoff)
    periods, churned = sbg_training_rows(subs, test.cutoff)
    sbg = fit_sbg_durations(periods, churned)
    model = TrainedModel(NAME, "value", FEATURES, CategoryEncoder({}), estimator,
                         {"algorithm": "bgnbd-gamma-gamma+sbg", "trained_at": datetime.now(timezone.utc).isoformat(),
                          "split": test.split, "sbg": {"alpha": sbg.alpha, "beta": sbg.beta, "log_likelihood": sbg.log_likelihood},
                          "customers": int(len(purchases)), "subscriptions": int(len(subs))})
    evaluation = evaluate(client, model, test)
    window = (date.fromisoformat(test.split["train_dates"][0]), test.cutoff - timedelta(days=1))
    return TrainingResult(model, evaluation.metrics, evaluation.oracle_metrics, test.split, evaluation.scored, window,
                          {"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


# -- scoring ---------------------------------------------------------------------------------------------------------
def value_rows(client: Client, model: TrainedModel, d: date, horizon_days: int = HORIZON_DAYS, users: list[str] | None = None) -> pd.DataFrame:
    """Every customer's (or ``users``') expected value over ``horizon_days`` from ``d``."""
    purchases = value_data.purchase_summary(client, d, 1, users)
    subs = value_data.subscriptions(client, d, 0, users)
    subs = subs[subs["cancelled_on"].isna() | (subs["cancelled_on"] >= pd.Timestamp(d))]
    X = _summary_matrix(purchases)
    weeks = horizon_days / value_data.WEEK_DAYS
    est, some = model.estimator, len(X) > 0
    buy = pd.DataFrame({"user_id": purchases["user_id"], "expected_purchases": est.predict(X, weeks) if some else [],
                        "probability_alive": est.probability_alive(X) if some else [],
                        "expected_order_value_eur": est.expected_spend(X) if some else []})
    payments, still = expected_payments(_sbg(model), subs["started_on"], d, horizon_days)
    sub = pd.DataFrame({"user_id": subs["user_id"], "plan_code": subs["plan_code"].astype(str),
                        "tenure_months": _renewals_passed(subs["started_on"], d),
                        "probability_subscribed_at_horizon": still,
                        "expected_subscription_revenue_eur": payments * subs["monthly_price_eur"].to_numpy(float)})
    sub = sub.sort_values("expected_subscription_revenue_eur").drop_duplicates("user_id", keep="last")
    out = buy.merge(sub, on="user_id", how="outer")
    out["subscribed"] = out["plan_code"].notna()
    for column in ("expected_purchases", "probability_alive", "expected_order_value_eur", "probability_subscribed_at_horizon",
                   "expected_subscription_revenue_eur"):
        out[column] = out[column].fillna(0.0)
    out["expected_purchase_revenue_eur"] = out["expected_purchases"] * out["expected_order_value_eur"]
    out["clv_eur"] = out["expected_purchase_revenue_eur"] + out["expected_subscription_revenue_eur"]
    return out


_STORED = pa.schema([("prediction_date", pa.date32()), ("user_id", pa.string()), ("horizon_days", pa.uint16()),
                     ("expected_purchases", pa.float64()), ("probability_alive", pa.float64()), ("expected_order_value_eur", pa.float64()),
                     ("expected_purchase_revenue_eur", pa.float64()), ("subscribed", pa.uint8()), ("plan_code", pa.string()),
                     ("tenure_months", pa.uint16()), ("probability_subscribed_at_horizon", pa.float64()),
                     ("expected_subscription_revenue_eur", pa.float64()), ("clv_eur", pa.float64()), ("model_id", pa.string()),
                     ("model_version", pa.string())])


def example_keys(client: Client, d) -> list[str]:
    """Customers with a purchase before ``d``."""
    rows = client.query("SELECT DISTINCT toString(user_id) FROM revenue_payments WHERE kind = 'purchase' AND paid_at < {d:Date} "
                        "ORDER BY 1 LIMIT 10", parameters={"d": as_date(d, "date")}).result_rows
    return [r[0] for r in rows]


def _batch_date(client: Client, d) -> date:
    return as_date(d, "date") if d else value_data.span(client)[1] + timedelta(days=1)


def predict_batch(client: Client, model: TrainedModel, d, *, brand_id=None, progress=None, ab_test=None, **_) -> dict:
    """Every customer's expected value over ``HORIZON_DAYS`` from ``d`` (default: the day after the latest payment),
    replacing ``d``'s rows of customer_lifetime_value."""
    if brand_id is not None:
        raise InvalidInput("customer value covers every brand: leave out --brand")
    t0 = time.perf_counter()
    d = _batch_date(client, d)
    rows = value_rows(client, model, d)
    if rows.empty:
        raise NotFound(f"no customers with purchases or subscriptions before {d}: pick a later date")
    table = pa.table({
        "prediction_date": pa.array([d] * len(rows), pa.date32()), "user_id": pa.array(rows["user_id"].astype(str)),
        "horizon_days": pa.array([HORIZON_DAYS] * len(rows), pa.uint16()),
        **{c: pa.array(rows[c].to_numpy(float)) for c in ("expected_purchases", "probability_alive", "expected_order_value_eur",
                                                           "expected_purchase_revenue_eur")},
        "subscribed": pa.array(rows["subscribed"].to_numpy(np.uint8)), "plan_code": pa.array(rows["plan_code"].fillna("").astype(str)),
        "tenure_months": pa.array(rows["tenure_months"].fillna(0).to_numpy(np.uint16)),
        **{c: pa.array(rows[c].to_numpy(float)) for c in ("probability_subscribed_at_horizon", "expected_subscription_revenue_eur", "clv_eur")},
        "model_id": pa.array([model.model_id] * len(rows), pa.string()),
        "model_version": pa.array([model.version or "unregistered"] * len(rows)),
    }).cast(_STORED)
    written = replace_partition(client, "customer_lifetime_value", d, rows=table)
    if progress:
        progress(written)
    seconds = time.perf_counter() - t0
    return {"model": NAME, "version": model.version, "date": str(d), "rows": written, "horizon_days": HORIZON_DAYS,
            "total_clv_eur": round(float(rows["clv_eur"].sum()), 2), "seconds": round(seconds, 3),
            "rows_per_s": round(written / seconds) if seconds else None, "table": "customer_lifetime_value"}


def stored_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query("SELECT DISTINCT prediction_date FROM customer_lifetime_value ORDER BY 1").result_rows]


REALISED = """
SELECT toString(v.user_id) AS user_id, v.clv_eur AS predicted, v.horizon_days AS horizon,
       (SELECT max(toDate(paid_at)) FROM revenue_payments) AS data_end
FROM customer_lifetime_value AS v WHERE v.prediction_date = {d:Date}
"""
PAID = """
SELECT toString(user_id) AS user_id, sum(amount_eur) AS paid FROM revenue_payments
WHERE paid_at >= toDateTime({d:Date}) AND paid_at < toDateTime({end:Date}) GROUP BY user_id
"""


def realised(client: Client, d) -> dict | None:
    """The values stored for ``d`` against what the customers paid since, once the whole horizon is in the data
    (None before); per customer (R2) and in total (MAPE)."""
    d = as_date(d, "date")
    stored = client.query(REALISED, parameters={"d": d}).result_rows
    if not stored:
        return None
    horizon, data_end = int(stored[0][2]), stored[0][3]
    if data_end is None or data_end < d + timedelta(days=horizon - 1):
        return None
    predicted = pd.Series({r[0]: r[1] for r in stored})
    paid = pd.Series(dict(client.query(PAID, parameters={"d": d, "end": d + timedelta(days=horizon)}).result_rows)).reindex(predicted.index).fillna(0)
    return {"revenue_customer_r2": round(_r2(paid, predicted), 4), "revenue_total_mape": round(_mape([paid.sum()], [predicted.sum()]), 4),
            "customers": int(len(predicted))}


class ValueServer:
    """Customers' expected value over a horizon from a date (default: the day after the latest payment)."""

    entity = ("user_id",)

    def __init__(self, client: Client, model: TrainedModel, cache_ttl_s: float = 0.0):
        self.client, self.model = client, model

    def records(self, keys: list, feature_date=None, horizon_days: int = HORIZON_DAYS, **_) -> tuple[list[dict], list]:
        users = [as_uuid(k) for k in keys]
        d = _batch_date(self.client, feature_date)
        rows = value_rows(self.client, self.model, d, int(horizon_days), users)
        records = [{"user_id": r.user_id, "prediction_date": str(d), "horizon_days": int(horizon_days),
                    "expected_purchases": round(float(r.expected_purchases), 4), "probability_alive": round(float(r.probability_alive), 4),
                    "expected_order_value_eur": round(float(r.expected_order_value_eur), 2),
                    "expected_purchase_revenue_eur": round(float(r.expected_purchase_revenue_eur), 2), "subscribed": bool(r.subscribed),
                    "plan_code": None if pd.isna(r.plan_code) else str(r.plan_code),
                    "tenure_months": None if pd.isna(r.tenure_months) else int(r.tenure_months),
                    "probability_subscribed_at_horizon": round(float(r.probability_subscribed_at_horizon), 4),
                    "expected_subscription_revenue_eur": round(float(r.expected_subscription_revenue_eur), 2),
                    "clv_eur": round(float(r.clv_eur), 2), "model_version": self.model.version or "unregistered"}
                   for r in rows.itertuples(index=False)]
        known = {r["user_id"] for r in records}
        return records, [u for u in users if u not in known]

    def frame(self, keys: list, feature_date=None, **options) -> pd.DataFrame:
        return lookup_frame(*self.records(keys, feature_date, **options), "users have no purchases or subscriptions before the date")

    def cached_record(self, key, **options) -> dict | None:
        return None


def server(client: Client, model: TrainedModel, cache_ttl_s: float = 0.0) -> ValueServer:
    return ValueServer(client, model, cache_ttl_s)


def plots(result, plt) -> list[tuple[str, str]]:
    """Predicted against actual holdout revenue per quarterly cohort (purchases and subscriptions), with the baseline."""
    from ownlens.ml.data.exploration import _figure_html

    scored: ScoredValue = result.test
    p = scored.purchases.assign(cohort=scored.purchases["first_purchase"].dt.to_period("Q").astype(str))
    s = scored.subscriptions.assign(cohort=scored.subscriptions["started_on"].dt.to_period("Q").astype(str))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, frame, actual, baseline, title in ((axes[0], p, "holdout_revenue", "last_period_revenue", "purchases by quarter of first purchase"),
                                                (axes[1], s, "holdout_revenue", "last_period_revenue", "subscriptions by start quarter")):
        g = frame.groupby("cohort")[[actual, "predicted_revenue", baseline]].sum()
        ax.plot(range(len(g)), g[actual], marker="o", label="actual")
        ax.plot(range(len(g)), g["predicted_revenue"], marker="x", label="predicted")
        ax.plot(range(len(g)), g[baseline], ls=":", label="last period repeats")
        ax.set_xticks(range(len(g))[::max(len(g) // 8, 1)], g.index[::max(len(g) // 8, 1)], rotation=45, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("holdout revenue, EUR")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return [("Customer value: holdout revenue per cohort, predicted against actual", _figure_html(fig))]
