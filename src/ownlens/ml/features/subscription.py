"""Subscriber features and labels for a date, point in time: every subscription active at the start of ``d`` (started
before it, not cancelled before it), with its plan, tenure, payments and changes from billing events before ``d`` and
its reader's recent reading from sessions before ``d``; labels from billing events in [d, d+30).

Subscribers are rows whatever their reading: one who stopped reading (no row in customer_user_features, which
holds readers active in the 30 days before) is exactly who a customer-success team must see.
"""

from __future__ import annotations

from datetime import date

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import NotFound
from ownlens.ml.features.customer import LABEL_HORIZON_DAYS
from ownlens.ml.warehouse import replace_partition

# reading is summarised over the 30 days before the date only (a subscriber without a session in them counts 31 days
# since the last): longer windows are cut short on the early dates of a young warehouse, and a model trained there
# would learn the cut, not the reader (measured: a 90-day window took the model below days-since-last alone)
READING_DAYS = 30

ACTIVE_SUBSCRIPTIONS = """
subs AS (
    SELECT subscription_id, any(user_id) AS user_id, any(brand_id) AS brand_id,
           minIf(event_date, event_type = 'start') AS started_on,
           argMax(plan_code, event_date) AS plan_code,
           countIf(event_type = 'renewal') AS renewals,
           countIf(event_type = 'payment_failed') AS failed_payments,
           countIf(event_type = 'payment_failed' AND event_date >= {d:Date} - 90) AS failed_payments_90d,
           countIf(event_type = 'upgrade') AS upgrades,
           countIf(event_type = 'downgrade') AS downgrades,
           countIf(event_type = 'cancel') AS cancels
    FROM revenue_subscription_events
    WHERE event_date < {d:Date}
    GROUP BY subscription_id
    HAVING cancels = 0 AND started_on < {d:Date}
)"""

FEATURES_SELECT = "WITH " + ACTIVE_SUBSCRIPTIONS + """,
reading AS (
    SELECT user_id,
           countIf(session_start >= toDateTime({d:Date}) - INTERVAL 7 DAY) AS sessions_last_7d,
           countIf(session_start >= toDateTime({d:Date}) - INTERVAL 30 DAY) AS sessions_last_30d,
           uniqExactIf(toDate(session_start), session_start >= toDateTime({d:Date}) - INTERVAL 30 DAY) AS active_days_last_30d,
           dateDiff('day', toDate(max(session_start)), {d:Date}) AS days_since_last_session,
           avg(session_duration_sec) AS avg_session_duration_sec
    FROM customer_sessions
    WHERE session_start < toDateTime({d:Date}) AND session_start >= toDateTime({d:Date}) - INTERVAL {reading:UInt16} DAY
      AND user_id IN (SELECT user_id FROM subs)
    GROUP BY user_id
)
SELECT s.user_id, {d:Date} AS feature_date, s.brand_id, s.subscription_id, toString(s.plan_code) AS plan_code,
       p.tier AS plan_tier, p.monthly_price_eur AS monthly_price_eur,
       dateDiff('day', s.started_on, {d:Date}) AS tenure_days, s.renewals AS renewals,
       (30 - dateDiff('day', s.started_on, {d:Date}) % 30) % 30 AS days_to_renewal,
       s.failed_payments AS failed_payments, s.failed_payments_90d AS failed_payments_90d,
       s.upgrades AS upgrades, s.downgrades AS downgrades,
       ifNull(r.sessions_last_7d, 0) AS sessions_last_7d, ifNull(r.sessions_last_30d, 0) AS sessions_last_30d,
       ifNull(r.active_days_last_30d, 0) AS active_days_last_30d,
       (ifNull(r.sessions_last_7d, 0) * 30 / 7 + 1) / (ifNull(r.sessions_last_30d, 0) + 1) AS reading_trend,
       ifNull(r.days_since_last_session, {reading:UInt16} + 1) AS days_since_last_session,
       ifNull(r.avg_session_duration_sec, 0) AS avg_session_duration_sec,
       now() AS computed_at
FROM subs AS s
LEFT JOIN revenue_subscription_plans AS p ON p.plan_code = s.plan_code
LEFT JOIN reading AS r ON r.user_id = s.user_id
SETTINGS join_use_nulls = 1
"""

LABELS_SELECT = "WITH " + ACTIVE_SUBSCRIPTIONS + """,
after AS (
    SELECT subscription_id,
           countIf(event_type = 'upgrade') > 0 AS upgraded,
           countIf(event_type = 'downgrade') > 0 AS downgraded,
           countIf(event_type = 'cancel') > 0 AS cancelled
    FROM revenue_subscription_events
    WHERE event_date >= {d:Date} AND event_date < {d:Date} + {horizon:UInt16}
    GROUP BY subscription_id
)
SELECT s.user_id, {d:Date} AS feature_date, s.subscription_id,
       ifNull(a.upgraded, 0) AS upgraded_30d, ifNull(a.cancelled, 0) AS cancelled_30d,
       ifNull(a.cancelled, 0) OR ifNull(a.downgraded, 0) AS cancelled_or_downgraded_30d,
       (SELECT max(event_date) FROM revenue_subscription_events) >= {d:Date} + {horizon:UInt16} - 1 AS label_window_complete,
       now() AS computed_at
FROM subs AS s
LEFT JOIN after AS a ON a.subscription_id = s.subscription_id
SETTINGS join_use_nulls = 1
"""


def replace_or_empty(client: Client, table: str, d: date, select: str, params: dict) -> int:
    """``d``'s partition of ``table`` replaced by ``select``; emptied when there is nothing (no subscribers)."""
    try:
        return replace_partition(client, table, d, select, params)
    except NotFound:
        client.command("ALTER TABLE {t:Identifier} DROP PARTITION {p:Date}", parameters={"t": table, "p": d})
        return 0


def build_subscription_features(client: Client, d: date) -> int:
    return replace_or_empty(client, "customer_subscription_features", d, FEATURES_SELECT, {"d": d, "reading": READING_DAYS})


def build_subscription_labels(client: Client, d: date) -> int:
    return replace_or_empty(client, "customer_subscription_labels", d, LABELS_SELECT, {"d": d, "horizon": LABEL_HORIZON_DAYS})
