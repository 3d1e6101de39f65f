"""Customer features computed inside ClickHouse: customer_user_features, labels and the daily session summary.

Every query for date D reads only rows strictly before D, except the labels, which read only [D, D+30).
customer_user_features of D is computed from customer_user_state of D, each user's running totals over
their sessions before D; that state is the previous state plus the sessions since, so a daily build
reads one day of sessions instead of all history (the first build, or one after late data, reads it all).
"""

from __future__ import annotations

from datetime import date, timedelta

from clickhouse_connect.driver.client import Client

from ownlens.ml.features.sets import USER_FEATURES
from ownlens.ml.warehouse import reload_if_loaded, replace_partition

ACTIVE_WINDOW_DAYS = 30  # a user gets a feature row for D when active in the 30 days before D
LABEL_HORIZON_DAYS = 30  # churn: no session in [D, D+30); conversion: a subscription in [D, D+30)

STATE_REUSE_DAYS = 14  # a date's state is built from an earlier state at most this many days older, else from all history
STATE_KEEP_DATES = 4  # the newest states kept; older ones are dropped (rebuilding an old date then reads all history)

_CONTEXT_FIELDS = {"brands": (1, "UUID"), "devices": (2, "UUID"), "oses": (3, "UUID"), "browsers": (4, "UUID"),
                   "countries": (5, "LowCardinality(String)"), "cities": (6, "UUID")}


def _context_map(name: str) -> str:
    """Sessions per value of one field of a user's context tuples, as a Map (most users have one context)."""
    i, key = _CONTEXT_FIELDS[name]
    values = f"arrayDistinct(arrayMap(t -> t.{i}, m.contexts))"
    counts = f"arrayMap(v -> toUInt32(arraySum(arrayMap(t -> if(t.{i} = v, t.7, 0), m.contexts))), {values})"
    return (f"if(length(m.contexts) = 1, CAST(map(m.contexts[1].{i}, toUInt32(m.contexts[1].7)), 'Map({key}, UInt32)'), "
            f"CAST(mapFromArrays({values}, {counts}), 'Map({key}, UInt32)')) AS {name}")


# Every user's state over the sessions in [lo, d): additive totals, sessions per day back, and session
# counts per context value (brand, device, OS, browser, country, city: grouped by a hash of the six so the
# key stays small) and per category read. With lo = 1970-01-01 it is the state of d from all history.
STATE_WINDOW_SELECT = f"""
SELECT
    {{d:Date}} AS state_date, a.user_id AS user_id, a.first_session, a.first_brand_id, a.last_session,
    a.total_sessions, a.total_events, a.total_duration_sec, a.active_days,
    CAST(mapFromArrays(arrayDistinct(a.recent_days),
                       arrayMap(x -> toUInt32(countEqual(a.recent_days, x)), arrayDistinct(a.recent_days))),
         'Map(Date, UInt32)') AS daily_sessions,
    a.page_views, a.article_views, a.article_clicks, a.video_plays, a.newsletter_signups, a.engagement_seconds,
    a.scroll_x_views, a.subscriptions, a.ad_impressions, a.ad_clicks, a.ad_revenue,
    a.weekend_sessions, a.evening_sessions, a.morning_sessions,
    {", ".join(_context_map(name) for name in _CONTEXT_FIELDS)},
    CAST(mapFromArrays(k.ids, k.sessions), 'Map(UUID, UInt32)') AS categories
FROM (
    SELECT
        s.user_id AS user_id,
        min(s.session_start) AS first_session,
        argMin(s.brand_id, (s.session_start, s.brand_id)) AS first_brand_id,  -- ties broken by brand: reproducible
        max(s.session_start) AS last_session,
        count() AS total_sessions,
        sum(s.total_events) AS total_events,
        sum(s.session_duration_sec) AS total_duration_sec,
        uniqExact(toDate(s.session_start)) AS active_days,
        groupArrayIf(toDate(s.session_start), s.session_start >= {{d:Date}} - 60) AS recent_days,
        sum(s.page_views) AS page_views,
        sum(s.article_views) AS article_views,
        sum(s.article_clicks) AS article_clicks,
        sum(s.video_plays) AS video_plays,
        sum(s.newsletter_signups) AS newsletter_signups,
        sum(s.total_engagement_seconds) AS engagement_seconds,
        sumIf(s.avg_scroll_depth * s.article_views, s.article_views > 0) AS scroll_x_views,
        sum(s.subscriptions) AS subscriptions,
        sum(s.ad_impressions) AS ad_impressions,
        sum(s.ad_clicks) AS ad_clicks,
        sum(s.ad_revenue) AS ad_revenue,
        countIf(toDayOfWeek(s.session_start) >= 6) AS weekend_sessions,
        countIf(toHour(s.session_start) >= 18) AS evening_sessions,
        countIf(toHour(s.session_start) < 10) AS morning_sessions
    FROM customer_sessions AS s
    WHERE s.session_start >= {{lo:Date}} AND s.session_start < {{d:Date}}
    GROUP BY s.user_id
) AS a
INNER JOIN (
    SELECT user_id, groupArray((c_brand, c_device, c_os, c_browser, c_country, c_city, n)) AS contexts
    FROM (
        SELECT user_id, cityHash64(brand_id, device_type_id, os_id, browser_id, country_code, city_id) AS context,
               any(brand_id) AS c_brand, any(device_type_id) AS c_device, any(os_id) AS c_os,
               any(browser_id) AS c_browser, any(country_code) AS c_country, any(city_id) AS c_city, count() AS n
        FROM customer_sessions
        WHERE session_start >= {{lo:Date}} AND session_start < {{d:Date}}
        GROUP BY user_id, context
    )
    GROUP BY user_id
) AS m ON m.user_id = a.user_id
LEFT JOIN (
    SELECT user_id, groupArray(category_id) AS ids, groupArray(n) AS sessions
    FROM (
        SELECT user_id, category_id, toUInt32(count()) AS n
        FROM customer_sessions ARRAY JOIN category_ids AS category_id
        WHERE session_start >= {{lo:Date}} AND session_start < {{d:Date}}
        GROUP BY user_id, category_id
    )
    GROUP BY user_id
) AS k ON k.user_id = a.user_id
"""

