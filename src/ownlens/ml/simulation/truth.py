"""The simulator's oracle: for each user in the features of date D, the true probability of each label.

Computed only for evaluation (``models.oracle`` builds it when a model is compared with the truth), never by a
production path.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from ownlens.ml.simulation import catalog as cat
from ownlens.ml.simulation import marketing
from ownlens.ml.warehouse import replace_partition

POPULATION = """
SELECT u.user_id AS user_id, u.engaged_until AS engaged_until, u.churned_on AS churned_on,
       u.subscribed_on AS subscribed_on, u.activity_rate AS activity_rate,
       u.fading_activity_rate AS fading_activity_rate, u.fade_hazard AS fade_hazard,
       u.churn_hazard AS churn_hazard, u.conversion_rate AS conversion_rate
FROM sim_users AS u
WHERE u.user_id IN (SELECT user_id FROM customer_user_features WHERE feature_date = {d:Date})
"""
RUNS = "SELECT count() FROM sim_runs"
LATEST_RUN = "SELECT parameters FROM sim_runs ORDER BY created_at DESC LIMIT 1"


def _marketing_hazard(client: Client, d: date, horizon_days: int) -> np.ndarray:
    """The marketing part of the conversion hazard on each label day, per unit of a user's reach (``marketing.py``)."""
    params = json.loads(client.command(LATEST_RUN) or "{}")
    if "seed" not in params:
        return np.zeros(horizon_days)
    start, days = date.fromisoformat(params["start"]), int(params["days"])
    hazard = marketing.schedule(int(params["seed"]), days).hazard()
    index = np.array([(d - start).days + k for k in range(horizon_days)])
    inside = (index >= 0) & (index < days)
    return np.where(inside, hazard[np.clip(index, 0, days - 1)], 0.0)


def _day_factors(client: Client, d: date, horizon_days: int) -> np.ndarray:
    """Expected-session multiplier for each label day (weekday seasonality times any injected drift)."""
    days = [d + timedelta(days=k) for k in range(horizon_days)]
    factors = np.array([cat.WEEKDAY_FACTOR[day.weekday()] for day in days])
    params = client.command(LATEST_RUN)
    drift_at = json.loads(params).get("drift_at") if params else None
    if drift_at:
        factors *= np.array([0.6 if day >= date.fromisoformat(drift_at) else 1.0 for day in days])
    return factors


def churn_and_conversion(stage, activity, fading, a, h, c, factors) -> tuple[np.ndarray, np.ndarray]:
    """Exact P(no session in the next 30 days) and P(subscription in the next 30 days) given the latent state.

    ``stage`` is 0 engaged, 1 fading, 2 gone; ``c`` is each user's conversion hazard, per day (users x days) or
    the same every day (users), 0 for users already subscribed.
    """
    horizon = len(factors)
    c = np.asarray(c, dtype=float)
    c = np.broadcast_to(c[:, None] if c.ndim == 1 else c, (len(stage), horizon))
    unconverted = np.concatenate([np.ones((len(stage), 1)), np.cumprod(1 - c, 1)], 1)  # [:, j]: no conversion on days < j
    cum = np.concatenate([[0.0], np.cumsum(factors)])  # cum[j]: expected-session weight of days [0, j)

    def no_session_while_fading(j):  # P(no session on days j..horizon-1 | fading starts on day j)
        p = (1 - h) ** (horizon - j - 1) * np.exp(-fading * (cum[horizon] - cum[j]))
        for k in range(1, horizon - j):
            p = p + (1 - h) ** (k - 1) * h * np.exp(-fading * (cum[j + k] - cum[j]))
        return p

    engaged = (1 - a) ** (horizon - 1) * np.exp(-activity * cum[horizon]) * unconverted[:, horizon]
    for j in range(1, horizon):
        engaged = engaged + (1 - a) ** (j - 1) * a * np.exp(-activity * cum[j]) * unconverted[:, j] * no_session_while_fading(j)
    churn = np.select([stage == 0, stage == 1], [engaged, no_session_while_fading(0)], 1.0)
    convert = sum((1 - a) ** j * unconverted[:, j] * c[:, j] for j in range(horizon))
    return churn, np.where(stage == 0, convert, 0.0)


def expected_sessions(stage, activity, fading, a, h, factors) -> np.ndarray:
    """Expected number of sessions in the next ``len(factors)`` days given the latent state (Poisson rates)."""
    total = np.zeros_like(activity, dtype=float)
    p_engaged = (stage == 0).astype(float)
    p_fading = (stage == 1).astype(float)
    for factor in factors:
        total += factor * (p_engaged * activity + p_fading * fading)
        p_engaged, p_fading = p_engaged * (1 - a), p_fading * (1 - h) + p_engaged * a
    return total


def build_truth(client: Client, d: date, horizon_days: int) -> int:
    """sim_user_truth for ``d``: the probability of each label over the ``horizon_days`` from ``d`` for every user
    with features on ``d`` (0 without a simulation)."""
    if not int(client.command(RUNS)):
        return 0
    t = client.query_arrow(POPULATION, parameters={"d": d})
    if t.num_rows == 0:
        return 0
    col = lambda name: t.column(name).to_numpy(zero_copy_only=False)
    day = np.datetime64(d)
    engaged_until, churned_on = col("engaged_until").astype("datetime64[D]"), col("churned_on").astype("datetime64[D]")
    stage = np.where(day < engaged_until, 0, np.where(day < churned_on, 1, 2))
    subscribed = t.column("subscribed_on").to_pandas().to_numpy(dtype="datetime64[D]", na_value=np.datetime64("NaT"))
    already = ~np.isnat(subscribed) & (subscribed < day)
    # each day: converts organically or through a marketing touch (Poisson touches: E[prod (1 - p)] = exp(-reach * hazard))
    paid = np.exp(-marketing.reach(col("activity_rate"))[:, None] * _marketing_hazard(client, d, horizon_days)[None, :])
    conversion = np.where(already[:, None], 0.0, 1 - (1 - col("conversion_rate"))[:, None] * paid)
    churn, convert = churn_and_conversion(
        stage, col("activity_rate"), col("fading_activity_rate"), col("fade_hazard"), col("churn_hazard"),
        conversion, _day_factors(client, d, horizon_days),
    )
    expected = expected_sessions(
        stage, col("activity_rate"), col("fading_activity_rate"), col("fade_hazard"), col("churn_hazard"), _day_factors(client, d, horizon_days),
    )
    rows = pa.table({
        "user_id": t.column("user_id"),
        "feature_date": pa.array([d] * t.num_rows, type=pa.date32()),
        "stage": pa.array(np.array(["engaged", "fading", "gone"])[stage]),
        "churn_probability": churn,
        "conversion_probability": convert,
        "expected_sessions_30d": expected,
    })
    return replace_partition(client, "sim_user_truth", d, rows=rows)
