"""Click prediction: will a user click an article's teaser? XGBoost on user x article pairs (seed 002/003).

Training rows are the article impressions (from customer_events) in the 7 days from each feature
date D, labelled by a click on the same article in the same session. Features come from before D:
the user's features of D, the article's performance of D, the user's reading of the article's
category in the 30 days before D, and what is known when the teaser is shown (article age, device).
The oracle is the simulator's click probability for that user and article.
"""

from ownlens.ml.features.sets import FeatureSet
from ownlens.ml.models.estimators import OwnLensClassifier
from ownlens.ml.models.seed_api import seed_classes
from ownlens.ml.models.spec import BRAND_FILTER, Bands, RowSource
from ownlens.ml.models.supervised import ModelSpec

WINDOW_DAYS = 7
CANDIDATES_PER_USER = 10  # batch scoring: the most read articles of the user's brand in the week before D

PAIR_FEATURES = FeatureSet(
    name="user_article_pairs",
    table="customer_user_features",
    numeric=(
        "user_total_sessions", "user_sessions_last_30d", "user_days_since_last_session", "user_article_views",
        "user_click_through_rate", "user_avg_scroll_depth", "user_engagement_score", "user_category_diversity",
        "user_is_subscriber", "category_views_30d", "category_share_30d", "article_age_hours", "article_word_count",
        "article_has_video", "article_is_premium", "article_total_views", "article_views_7d",
        "article_click_through_rate_7d", "article_avg_engagement_seconds_7d", "article_avg_scroll_depth_7d",
        "article_engagement_score", "same_brand",
    ),
    categorical=("category_id", "device_type_id", "primary_country_code"),
)


def _pairs_sql(pairs: str, training: bool = False, where: str = BRAND_FILTER) -> str:
    """Features (and the label when ``training``) for the (user_id, article_id, d, at, device_type_id, brand_id) rows of ``pairs``."""
    label = """,
    toUInt8(c.session_id IS NOT NULL) AS label""" if training else ""
    joins = """
LEFT JOIN (
    SELECT DISTINCT session_id, article_id FROM customer_events
    WHERE event_type = 'click' AND event_timestamp >= arrayMin({dates:Array(Date)})
      AND event_timestamp < arrayMax({dates:Array(Date)}) + 7
) AS c ON c.session_id = p.session_id AND c.article_id = p.article_id""" if training else ""
    return f"""
SELECT
    toString(p.user_id) AS user_id, toString(p.article_id) AS article_id, p.d AS feature_date, toString(p.brand_id) AS brand_id,
    uf.total_sessions AS user_total_sessions, uf.sessions_last_30d AS user_sessions_last_30d,
    uf.days_since_last_session AS user_days_since_last_session, uf.total_article_views AS user_article_views,
    uf.click_through_rate AS user_click_through_rate, uf.avg_scroll_depth AS user_avg_scroll_depth,
    uf.engagement_score AS user_engagement_score, uf.category_diversity AS user_category_diversity,
    uf.is_subscriber AS user_is_subscriber,
    ifNull(aff.n, 0) AS category_views_30d, ifNull(aff.share, 0) AS category_share_30d,
    dateDiff('hour', a.publish_timestamp, p.at) AS article_age_hours, a.word_count AS article_word_count,
    a.has_video AS article_has_video, a.is_premium AS article_is_premium,
    ap.total_views AS article_total_views, ap.views_7d AS article_views_7d,
    ap.click_through_rate_7d AS article_click_through_rate_7d,
    ap.avg_engagement_seconds_7d AS article_avg_engagement_seconds_7d, ap.avg_scroll_depth_7d AS article_avg_scroll_depth_7d,
    ap.engagement_score AS article_engagement_score,
    toUInt8(a.brand_id = uf.preferred_brand_id) AS same_brand,
    toString(a.category_id) AS category_id, toString(p.device_type_id) AS device_type_id,
    uf.primary_country_code AS primary_country_code{label}
FROM ({pairs}) AS p
INNER JOIN customer_user_features AS uf ON uf.user_id = p.user_id AND uf.feature_date = p.d
INNER JOIN editorial_articles AS a ON a.article_id = p.article_id
LEFT JOIN editorial_article_performance AS ap ON ap.article_id = p.article_id AND ap.performance_date = p.d
LEFT JOIN (
    SELECT d, user_id, category_id, n, n / sum(n) OVER (PARTITION BY d, user_id) AS share
    FROM (
        SELECT fd.d AS d, e.user_id AS user_id, e.category_id AS category_id, count() AS n
        FROM editorial_content_events AS e
        CROSS JOIN (SELECT arrayJoin({{dates:Array(Date)}}) AS d) AS fd
        WHERE e.event_type = 'article_view' AND e.event_timestamp >= fd.d - 30 AND e.event_timestamp < fd.d
          AND e.event_timestamp >= arrayMin({{dates:Array(Date)}}) - 30 AND e.event_timestamp < arrayMax({{dates:Array(Date)}})
          AND e.user_id IN (SELECT user_id FROM ({pairs}))
        GROUP BY d, user_id, category_id
    )
) AS aff ON aff.d = p.d AND aff.user_id = p.user_id AND aff.category_id = a.category_id{joins}
WHERE {where}
SETTINGS join_use_nulls = 1
"""


