"""Editorial performance computed inside ClickHouse: per article, author and category, from events before D."""

from __future__ import annotations

from datetime import date, datetime, timezone

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import NotFound
from ownlens.ml.warehouse import replace_partition

# engagement score 0-100: half scroll depth, half reading time against a two-minute read
_ENGAGEMENT = "round(50 * avgIf(scroll_depth, event_type = 'article_view') + 50 * least(avgIf(engagement_seconds, event_type = 'article_view') / 120, 1), 2)"

ARTICLE_PERFORMANCE_SELECT = f"""
SELECT
    a.article_id,
    {{d:Date}} AS performance_date,
    a.brand_id, a.author_id, a.category_id,
    dateDiff('day', toDate(a.publish_timestamp), {{d:Date}}) AS article_age_days,
    e.total_views, e.views_1d, e.views_7d, e.unique_viewers_7d, e.clicks_7d, e.impressions_7d,
    e.clicks_7d / greatest(e.impressions_7d, 1) AS click_through_rate_7d,
    e.avg_engagement_seconds_7d, e.avg_scroll_depth_7d, e.video_plays_7d, e.engagement_score,
    now() AS computed_at
FROM editorial_articles AS a
INNER JOIN (
    SELECT
        article_id,
        countIf(event_type = 'article_view') AS total_views,
        countIf(event_type = 'article_view' AND event_timestamp >= {{d:Date}} - 1) AS views_1d,
        countIf(event_type = 'article_view' AND event_timestamp >= {{d:Date}} - 7) AS views_7d,
        uniqExactIf(user_id, event_type = 'article_view' AND event_timestamp >= {{d:Date}} - 7) AS unique_viewers_7d,
        countIf(event_type = 'click' AND event_timestamp >= {{d:Date}} - 7) AS clicks_7d,
        countIf(event_type = 'article_impression' AND event_timestamp >= {{d:Date}} - 7) AS impressions_7d,
        ifNotFinite(avgIf(engagement_seconds, event_type = 'article_view' AND event_timestamp >= {{d:Date}} - 7), 0) AS avg_engagement_seconds_7d,
        ifNotFinite(avgIf(scroll_depth, event_type = 'article_view' AND event_timestamp >= {{d:Date}} - 7), 0) AS avg_scroll_depth_7d,
        countIf(event_type = 'video_play' AND event_timestamp >= {{d:Date}} - 7) AS video_plays_7d,
        ifNotFinite({_ENGAGEMENT}, 0) AS engagement_score
    FROM editorial_content_events
    WHERE event_timestamp < {{d:Date}}
    GROUP BY article_id
) AS e ON e.article_id = a.article_id
WHERE a.publish_timestamp < {{d:Date}}
"""

_GROUP_PERFORMANCE = """
SELECT
    e.{key} AS {key},
    {{d:Date}} AS performance_date,
    e.brand_id AS brand_id,
    ifNull(p.published, 0) AS articles_published_30d,
    e.views AS total_views_30d,
    e.viewers AS unique_viewers_30d,
    e.avg_engagement AS avg_engagement_seconds_30d,
    e.clicks / greatest(e.impressions, 1) AS click_through_rate_30d,
    {extra}
    e.engagement_score AS engagement_score,
    now() AS computed_at
FROM (
    SELECT
        {key}, brand_id,
        countIf(event_type = 'article_view') AS views,
        uniqExactIf(user_id, event_type = 'article_view') AS viewers,
        ifNotFinite(avgIf(engagement_seconds, event_type = 'article_view'), 0) AS avg_engagement,
        countIf(event_type = 'click') AS clicks,
        countIf(event_type = 'article_impression') AS impressions,
        countIf(event_type = 'article_view' AND event_timestamp >= {{d:Date}} - 7) AS views_7d,
        countIf(event_type = 'article_view' AND event_timestamp < {{d:Date}} - 7 AND event_timestamp >= {{d:Date}} - 14) AS views_prev_7d,
        ifNotFinite({engagement}, 0) AS engagement_score
    FROM editorial_content_events
    WHERE event_timestamp >= {{d:Date}} - 30 AND event_timestamp < {{d:Date}}
    GROUP BY {key}, brand_id
) AS e
LEFT JOIN (
    SELECT {key}, brand_id, count() AS published
    FROM editorial_articles
    WHERE publish_timestamp >= {{d:Date}} - 30 AND publish_timestamp < {{d:Date}}
    GROUP BY {key}, brand_id
) AS p ON p.{key} = e.{key} AND p.brand_id = e.brand_id
SETTINGS join_use_nulls = 1
"""

