"""Customer value data from the warehouse, shaped for the lifetime-value models: each buyer's purchase summary up to a
cutoff (what BG/NBD and Gamma-Gamma take) with what they bought after it, and each subscription's tenure and state.

Purchases are one-off payments (``revenue_payments.kind = 'purchase'``); a customer is born at their first purchase
and time is counted in weeks, as in the literature (CDNOW). Subscriptions run in 30-day periods from their start.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import query_frame

WEEK_DAYS = 7.0
PERIOD_DAYS = 30

PURCHASE_SUMMARY = """
WITH per_day AS (  -- purchases on the same day are one transaction, as lifetimes counts them
    SELECT user_id, toDate(paid_at) AS day, sum(amount_eur) AS amount
    FROM revenue_payments
    WHERE kind = 'purchase' AND paid_at < toDateTime({holdout_end:Date})
      AND (empty({users:Array(UUID)}) OR user_id IN {users:Array(UUID)})
    GROUP BY user_id, day
)
SELECT toString(user_id) AS user_id,
       minIf(day, day < {cutoff:Date}) AS first_purchase,
       countIf(day < {cutoff:Date}) - 1 AS frequency,
       dateDiff('day', minIf(day, day < {cutoff:Date}), maxIf(day, day < {cutoff:Date})) / {week:Float64} AS recency,
       dateDiff('day', minIf(day, day < {cutoff:Date}), {cutoff:Date}) / {week:Float64} AS T,
       if(countIf(day < {cutoff:Date}) > 1,
          (sumIf(amount, day < {cutoff:Date}) - argMinIf(amount, day, day < {cutoff:Date})) / (countIf(day < {cutoff:Date}) - 1),
          0) AS monetary_value,
       sumIf(amount, day < {cutoff:Date}) AS spent,
       countIf(day >= {cutoff:Date}) AS holdout_purchases,
       sumIf(amount, day >= {cutoff:Date}) AS holdout_revenue,
       countIf(day >= {cutoff:Date} - {holdout_days:UInt16} AND day < {cutoff:Date}) AS last_period_purchases,
       sumIf(amount, day >= {cutoff:Date} - {holdout_days:UInt16} AND day < {cutoff:Date}) AS last_period_revenue
FROM per_day
GROUP BY user_id
HAVING countIf(day < {cutoff:Date}) > 0
"""

SUBSCRIPTIONS = """
SELECT toString(subscription_id) AS subscription_id, toString(any(user_id)) AS subscriber,
       minIf(event_date, event_type = 'start') AS started_on,
       minIf(event_date, event_type = 'cancel') AS cancelled_on_raw,
       countIf(event_type = 'cancel') > 0 AS ever_cancelled,
       argMaxIf(plan_code, event_date, event_date < {cutoff:Date}) AS plan_code,
       countIf(event_type = 'payment_failed' AND event_date < {cutoff:Date}) AS failed_payments,
       countIf(event_type = 'upgrade' AND event_date < {cutoff:Date}) AS upgrades,
       countIf(event_type = 'downgrade' AND event_date < {cutoff:Date}) AS downgrades
FROM revenue_subscription_events
WHERE empty({users:Array(UUID)}) OR user_id IN {users:Array(UUID)}
GROUP BY subscription_id
HAVING started_on < {cutoff:Date}
"""
RENEWALS = """
SELECT toString(subscription_id) AS subscription_id,
       sumIf(amount_eur, event_date >= {cutoff:Date} AND event_date < {cutoff:Date} + {days:UInt16}) AS holdout_revenue,
       sumIf(amount_eur, event_date >= {cutoff:Date} - {days:UInt16} AND event_date < {cutoff:Date}) AS last_period_revenue
FROM revenue_subscription_events
WHERE event_type = 'renewal' AND event_date >= {cutoff:Date} - {days:UInt16} AND event_date < {cutoff:Date} + {days:UInt16}
GROUP BY subscription_id
"""
SPAN = """
SELECT least((SELECT min(toDate(paid_at)) FROM revenue_payments), (SELECT min(event_date) FROM revenue_subscription_events)),
       greatest((SELECT max(toDate(paid_at)) FROM revenue_payments), (SELECT max(event_date) FROM revenue_subscription_events)),
       (SELECT count() FROM revenue_payments) + (SELECT count() FROM revenue_subscription_events)
