"""Customer models: inputs shared by every model trained on customer_user_features."""

from ownlens.ml.models.spec import FeatureSet

USER_FEATURES = FeatureSet(
    name="user_features",
    table="customer_user_features",
    numeric=(
        "total_sessions", "total_events", "avg_session_duration_sec", "avg_events_per_session", "session_frequency",
        "active_days", "days_since_first_session", "days_since_last_session", "sessions_last_7d", "sessions_last_30d",
        "sessions_prev_30d", "active_days_last_30d", "activity_trend", "total_page_views", "total_article_views",
        "total_article_clicks", "total_video_plays", "total_newsletter_signups", "total_engagement_seconds",
        "avg_scroll_depth", "engagement_score", "is_subscriber", "has_newsletter", "newsletter_signup_rate",
        "total_ad_impressions", "total_ad_clicks", "total_ad_revenue", "brand_count", "brand_loyalty_score",
        "category_diversity", "device_count", "click_through_rate", "engagement_per_minute", "recency_score",
        "activity_score",
    ),
    categorical=("brand_id", "preferred_device_type_id", "preferred_os_id", "preferred_browser_id",
                 "primary_country_code", "preferred_category_id"),
    json_column="ml_features",
    json_keys=("weekend_session_share", "evening_session_share", "morning_session_share", "avg_articles_per_session",
               "ad_click_rate"),
    # tenure and lifetime totals rise for every returning user as time passes, drift or not
    trending=("days_since_first_session", "active_days", "total_sessions", "total_events", "total_page_views",
              "total_article_views", "total_article_clicks", "total_video_plays", "total_newsletter_signups",
              "total_engagement_seconds", "total_ad_impressions", "total_ad_clicks", "total_ad_revenue"),
)
