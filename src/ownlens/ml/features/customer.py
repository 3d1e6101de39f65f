"""Customer features computed inside ClickHouse: customer_user_features, labels and the daily session summary.

Every query for date D reads only rows strictly before D, except the labels, which read only [D, D+30).
"""

from __future__ import annotations

from datetime import date, timedelta

from clickhouse_connect.driver.client import Client

from ownlens.ml.warehouse import reload_if_loaded, replace_partition

ACTIVE_WINDOW_DAYS = 30  # a user gets a feature row for D when active in the 30 days before D
LABEL_HORIZON_DAYS = 30  # churn: no session in [D, D+30); conversion: a subscription in [D, D+30)

def _mode(index: int) -> str:
    """(sessions, value) of the most frequent value of field ``index`` of a user's context tuples.

    Ties go to the larger value, so the result never depends on the order rows were read in.
    Most users have one context, which skips the array work.
    """
    return (
        f"if(length(m.contexts) = 1, (m.contexts[1].7, m.contexts[1].{index}), "
        f"arrayReverseSort(arrayMap(v -> (arraySum(arrayMap(t -> if(t.{index} = v, t.7, 0), m.contexts)), v), "
        f"arrayDistinct(arrayMap(t -> t.{index}, m.contexts))))[1])"
    )