"""
PRICES = "SELECT plan_code, monthly_price_eur FROM revenue_subscription_plans"
# every payment (purchases and subscription charges) of the customers who paid before the cutoff, per day and
# quarterly cohort of their first payment
COHORT_REVENUE = """
WITH firsts AS (
    SELECT user_id, min(paid_at) AS first_paid FROM revenue_payments GROUP BY user_id HAVING first_paid < toDateTime({cutoff:Date})
)
SELECT toString(toStartOfQuarter(f.first_paid)) AS cohort, toDate(p.paid_at) AS ds, sum(p.amount_eur) AS y
FROM revenue_payments AS p
INNER JOIN firsts AS f ON f.user_id = p.user_id
WHERE p.paid_at < toDateTime({end:Date})
GROUP BY cohort, ds
ORDER BY cohort, ds
"""


def span(client: Client) -> tuple[date, date, int]:
    """The first and last day with payments or subscription events, and how many rows there are."""
    first, last, rows = client.query(SPAN).result_rows[0]
    return first, last, int(rows)


def purchase_summary(client: Client, cutoff: date, holdout_days: int, users: list[str] | None = None) -> pd.DataFrame:
    """One row per customer with a purchase before ``cutoff``: the lifetimes summary (``frequency``, ``recency``,
    ``T`` in weeks, ``monetary_value``), their purchases and revenue in the ``holdout_days`` from ``cutoff``, and in
    the same number of days before it (the "last period repeats" baseline)."""
    frame = query_frame(client, PURCHASE_SUMMARY, {"cutoff": cutoff, "holdout_end": cutoff + pd.Timedelta(days=holdout_days),
                                                   "holdout_days": holdout_days, "week": WEEK_DAYS, "users": users or []})
    for column in ("frequency", "holdout_purchases", "last_period_purchases"):
        frame[column] = frame[column].astype(np.int64)
    frame["first_purchase"] = pd.to_datetime(frame["first_purchase"])
    return frame


def subscriptions(client: Client, cutoff: date, holdout_days: int = 0, users: list[str] | None = None) -> pd.DataFrame:
    """Every subscription started before ``cutoff``: its start, its cancellation (NaT while active), the plan and its
    price at the cutoff, failed payments, upgrades and downgrades before it; with ``holdout_days``, its renewal
    revenue in those days from the cutoff and in as many days before it."""
    frame = query_frame(client, SUBSCRIPTIONS, {"cutoff": cutoff, "users": users or []}).rename(columns={"subscriber": "user_id"})
    frame["started_on"] = pd.to_datetime(frame["started_on"])
    frame["cancelled_on"] = pd.to_datetime(frame["cancelled_on_raw"]).where(frame["ever_cancelled"].astype(bool))
    prices = dict(client.query(PRICES).result_rows)
    frame["monthly_price_eur"] = frame["plan_code"].astype(str).map(prices).astype(float)
    frame = frame.drop(columns=["cancelled_on_raw", "ever_cancelled"])
    if holdout_days:
        renewals = query_frame(client, RENEWALS, {"cutoff": cutoff, "days": holdout_days})
        frame = frame.merge(renewals, on="subscription_id", how="left").fillna({"holdout_revenue": 0.0, "last_period_revenue": 0.0})
    return frame


def cohort_revenue(client: Client, cutoff: date, holdout_days: int) -> pd.DataFrame:
    """Daily revenue (``cohort``, ``ds``, ``y``) of the customers who paid before ``cutoff``, up to the holdout's end."""
    frame = query_frame(client, COHORT_REVENUE, {"cutoff": cutoff, "end": cutoff + pd.Timedelta(days=holdout_days)})
    frame["ds"] = pd.to_datetime(frame["ds"])
    return frame