AUTHOR_PERFORMANCE_SELECT = _GROUP_PERFORMANCE.format(key="author_id", extra="", engagement=_ENGAGEMENT)
CATEGORY_PERFORMANCE_SELECT = _GROUP_PERFORMANCE.format(
    key="category_id", extra="(e.views_7d + 1) / (e.views_prev_7d + 1) - 1 AS views_growth_7d,", engagement=_ENGAGEMENT
)


def build_article_performance(client: Client, d: date) -> int:
    return replace_partition(client, "editorial_article_performance", d, ARTICLE_PERFORMANCE_SELECT, {"d": d})


def build_author_performance(client: Client, d: date) -> int:
    return replace_partition(client, "editorial_author_performance", d, AUTHOR_PERFORMANCE_SELECT, {"d": d})


def build_category_performance(client: Client, d: date) -> int:
    return replace_partition(client, "editorial_category_performance", d, CATEGORY_PERFORMANCE_SELECT, {"d": d})


# -- articles as an editor knows them: at publication, then after 1, 3 and 6 hours ------------------------------
HORIZONS_H = (1, 3, 6)
OUTCOME_DAYS = 7
AUTHOR_DAYS = 30  # the author's record: articles published 7 + 30 .. 7 days before, whose 7-day outcomes are known
COMPLETED = 0.75  # a read counts as completed when the reader scrolled through at least 75 % of the article
TRACTION = ("views", "readers", "clicks", "impressions", "scroll", "completion", "engagement", "video_plays", "shares",
            "from_social", "from_search", "from_internal")
AVERAGES = ("scroll", "completion", "engagement", "from_social", "from_search", "from_internal")  # NULL without views
_VIEW = "e.event_type = 'article_view'"
_TRACTION_SQL = {  # each over the article's events before its publication + the horizon
    "views": "countIf({v} AND {w})", "readers": "uniqExactIf(e.user_id, {v} AND {w})",
    "clicks": "countIf(e.event_type = 'click' AND {w})", "impressions": "countIf(e.event_type = 'article_impression' AND {w})",
    "scroll": "avgIf(e.scroll_depth, {v} AND {w})", "completion": "avgIf(e.scroll_depth >= {COMPLETED}, {v} AND {w})",
    "engagement": "avgIf(e.engagement_seconds, {v} AND {w})", "video_plays": "countIf(e.event_type = 'video_play' AND {w})",
    "shares": "countIf(e.event_type = 'share' AND {w})", "from_social": "avgIf(e.referrer = 'social', {v} AND {w})",
    "from_search": "avgIf(e.referrer = 'search', {v} AND {w})", "from_internal": "avgIf(e.referrer = 'internal', {v} AND {w})",
}


def _traction_columns() -> str:
    out = []
    for h in HORIZONS_H:
        window = f"e.event_timestamp < a.published + INTERVAL {h} HOUR"
        out += [f"{_TRACTION_SQL[k].format(v=_VIEW, w=window, COMPLETED=COMPLETED)} AS {k}_{h}h" for k in TRACTION]
    week = f"e.event_timestamp < a.published + INTERVAL {OUTCOME_DAYS} DAY"
    out += [f"countIf({_VIEW} AND {week}) AS views_7d", f"uniqExactIf(e.user_id, {_VIEW} AND {week}) AS readers_7d",
            f"avgIf(e.scroll_depth >= {COMPLETED}, {_VIEW} AND {week}) AS completion_rate_7d"]
    return ",\n        ".join(out)


