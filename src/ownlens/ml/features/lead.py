"""Lead features for a date, point in time: for every free reader of ``customer_user_features`` on ``d`` (active in
the 30 days before it, not subscribed), the marketing touches before ``d`` and their funnel stage.

The funnel stage is read from what the warehouse records (the simulator has no registration yet: a newsletter
signup, an email on file, stands for it): ``aware`` (read on at most 2 of the last 30 days), ``interested`` (on 3 or
more), ``registered`` (signed up to a newsletter), ``engaged`` (registered and read on 10 or more).
"""

from __future__ import annotations

from datetime import date

from clickhouse_connect.driver.client import Client

from ownlens.ml.features.subscription import replace_or_empty

TOUCH_DAYS = 30
FUNNEL_STAGES = ("aware", "interested", "registered", "engaged")

FEATURES_SELECT = """
WITH touches AS (
    SELECT user_id,
           countIf(touched_at >= toDateTime({d:Date}) - INTERVAL 7 DAY) AS touches_last_7d,
           count() AS touches_last_30d,
           uniqExact(channel_code) AS channels_touched_30d,
           dateDiff('day', toDate(max(touched_at)), {d:Date}) AS days_since_last_touch,
           toString(argMax(channel_code, touched_at)) AS last_touch_channel
    FROM marketing_touchpoints
    WHERE touched_at < toDateTime({d:Date}) AND touched_at >= toDateTime({d:Date}) - INTERVAL {days:UInt16} DAY
    GROUP BY user_id
)
SELECT uf.user_id AS user_id, {d:Date} AS feature_date, uf.brand_id AS brand_id,
       ifNull(t.touches_last_7d, 0) AS touches_last_7d, ifNull(t.touches_last_30d, 0) AS touches_last_30d,
       ifNull(t.channels_touched_30d, 0) AS channels_touched_30d,
       ifNull(t.days_since_last_touch, {days:UInt16} + 1) AS days_since_last_touch,
       ifNull(t.last_touch_channel, '') AS last_touch_channel,
       multiIf(uf.has_newsletter = 1 AND uf.active_days_last_30d >= 10, 'engaged', uf.has_newsletter = 1, 'registered',
               uf.active_days_last_30d >= 3, 'interested', 'aware') AS funnel_stage,
       now() AS computed_at
FROM customer_user_features AS uf
LEFT JOIN touches AS t ON t.user_id = uf.user_id
WHERE uf.feature_date = {d:Date} AND uf.is_subscriber = 0
SETTINGS join_use_nulls = 1
"""


def build_lead_features(client: Client, d: date) -> int:
    return replace_or_empty(client, "customer_lead_features", d, FEATURES_SELECT, {"d": d, "days": TOUCH_DAYS})