_ADDITIVE = ["total_sessions", "total_events", "total_duration_sec", "active_days", "page_views", "article_views",
             "article_clicks", "video_plays", "newsletter_signups", "engagement_seconds", "scroll_x_views", "subscriptions",
             "ad_impressions", "ad_clicks", "ad_revenue", "weekend_sessions", "evening_sessions", "morning_sessions"]

# The state of d from the state of an earlier date s and the sessions in [s, d): users without a session
# since s keep their row as it is; the others' totals add and their counts per day (last 60 days) and per
# value merge. A user new since s gets the defaults (zeros, empty maps) on the old side.
_SINCE = "(SELECT user_id FROM customer_sessions WHERE session_start >= {s:Date} AND session_start < {d:Date})"
STATE_MERGE_SELECT = f"""
SELECT * REPLACE ({{d:Date}} AS state_date)  -- the table's own columns, qualified: the REPLACE alias would shadow them
FROM customer_user_state AS p
WHERE p.state_date = {{s:Date}} AND p.user_id NOT IN {_SINCE}
UNION ALL
SELECT
    {{d:Date}} AS state_date, n.user_id AS user_id,
    if(o.total_sessions = 0, n.first_session, o.first_session) AS first_session,
    if(o.total_sessions = 0, n.first_brand_id, o.first_brand_id) AS first_brand_id,
    n.last_session AS last_session,
    {", ".join(f"o.{c} + n.{c} AS {c}" for c in _ADDITIVE[:4])},
    mapAdd(mapFilter((k, v) -> k >= {{d:Date}} - 60, o.daily_sessions), n.daily_sessions) AS daily_sessions,
    {", ".join(f"o.{c} + n.{c} AS {c}" for c in _ADDITIVE[4:])},
    {", ".join(f"mapAdd(o.{c}, n.{c}) AS {c}" for c in [*_CONTEXT_FIELDS, "categories"])}
FROM ({STATE_WINDOW_SELECT}) AS n  -- with lo = s: the sessions since the earlier state
LEFT JOIN (SELECT * FROM customer_user_state WHERE state_date = {{s:Date}} AND user_id IN {_SINCE}) AS o ON o.user_id = n.user_id
"""


def _mode(column: str) -> str:
    """(sessions, value) of the most frequent value in a map of counts; ties go to the larger value."""
    return (f"if(length({column}) = 1, (mapValues({column})[1], mapKeys({column})[1]), "
            f"arrayReverseSort(arrayZip(mapValues({column}), mapKeys({column})))[1])")


