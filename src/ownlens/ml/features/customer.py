"""Customer features computed inside ClickHouse: customer_user_features, labels and the daily session summary.

Every query for date D reads only rows strictly before D, except the labels, which read only [D, D+30).
"""

from __future__ import annotations

from datetime import date, timedelta

from clickhouse_connect.driver.client import Client

from ownlens.ml.warehouse import replace_partition

ACTIVE_WINDOW_DAYS = 30  # a user gets a feature row for D when active in the 30 days before D
LABEL_HORIZON_DAYS = 30  # churn: no session in [D, D+30); conversion: a subscription in [D, D+30)

USER_FEATURES_SELECT = """
SELECT
    user_id,
    {d:Date} AS feature_date,
    argMin(s.brand_id, session_start) AS brand_id,
    count() AS total_sessions,
    sum(s.total_events) AS total_events,
    avg(session_duration_sec) AS avg_session_duration_sec,
    total_events / total_sessions AS avg_events_per_session,
    total_sessions * 7.0 / greatest(days_since_first_session, 1) AS session_frequency,
    uniqExact(toDate(session_start)) AS active_days,
    dateDiff('day', toDate(min(session_start)), {d:Date}) AS days_since_first_session,
    dateDiff('day', toDate(max(session_start)), {d:Date}) AS days_since_last_session,
    countIf(session_start >= {d:Date} - 7) AS sessions_last_7d,
    countIf(session_start >= {d:Date} - 30) AS sessions_last_30d,
    countIf(session_start >= {d:Date} - 60 AND session_start < {d:Date} - 30) AS sessions_prev_30d,
    uniqExactIf(toDate(session_start), session_start >= {d:Date} - 30) AS active_days_last_30d,
    (sessions_last_7d / 7.0 + 0.01) / (sessions_last_30d / 30.0 + 0.01) AS activity_trend,
    sum(page_views) AS total_page_views,
    sum(article_views) AS total_article_views,
    sum(article_clicks) AS total_article_clicks,
    sum(video_plays) AS total_video_plays,
    sum(newsletter_signups) AS total_newsletter_signups,
    sum(s.total_engagement_seconds) AS total_engagement_seconds,
    ifNotFinite(sumIf(avg_scroll_depth * article_views, article_views > 0) / total_article_views, 0) AS avg_scroll_depth,
    least(100.0, 20 * log1p(sessions_last_30d) + 25 * avg_scroll_depth + 10 * log1p(total_video_plays)
                 + 15 * click_through_rate + 5 * log1p(total_engagement_seconds / 60)) AS engagement_score,
    toUInt8(sum(subscriptions) > 0) AS is_subscriber,
    toUInt8(total_newsletter_signups > 0) AS has_newsletter,
    total_newsletter_signups / total_sessions AS newsletter_signup_rate,
    sum(ad_impressions) AS total_ad_impressions,
    sum(ad_clicks) AS total_ad_clicks,
    sum(ad_revenue) AS total_ad_revenue,
    topK(1)(s.brand_id)[1] AS preferred_brand_id,
    uniqExact(s.brand_id) AS brand_count,
    arrayMax(sumMap([s.brand_id], [toUInt64(1)]).2) / total_sessions AS brand_loyalty_score,
    nullIf(topKArray(1)(category_ids)[1], toUUID('00000000-0000-0000-0000-000000000000')) AS preferred_category_id,
    uniqExactArray(category_ids) AS category_diversity,
    topK(1)(country_code)[1] AS primary_country_code,
    topK(1)(city_id)[1] AS primary_city_id,
    topK(1)(device_type_id)[1] AS preferred_device_type_id,
    topK(1)(os_id)[1] AS preferred_os_id,
    topK(1)(browser_id)[1] AS preferred_browser_id,
    uniqExact(device_type_id) AS device_count,
    total_article_clicks / greatest(total_article_views, 1) AS click_through_rate,
    total_events / greatest(sum(session_duration_sec) / 60.0, 1) AS engagement_per_minute,
    exp(-days_since_last_session / 7.0) AS recency_score,
    log1p(sessions_last_30d) * active_days_last_30d / 30.0 AS activity_score,
    toJSONString(map(
        'weekend_session_share', countIf(toDayOfWeek(session_start) >= 6) / total_sessions,
        'evening_session_share', countIf(toHour(session_start) >= 18) / total_sessions,
        'morning_session_share', countIf(toHour(session_start) < 10) / total_sessions,
        'avg_articles_per_session', total_article_views / total_sessions,
        'ad_click_rate', total_ad_clicks / greatest(total_ad_impressions, 1)
    )) AS ml_features,
    now() AS computed_at
FROM customer_sessions AS s
WHERE session_start < {d:Date}
GROUP BY user_id
HAVING max(session_start) >= {d:Date} - 30
"""

LABELS_SELECT = """
SELECT
    f.user_id,
    {d:Date} AS feature_date,
    f.brand_id,
    toUInt8(ifNull(n.sessions, 0) = 0) AS churned_30d,
    toUInt8(f.is_subscriber = 0 AND ifNull(n.subscriptions, 0) > 0) AS converted_30d,
    ifNull(n.sessions, 0) AS sessions_next_30d,
    toUInt8((SELECT toDate(max(session_start)) FROM customer_sessions) >= {d:Date} + 29) AS label_window_complete,
    now() AS computed_at
FROM customer_user_features AS f
LEFT JOIN (
    SELECT user_id, count() AS sessions, sum(subscriptions) AS subscriptions
    FROM customer_sessions
    WHERE session_start >= {d:Date} AND session_start < {d:Date} + 30
    GROUP BY user_id
) AS n ON n.user_id = f.user_id
WHERE f.feature_date = {d:Date}
SETTINGS join_use_nulls = 1
"""

SESSION_SUMMARY_SELECT = """
SELECT
    {day:Date} AS date,
    brand_id,
    count() AS total_sessions,
    uniqExact(user_id) AS total_users,
    uniqExactIf(user_id, user_id IN (
        SELECT user_id FROM customer_sessions WHERE session_start < {day:Date} + 1
        GROUP BY user_id HAVING min(session_start) >= {day:Date}
    )) AS new_users,
    avg(session_duration_sec) AS avg_session_duration_sec,
    sum(total_events), sum(page_views), sum(article_views), sum(video_plays),
    sum(newsletter_signups), sum(subscriptions), sum(ad_impressions), sum(ad_clicks), sum(ad_revenue),
    now() AS computed_at
FROM customer_sessions
WHERE session_start >= {day:Date} AND session_start < {day:Date} + 1
GROUP BY brand_id
"""


def build_user_features(client: Client, d: date) -> int:
    """customer_user_features for ``d``: one row per user active in the 30 days before ``d``."""
    return replace_partition(client, "customer_user_features", d, USER_FEATURES_SELECT, {"d": d})


def build_labels(client: Client, d: date) -> int:
    """customer_user_labels for ``d`` (needs the features of ``d``), from sessions in [d, d+30) only."""
    return replace_partition(client, "customer_user_labels", d, LABELS_SELECT, {"d": d})


def build_session_summary(client: Client, d: date) -> int:
    """customer_session_summary_daily for the last complete day before ``d`` (d - 1)."""
    day = d - timedelta(days=1)
    return replace_partition(client, "customer_session_summary_daily", day, SESSION_SUMMARY_SELECT, {"day": day})