def _known_columns() -> str:
    """Each horizon's traction once its window has closed by ``as_of`` (NULL before), the outcome after 7 days;
    counts of articles without events are 0, their averages NULL."""

    def value(k: str, suffix: str) -> str:
        return f"t.{k}_{suffix}" if k in AVERAGES else f"ifNull(t.{k}_{suffix}, 0)"

    out = []
    for h in HORIZONS_H:
        closed = f"a.published + INTERVAL {h} HOUR <= {{as_of:DateTime}}"
        out += [f"if({closed}, {value(k, f'{h}h')}, NULL) AS {k}_{h}h" for k in TRACTION]
    closed = f"a.published + INTERVAL {OUTCOME_DAYS} DAY <= {{as_of:DateTime}}"
    out += [f"if({closed}, {value(k, '7d')}, NULL) AS {k}_7d" for k in ("views", "readers")]
    out.append(f"if({closed}, t.completion_rate_7d, NULL) AS completion_rate_7d")
    return ",\n    ".join(out)


# Articles published in [from, to) and before as_of, from events before as_of only: ``{from:DateTime}``,
# ``{to:DateTime}``, ``{as_of:DateTime}``, ``{articles:Array(UUID)}`` (empty: all), ``{brand:Nullable(UUID)}``.
ARTICLE_FEATURES_SELECT = f"""
WITH
arts AS (
    SELECT article_id, brand_id, author_id, category_id, topic, word_count, has_video, is_premium,
           toDateTime(publish_timestamp, 'UTC') AS published
    FROM editorial_articles
    WHERE publish_timestamp >= {{from:DateTime}} AND publish_timestamp < least({{to:DateTime}}, {{as_of:DateTime}})
      AND (empty({{articles:Array(UUID)}}) OR has({{articles:Array(UUID)}}, article_id))
      AND ({{brand:Nullable(UUID)}} IS NULL OR brand_id = {{brand:Nullable(UUID)}})
),
traction AS (
    SELECT e.article_id AS article_id,
        {_traction_columns()}
    FROM editorial_content_events AS e
    INNER JOIN arts AS a ON a.article_id = e.article_id
    WHERE e.event_timestamp >= {{from:DateTime}} AND e.event_timestamp < {{as_of:DateTime}}
      AND e.event_timestamp < {{to:DateTime}} + INTERVAL {OUTCOME_DAYS} DAY AND e.event_timestamp >= a.published
    GROUP BY e.article_id
),
prior_articles AS (  -- the authors' earlier articles whose 7-day outcome was known when each article appeared
    SELECT article_id, author_id, toDateTime(publish_timestamp, 'UTC') AS published
    FROM editorial_articles
    WHERE author_id IN (SELECT author_id FROM arts)
      AND publish_timestamp >= {{from:DateTime}} - INTERVAL {AUTHOR_DAYS + OUTCOME_DAYS} DAY
      AND publish_timestamp < least({{to:DateTime}}, {{as_of:DateTime}}) - INTERVAL {OUTCOME_DAYS} DAY
),
prior_outcomes AS (
    SELECT e.article_id AS article_id, countIf(e.event_type = 'article_view') AS views,
           avgIf(e.scroll_depth >= {COMPLETED}, e.event_type = 'article_view') AS completion
    FROM editorial_content_events AS e
    INNER JOIN prior_articles AS p ON p.article_id = e.article_id
    WHERE e.event_timestamp >= {{from:DateTime}} - INTERVAL {AUTHOR_DAYS + OUTCOME_DAYS} DAY
      AND e.event_timestamp < least({{to:DateTime}}, {{as_of:DateTime}})
      AND e.event_timestamp < p.published + INTERVAL {OUTCOME_DAYS} DAY
    GROUP BY e.article_id
),
prior AS (
    SELECT p.article_id AS article_id, p.author_id AS author_id, p.published AS published, ifNull(o.views, 0) AS views,
           o.completion AS completion
    FROM prior_articles AS p
    LEFT JOIN prior_outcomes AS o ON o.article_id = p.article_id
),
author AS (
    SELECT a.article_id AS article_id, count() AS articles, avg(log1p(p.views)) AS log_views,
           avgIf(p.completion, p.completion IS NOT NULL AND isFinite(p.completion)) AS completion
    FROM arts AS a
    INNER JOIN prior AS p ON p.author_id = a.author_id
    WHERE p.published >= a.published - INTERVAL {AUTHOR_DAYS + OUTCOME_DAYS} DAY
      AND p.published < a.published - INTERVAL {OUTCOME_DAYS} DAY
    GROUP BY a.article_id
),
hourly AS (  -- views per brand, category and topic in the complete hours of the day before each publication
    SELECT e.brand_id AS brand_id, e.category_id AS category_id, ea.topic AS topic,
           toStartOfHour(e.event_timestamp) AS hour, count() AS views
    FROM editorial_content_events AS e
    INNER JOIN editorial_articles AS ea ON ea.article_id = e.article_id
    WHERE e.event_type = 'article_view' AND e.event_timestamp >= {{from:DateTime}} - INTERVAL 1 DAY
      AND e.event_timestamp < least({{to:DateTime}}, {{as_of:DateTime}})
      AND e.brand_id IN (SELECT brand_id FROM arts)
    GROUP BY brand_id, category_id, topic, hour
),
before AS (  -- each article with each of the 24 complete hours before it
    SELECT article_id, brand_id, category_id, topic, published,
           arrayJoin(range(1, 25)) AS back, toStartOfHour(published) - INTERVAL back HOUR AS hour
    FROM arts
),
context AS (
    SELECT b.article_id AS article_id,
           sumIf(h.views, h.category_id = b.category_id) AS category_views_24h,
           sumIf(h.views, h.category_id = b.category_id AND h.topic = b.topic) AS topic_views_24h,
           sumIf(h.views, h.category_id = b.category_id AND h.topic = b.topic AND b.back <= 6) AS topic_views_6h,
           sum(h.views) AS brand_views_24h
    FROM before AS b
    INNER JOIN hourly AS h ON h.brand_id = b.brand_id AND h.hour = b.hour
    GROUP BY b.article_id
)
SELECT
    a.article_id AS article_id, toDate(a.published) AS publish_date, a.published AS publish_timestamp,
    a.brand_id AS brand_id, a.author_id AS author_id, a.category_id AS category_id, a.topic AS topic,
    a.word_count AS word_count, a.has_video AS has_video, a.is_premium AS is_premium,
    toHour(a.published) AS publish_hour, toDayOfWeek(a.published) AS publish_weekday,
    ifNull(au.articles, 0) AS author_articles_30d, au.log_views AS author_avg_log_views_7d,
    if(isFinite(au.completion), au.completion, NULL) AS author_avg_completion_7d,
    ifNull(c.category_views_24h, 0) AS category_views_24h, ifNull(c.topic_views_24h, 0) AS topic_views_24h,
    (ifNull(c.topic_views_6h, 0) * 4 + 1) / (ifNull(c.topic_views_24h, 0) + 1) AS topic_views_growth_24h,
    ifNull(c.brand_views_24h, 0) AS brand_views_24h,
    {_known_columns()},
    {{as_of:DateTime}} AS as_of,
    now() AS computed_at
FROM arts AS a
LEFT JOIN traction AS t ON t.article_id = a.article_id
LEFT JOIN author AS au ON au.article_id = a.article_id
LEFT JOIN context AS c ON c.article_id = a.article_id
SETTINGS join_use_nulls = 1
"""