def _sessions_within(first: int, last: int) -> str:
    """Sessions on the days ``first`` to ``last`` days before d (1 = the day before)."""
    return (f"arraySum(mapValues(mapFilter((k, v) -> k >= {{d:Date}} - {last} AND k <= {{d:Date}} - {first}, "
            f"a.daily_sessions)))")


# customer_user_features of d from the users' state at d: one row per user with a session in the 30 days before d
USER_FEATURES_SELECT = f"""
SELECT
    a.user_id,
    {{d:Date}} AS feature_date,
    a.first_brand_id AS brand_id,
    a.total_sessions, a.total_events, a.total_duration_sec / a.total_sessions AS avg_session_duration_sec,
    a.total_events / a.total_sessions AS avg_events_per_session,
    a.total_sessions * 7.0 / greatest(days_since_first_session, 1) AS session_frequency,
    a.active_days,
    dateDiff('day', toDate(a.first_session), {{d:Date}}) AS days_since_first_session,
    dateDiff('day', toDate(a.last_session), {{d:Date}}) AS days_since_last_session,
    {_sessions_within(1, 7)} AS sessions_last_7d,
    {_sessions_within(1, 30)} AS sessions_last_30d,
    {_sessions_within(31, 60)} AS sessions_prev_30d,
    length(mapFilter((k, v) -> k >= {{d:Date}} - 30, a.daily_sessions)) AS active_days_last_30d,
    (sessions_last_7d / 7.0 + 0.01) / (sessions_last_30d / 30.0 + 0.01) AS activity_trend,
    a.page_views AS total_page_views, a.article_views AS total_article_views, a.article_clicks AS total_article_clicks,
    a.video_plays AS total_video_plays, a.newsletter_signups AS total_newsletter_signups,
    a.engagement_seconds AS total_engagement_seconds,
    ifNotFinite(a.scroll_x_views / a.article_views, 0) AS avg_scroll_depth,
    least(100.0, 20 * log1p(sessions_last_30d) + 25 * avg_scroll_depth + 10 * log1p(a.video_plays)
                 + 15 * click_through_rate + 5 * log1p(a.engagement_seconds / 60)) AS engagement_score,
    toUInt8(a.subscriptions > 0) AS is_subscriber,
    toUInt8(a.newsletter_signups > 0) AS has_newsletter,
    a.newsletter_signups / a.total_sessions AS newsletter_signup_rate,
    a.ad_impressions AS total_ad_impressions, a.ad_clicks AS total_ad_clicks, a.ad_revenue AS total_ad_revenue,
    {_mode("a.brands")}.2 AS preferred_brand_id,
    length(a.brands) AS brand_count,
    {_mode("a.brands")}.1 / a.total_sessions AS brand_loyalty_score,
    if(empty(a.categories), NULL, {_mode("a.categories")}.2) AS preferred_category_id,
    length(a.categories) AS category_diversity,
    {_mode("a.countries")}.2 AS primary_country_code,
    {_mode("a.cities")}.2 AS primary_city_id,
    {_mode("a.devices")}.2 AS preferred_device_type_id,
    {_mode("a.oses")}.2 AS preferred_os_id,
    {_mode("a.browsers")}.2 AS preferred_browser_id,
    length(a.devices) AS device_count,
    a.article_clicks / greatest(a.article_views, 1) AS click_through_rate,
    a.total_events / greatest(a.total_duration_sec / 60.0, 1) AS engagement_per_minute,
    exp(-days_since_last_session / 7.0) AS recency_score,
    log1p(sessions_last_30d) * active_days_last_30d / 30.0 AS activity_score,
    toJSONString(CAST((
        a.weekend_sessions / a.total_sessions, a.evening_sessions / a.total_sessions, a.morning_sessions / a.total_sessions,
        a.article_views / a.total_sessions, a.ad_clicks / greatest(a.ad_impressions, 1)
    ), 'Tuple(weekend_session_share Float64, evening_session_share Float64, morning_session_share Float64, avg_articles_per_session Float64, ad_click_rate Float64)'
    )) AS ml_features,
    now() AS computed_at
FROM customer_user_state AS a
WHERE a.state_date = {{d:Date}} AND a.last_session >= {{d:Date}} - 30
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
    sum(total_events) AS total_events, sum(page_views) AS total_page_views, sum(article_views) AS total_article_views,
    sum(video_plays) AS total_video_plays, sum(newsletter_signups) AS total_newsletter_signups,
    sum(subscriptions) AS total_subscriptions, sum(ad_impressions) AS total_ad_impressions,
    sum(ad_clicks) AS total_ad_clicks, sum(ad_revenue) AS total_ad_revenue,
    now() AS computed_at
FROM customer_sessions
WHERE session_start >= {day:Date} AND session_start < {day:Date} + 1
GROUP BY brand_id
"""


