"""Editorial performance computed inside ClickHouse: per article, author and category, from events before D."""

from __future__ import annotations

from datetime import date

from clickhouse_connect.driver.client import Client

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
