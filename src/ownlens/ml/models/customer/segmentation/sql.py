"""The SQL of segmentation: its inputs from customer_user_features, the assignment and profile writes, the reads
that serve and monitor them. Every value is a parameter; tables made on the fly are bound as identifiers."""

from ownlens.ml.models.spec import BRAND_FILTER

# name -> SQL over customer_user_features (uf); heavy-tailed counts on a log scale
INPUTS = {
    "sessions_last_30d": "log1p(uf.sessions_last_30d)",
    "active_days_last_30d": "uf.active_days_last_30d",
    "days_since_last_session": "log1p(uf.days_since_last_session)",
    "avg_session_duration_sec": "log1p(uf.avg_session_duration_sec)",
    "articles_per_session": "JSONExtractFloat(uf.ml_features, 'avg_articles_per_session')",
    "engagement_score": "uf.engagement_score",
    "avg_scroll_depth": "uf.avg_scroll_depth",
    "click_through_rate": "uf.click_through_rate",
    "video_share": "uf.total_video_plays / greatest(uf.total_article_views, 1)",
    "has_newsletter": "uf.has_newsletter",
    "is_subscriber": "uf.is_subscriber",
    "mobile_first": "dictGetOrDefault('dict_device_types', 'device_type_name', uf.preferred_device_type_id, '') = 'mobile'",
    "category_diversity": "uf.category_diversity",
    "weekend_session_share": "JSONExtractFloat(uf.ml_features, 'weekend_session_share')",
    "evening_session_share": "JSONExtractFloat(uf.ml_features, 'evening_session_share')",
    "ad_click_rate": "JSONExtractFloat(uf.ml_features, 'ad_click_rate')",
}
_COLUMNS = ",\n    ".join(f"toFloat64({sql}) AS {name}" for name, sql in INPUTS.items())

# the inputs of the users of {d:Date} (of {brand:Nullable(UUID)}, NULL: every brand)
DATE_INPUTS = f"""
SELECT toString(uf.user_id) AS user_id, toString(uf.brand_id) AS brand_id,
    {_COLUMNS}
FROM customer_user_features AS uf
WHERE uf.feature_date = {{d:Date}} AND {BRAND_FILTER}
"""
DATE_SAMPLE = f"{DATE_INPUTS} ORDER BY cityHash64(uf.user_id) LIMIT {{limit:UInt64}}"  # the same users every time
DATE_PART = f"SELECT * FROM ({DATE_INPUTS}) WHERE cityHash64(user_id) % {{parts:UInt64}} = {{part:UInt64}}"
DATE_COUNT = f"SELECT count() FROM ({DATE_INPUTS})"

USERS_INPUTS = f"""
SELECT toString(uf.user_id) AS user_id, toString(uf.brand_id) AS brand_id,
    {_COLUMNS}
FROM customer_user_features AS uf
WHERE uf.feature_date = {{d:Date}} AND uf.user_id IN {{users:Array(UUID)}}
"""

FEATURE_DATES = "SELECT DISTINCT feature_date FROM customer_user_features ORDER BY feature_date"

# value: the confidence, label: the segment's name (what ml_model_predictions stores)
RAW = "CREATE TABLE {raw:Identifier} (user_id String, brand_id String, segment Int32, value Float64, label String) ENGINE = Memory"

ASSIGNMENTS = """
SELECT toUUID(user_id), toUUID({ids:Array(String)}[segment + 1]), {d:Date}, toUUID(brand_id), value,
       toUUIDOrNull({model_id:String}), {version:String}, now()
FROM {raw:Identifier}
"""
OTHER_BRANDS = "assignment_date = {d:Date} AND brand_id != {brand:UUID}"

PROFILE = """
INSERT INTO customer_user_segments
SELECT s.segment_id, {names:Array(String)}[indexOf({ids:Array(String)}, toString(s.segment_id))],
       {descriptions:Array(String)}[indexOf({ids:Array(String)}, toString(s.segment_id))], NULL,
       toUUIDOrNull({model_id:String}), {version:String},
       toJSONString(map('assignment_date', toString({d:Date}), 'share', toString(round(count() / any(t.n), 4)),
                        'avg_sessions_last_30d', toString(round(avg(uf.sessions_last_30d), 2)),
                        'avg_session_duration_sec', toString(round(avg(uf.avg_session_duration_sec), 1)),
                        'avg_engagement_score', toString(round(avg(uf.engagement_score), 2)),
                        'avg_days_since_last_session', toString(round(avg(uf.days_since_last_session), 1)),
                        'video_share', toString(round(sum(uf.total_video_plays) / greatest(sum(uf.total_article_views), 1), 3)),
                        'newsletter_share', toString(round(avg(uf.has_newsletter), 3)),
                        'subscriber_share', toString(round(avg(uf.is_subscriber), 3)),
                        'mobile_share', toString(round(avg(dictGetOrDefault('dict_device_types', 'device_type_name', uf.preferred_device_type_id, '') = 'mobile'), 3)))),
       count(), now()
FROM customer_user_segment_assignments AS s
INNER JOIN customer_user_features AS uf ON uf.user_id = s.user_id AND uf.feature_date = {d:Date}
CROSS JOIN (SELECT count() AS n FROM customer_user_segment_assignments WHERE assignment_date = {d:Date}
            AND model_version = {version:String}) AS t
WHERE s.assignment_date = {d:Date} AND s.model_version = {version:String}
GROUP BY s.segment_id
"""

PROFILES = """
SELECT segment_id, segment_name, model_version, user_count, segment_profile, created_at
FROM customer_user_segments FINAL WHERE {version:String} = '' OR model_version = {version:String}
ORDER BY created_at DESC, user_count DESC
"""

STORED_VERSION = "SELECT any(model_version) FROM customer_user_segment_assignments WHERE assignment_date = {d:Date}"
SHARES = """
SELECT s.segment_name, count() / (SELECT count() FROM customer_user_segment_assignments
                                  WHERE assignment_date = {d:Date} AND model_version = {v:String})
FROM customer_user_segment_assignments AS a
INNER JOIN (SELECT segment_id, any(segment_name) AS segment_name FROM customer_user_segments FINAL GROUP BY segment_id) AS s
  ON s.segment_id = a.segment_id
WHERE a.assignment_date = {d:Date} AND a.model_version = {v:String}
GROUP BY s.segment_name
"""
STORED_DATES = "SELECT DISTINCT assignment_date FROM customer_user_segment_assignments ORDER BY assignment_date"