def _reusable_state(client: Client, d: date) -> date | None:
    """The newest stored state at most STATE_REUSE_DAYS before (or at) ``d`` that still matches the sessions.

    A state matches when it counts exactly the sessions now stored before its date: sessions loaded
    or deleted since it was built make it stale, and it is then not used.
    """
    candidates = client.query(
        "SELECT state_date, sum(total_sessions) FROM customer_user_state "
        "WHERE state_date <= {d:Date} AND state_date >= {d:Date} - {days:UInt16} GROUP BY state_date ORDER BY state_date DESC",
        parameters={"d": d, "days": STATE_REUSE_DAYS},
    ).result_rows
    for state_date, sessions in candidates:
        stored = int(client.command(SESSIONS_BEFORE, parameters={"s": state_date}))
        if stored == int(sessions):
            return state_date
    return None


def build_user_state(client: Client, d: date) -> int:
    """customer_user_state for ``d``: every user's totals over their sessions before ``d``.

    Built from the newest matching earlier state plus the sessions since (a daily build reads one day
    of sessions), or from all history when there is none; a state of ``d`` that still matches is kept.
    Returns the users in the state.
    """
    start = _reusable_state(client, d)
    if start == d:
        return int(client.command(STATE_ROWS, parameters={"d": d}))
    if start is None:
        return replace_partition(client, "customer_user_state", d, STATE_WINDOW_SELECT, {"d": d, "lo": date(1970, 1, 1)})
    return replace_partition(client, "customer_user_state", d, STATE_MERGE_SELECT, {"d": d, "s": start, "lo": start})


def build_user_features(client: Client, d: date) -> int:
    """customer_user_features for ``d``: one row per user active in the 30 days before ``d``, from their state at ``d``."""
    build_user_state(client, d)
    rows = replace_partition(client, "customer_user_features", d, USER_FEATURES_SELECT, {"d": d})
    drop_old_states(client)
    return rows


def forget_states(client: Client) -> None:
    """Drop every stored state (they may rest on sessions changed since), so the next build reads all history."""
    client.command(FORGET_STATES)


def drop_old_states(client: Client) -> None:
    """Keep the newest STATE_KEEP_DATES states (rebuilding an older date then reads all history)."""
    for (old,) in client.query(OLD_STATES, parameters={"keep": STATE_KEEP_DATES}).result_rows:
        client.command(DROP_STATE, parameters={"p": old})


SESSIONS_BEFORE = "SELECT count() FROM customer_sessions WHERE session_start < {s:Date}"
STATE_ROWS = "SELECT count() FROM customer_user_state WHERE state_date = {d:Date}"
FORGET_STATES = "TRUNCATE TABLE customer_user_state"
OLD_STATES = """
SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() AND table = 'customer_user_state' AND active
ORDER BY partition_id DESC LIMIT 1000 OFFSET {keep:UInt32}
"""
DROP_STATE = "ALTER TABLE customer_user_state DROP PARTITION ID {p:String}"

VECTORS_SELECT = f"""
SELECT uf.feature_date, uf.user_id, uf.brand_id, {{signature:String}} AS feature_set, {USER_FEATURES.vector_sql("uf")}
FROM customer_user_features AS uf
WHERE uf.feature_date = {{d:Date}}
"""


def build_user_feature_vectors(client: Client, d: date) -> int:
    """customer_user_feature_vectors for ``d``: the model inputs of customer_user_features, packed for fast point reads."""
    rows = replace_partition(client, "customer_user_feature_vectors", d, VECTORS_SELECT, {"d": d, "signature": USER_FEATURES.signature})
    reload_if_loaded(client, "dict_user_feature_vectors")
    return rows


def build_labels(client: Client, d: date) -> int:
    """customer_user_labels for ``d`` (needs the features of ``d``), from sessions in [d, d+30) only."""
    return replace_partition(client, "customer_user_labels", d, LABELS_SELECT, {"d": d})


def build_session_summary(client: Client, d: date) -> int:
    """customer_session_summary_daily for the last complete day before ``d`` (d - 1)."""
    day = d - timedelta(days=1)
    return replace_partition(client, "customer_session_summary_daily", day, SESSION_SUMMARY_SELECT, {"day": day})