IMPRESSIONS = """
SELECT e.user_id AS user_id, assumeNotNull(e.article_id) AS article_id, fd.d AS d, e.event_timestamp AS at,
       e.device_type_id AS device_type_id, e.brand_id AS brand_id, e.session_id AS session_id
FROM customer_events AS e
CROSS JOIN (SELECT arrayJoin({dates:Array(Date)}) AS d) AS fd
WHERE e.event_type = 'article_impression' AND e.event_timestamp >= fd.d AND e.event_timestamp < fd.d + 7
  AND e.event_timestamp >= arrayMin({dates:Array(Date)}) AND e.event_timestamp < arrayMax({dates:Array(Date)}) + 7
  AND e.event_timestamp < (SELECT max(event_timestamp) - INTERVAL 7 DAY FROM customer_events) + INTERVAL 7 DAY
"""

# the articles most read in the week before D, per brand, offered to each user of D with their preferred device
CANDIDATES = f"""
SELECT uf.user_id AS user_id, top.article_id AS article_id, uf.feature_date AS d,
       toDateTime64(uf.feature_date, 3, 'UTC') AS at, uf.preferred_device_type_id AS device_type_id,
       uf.brand_id AS brand_id, toUUID('00000000-0000-0000-0000-000000000000') AS session_id
FROM customer_user_features AS uf
INNER JOIN (
    SELECT brand_id, article_id FROM (
        SELECT brand_id, article_id, row_number() OVER (PARTITION BY brand_id ORDER BY count() DESC, article_id) AS r
        FROM editorial_content_events
        WHERE event_type = 'article_view' AND event_timestamp >= {{d:Date}} - 7 AND event_timestamp < {{d:Date}}
        GROUP BY brand_id, article_id
    ) WHERE r <= {CANDIDATES_PER_USER}
) AS top ON top.brand_id = uf.preferred_brand_id
WHERE uf.feature_date = {{d:Date}}
"""

LOOKUP = """
SELECT tupleElement(pair, 1) AS user_id, tupleElement(pair, 2) AS article_id, uf.feature_date AS d,
       toDateTime64(uf.feature_date, 3, 'UTC') AS at, uf.preferred_device_type_id AS device_type_id,
       uf.brand_id AS brand_id, toUUID('00000000-0000-0000-0000-000000000000') AS session_id
FROM (SELECT arrayJoin({keys:Array(Tuple(UUID, UUID))}) AS pair) AS q
INNER JOIN customer_user_features AS uf ON uf.user_id = tupleElement(q.pair, 1) AND uf.feature_date = {d:Date}
"""

# the simulator's click probability of each impressed pair (read only to evaluate, see models/oracle.py)
ORACLE = f"""
SELECT DISTINCT toString(p.user_id) AS user_id, toString(p.article_id) AS article_id, p.d AS feature_date,
    1 / (1 + exp(-(-1.7 + 5 * (su.topic_preferences[sa.category_index + 1] - 0.1) + 0.8 * sa.quality + 0.5 * su.click_affinity
                   + 2 * su.topic_preferences[sa.category_index + 1] * greatest(sa.quality, 0)))) AS oracle
FROM ({IMPRESSIONS}) AS p
INNER JOIN sim_users AS su ON su.user_id = p.user_id
INNER JOIN sim_articles AS sa ON sa.article_id = p.article_id
"""


CLICK = ModelSpec(
    name="click",
    task="binary",
    description="P(click | the user is shown the article's teaser)",
    features=PAIR_FEATURES,
    label="label",
    estimator=OwnLensClassifier,
    algorithm="xgboost",
    predictions_table=None,
    output="click_probability",
    level=Bands((0.2, 0.5), ("low", "medium", "high")),
    level_column="click_likelihood",
    decision_column="will_click",
    decision="precision>=0.75",  # seed 003: click predictions at 75% precision
    targets={"precision": 0.75},
    label_days=7,  # a click within 7 days of the impression
    source=RowSource(
        training=_pairs_sql(IMPRESSIONS, training=True),
        scoring=_pairs_sql(CANDIDATES),
        lookup=_pairs_sql(LOOKUP, where="1"),
        entity=("user_id", "article_id"),
        entity_type="user_article",
        oracle=ORACLE,
    ),
)

ClickModel, ClickTrainingPipeline, ClickPredictor, ClickEvaluator = seed_classes(CLICK)