# Three aggregations over the sessions before D, joined on user_id: the additive and windowed
# statistics; the user's "contexts" (brand, device, OS, browser, country, city, grouped by a hash
# so the key stays 24 bytes) from which the exact "preferred" values are picked; and the
# categories read. Per-user topK-style states would cost gigabytes at a million users; these
# cost a few hundred bytes.
USER_FEATURES_SELECT = f"""
SELECT
    a.user_id,
    {{d:Date}} AS feature_date,
    a.first_brand_id AS brand_id,
    a.total_sessions, a.total_events, a.avg_session_duration_sec,
    a.total_events / a.total_sessions AS avg_events_per_session,
    a.total_sessions * 7.0 / greatest(a.days_since_first_session, 1) AS session_frequency,
    a.active_days, a.days_since_first_session, a.days_since_last_session,
    a.sessions_last_7d, a.sessions_last_30d, a.sessions_prev_30d, a.active_days_last_30d,
    (a.sessions_last_7d / 7.0 + 0.01) / (a.sessions_last_30d / 30.0 + 0.01) AS activity_trend,
    a.total_page_views, a.total_article_views, a.total_article_clicks, a.total_video_plays,
    a.total_newsletter_signups, a.total_engagement_seconds,
    ifNotFinite(a.scroll_x_views / a.total_article_views, 0) AS avg_scroll_depth,
    least(100.0, 20 * log1p(a.sessions_last_30d) + 25 * avg_scroll_depth + 10 * log1p(a.total_video_plays)
                 + 15 * click_through_rate + 5 * log1p(a.total_engagement_seconds / 60)) AS engagement_score,
    toUInt8(a.subscriptions > 0) AS is_subscriber,
    toUInt8(a.total_newsletter_signups > 0) AS has_newsletter,
    a.total_newsletter_signups / a.total_sessions AS newsletter_signup_rate,
    a.total_ad_impressions, a.total_ad_clicks, a.total_ad_revenue,
    {_mode(1)}.2 AS preferred_brand_id,
    if(length(m.contexts) = 1, 1, length(arrayDistinct(arrayMap(t -> t.1, m.contexts)))) AS brand_count,
    {_mode(1)}.1 / a.total_sessions AS brand_loyalty_score,
    k.preferred_category_id,
    ifNull(k.category_diversity, 0) AS category_diversity,
    {_mode(5)}.2 AS primary_country_code,
    {_mode(6)}.2 AS primary_city_id,
    {_mode(2)}.2 AS preferred_device_type_id,
    {_mode(3)}.2 AS preferred_os_id,
    {_mode(4)}.2 AS preferred_browser_id,
    if(length(m.contexts) = 1, 1, length(arrayDistinct(arrayMap(t -> t.2, m.contexts)))) AS device_count,
    a.total_article_clicks / greatest(a.total_article_views, 1) AS click_through_rate,
    a.total_events / greatest(a.total_duration_sec / 60.0, 1) AS engagement_per_minute,
    exp(-a.days_since_last_session / 7.0) AS recency_score,
    log1p(a.sessions_last_30d) * a.active_days_last_30d / 30.0 AS activity_score,
    toJSONString(map(
        'weekend_session_share', a.weekend_sessions / a.total_sessions,
        'evening_session_share', a.evening_sessions / a.total_sessions,
        'morning_session_share', a.morning_sessions / a.total_sessions,
        'avg_articles_per_session', a.total_article_views / a.total_sessions,
        'ad_click_rate', a.total_ad_clicks / greatest(a.total_ad_impressions, 1)
    )) AS ml_features,
    now() AS computed_at
FROM (
    SELECT
        user_id,
        argMin(brand_id, session_start) AS first_brand_id,
        count() AS total_sessions,
        sum(total_events) AS total_events,
        avg(session_duration_sec) AS avg_session_duration_sec,
        sum(session_duration_sec) AS total_duration_sec,
        uniqExact(toDate(session_start)) AS active_days,
        dateDiff('day', toDate(min(session_start)), {{d:Date}}) AS days_since_first_session,
        dateDiff('day', toDate(max(session_start)), {{d:Date}}) AS days_since_last_session,
        countIf(session_start >= {{d:Date}} - 7) AS sessions_last_7d,
        countIf(session_start >= {{d:Date}} - 30) AS sessions_last_30d,
        countIf(session_start >= {{d:Date}} - 60 AND session_start < {{d:Date}} - 30) AS sessions_prev_30d,
        -- distinct days among the last 30, as bits of one integer: exact and O(1) per user
        bitCount(groupBitOrIf(bitShiftLeft(toUInt64(1), dateDiff('day', toDate(session_start), {{d:Date}})),
                              session_start >= {{d:Date}} - 30)) AS active_days_last_30d,
        sum(page_views) AS total_page_views,
        sum(article_views) AS total_article_views,
        sum(article_clicks) AS total_article_clicks,
        sum(video_plays) AS total_video_plays,
        sum(newsletter_signups) AS total_newsletter_signups,
        sum(total_engagement_seconds) AS total_engagement_seconds,
        sumIf(avg_scroll_depth * article_views, article_views > 0) AS scroll_x_views,
        sum(subscriptions) AS subscriptions,
        sum(ad_impressions) AS total_ad_impressions,
        sum(ad_clicks) AS total_ad_clicks,
        sum(ad_revenue) AS total_ad_revenue,
        countIf(toDayOfWeek(session_start) >= 6) AS weekend_sessions,
        countIf(toHour(session_start) >= 18) AS evening_sessions,
        countIf(toHour(session_start) < 10) AS morning_sessions
    FROM customer_sessions
    WHERE session_start < {{d:Date}}
    GROUP BY user_id
    HAVING max(session_start) >= {{d:Date}} - 30
) AS a
INNER JOIN (
    SELECT user_id, groupArray((c_brand, c_device, c_os, c_browser, c_country, c_city, n)) AS contexts
    FROM (
        SELECT user_id, cityHash64(brand_id, device_type_id, os_id, browser_id, country_code, city_id) AS context,
               any(brand_id) AS c_brand, any(device_type_id) AS c_device, any(os_id) AS c_os,
               any(browser_id) AS c_browser, any(country_code) AS c_country, any(city_id) AS c_city, count() AS n
        FROM customer_sessions
        WHERE session_start < {{d:Date}}
        GROUP BY user_id, context
    )
    GROUP BY user_id
) AS m ON m.user_id = a.user_id
LEFT JOIN (
    SELECT user_id, argMax(category_id, (n, category_id)) AS preferred_category_id, count() AS category_diversity
    FROM (
        SELECT user_id, category_id, count() AS n
        FROM customer_sessions ARRAY JOIN category_ids AS category_id
        WHERE session_start < {{d:Date}}
        GROUP BY user_id, category_id
    )
    GROUP BY user_id
) AS k ON k.user_id = a.user_id
SETTINGS join_use_nulls = 1
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


VECTORS_SELECT = """
SELECT uf.feature_date, uf.user_id, uf.brand_id, {{signature:String}} AS feature_set, {vectors}
FROM customer_user_features AS uf
WHERE uf.feature_date = {{d:Date}}
"""


def build_user_feature_vectors(client: Client, d: date) -> int:
    """customer_user_feature_vectors for ``d``: the model inputs of customer_user_features, packed for fast point reads."""
    from ownlens.ml.models.customer import USER_FEATURES

    sql = VECTORS_SELECT.format(vectors=USER_FEATURES.vector_sql("uf"))
    rows = replace_partition(client, "customer_user_feature_vectors", d, sql, {"d": d, "signature": USER_FEATURES.signature})
    reload_if_loaded(client, "dict_user_feature_vectors")
    return rows


def build_labels(client: Client, d: date) -> int:
    """customer_user_labels for ``d`` (needs the features of ``d``), from sessions in [d, d+30) only."""
    return replace_partition(client, "customer_user_labels", d, LABELS_SELECT, {"d": d})


def build_session_summary(client: Client, d: date) -> int:
    """customer_session_summary_daily for the last complete day before ``d`` (d - 1)."""
    day = d - timedelta(days=1)
    return replace_partition(client, "customer_session_summary_daily", day, SESSION_SUMMARY_SELECT, {"day": day})