BUILD_DAYS = OUTCOME_DAYS + 1  # a build rewrites the articles of the days whose horizons or outcome may have changed
EVENTS_SPAN = "SELECT min(event_timestamp), max(event_timestamp), count() FROM editorial_content_events"


def midnight(d: date) -> datetime:
    """The start of ``d`` in UTC: editorial times are instants, dates their UTC days."""
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def events_span(client: Client) -> tuple[datetime, datetime]:
    """The first and last editorial event (UTC); :class:`NotFound` when there is none."""
    lo, hi, n = client.query(EVENTS_SPAN).result_rows[0]
    if not n:
        raise NotFound("the warehouse has no editorial events yet: run `ownlens-ml simulate` or load editorial_content_events")
    return tuple(t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t for t in (lo, hi))


def build_article_features(client: Client, d: date) -> int:
    """editorial_article_features for the articles published in the 8 days before ``d``, from events before ``d``
    (one partition per publication day, each replaced)."""
    from datetime import timedelta

    as_of = midnight(d)
    written = 0
    for back in range(BUILD_DAYS, 0, -1):
        day = d - timedelta(days=back)
        start = midnight(day)
        params = {"from": start, "to": start + timedelta(days=1), "as_of": as_of, "articles": [], "brand": None}
        try:
            written += replace_partition(client, "editorial_article_features", day, ARTICLE_FEATURES_SELECT, params)
        except NotFound:  # no article published that day
            pass
    return written
