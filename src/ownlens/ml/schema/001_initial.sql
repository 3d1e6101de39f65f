-- OwnLens warehouse schema, version 1: reference, customer, editorial and ML tables named in the seeds.
-- Daily derived tables are partitioned by their date so a rebuild swaps one partition atomically.

-- Reference ---------------------------------------------------------------
CREATE TABLE IF NOT EXISTS companies (
    company_id UUID,
    company_name String,
    country_code LowCardinality(String),
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY company_id;

CREATE TABLE IF NOT EXISTS brands (
    brand_id UUID,
    company_id UUID,
    brand_name String,
    brand_code LowCardinality(String),
    primary_country_code LowCardinality(String),
    is_premium UInt8,
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY brand_id;

CREATE TABLE IF NOT EXISTS countries (
    country_code LowCardinality(String),
    country_name String,
    continent LowCardinality(String),
    timezone String,
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY country_code;

CREATE TABLE IF NOT EXISTS cities (
    city_id UUID,
    city_name String,
    country_code LowCardinality(String),
    population UInt32,
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY city_id;

CREATE TABLE IF NOT EXISTS categories (
    category_id UUID,
    category_name String,
    category_code LowCardinality(String),
    parent_category_id Nullable(UUID),
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY category_id;

CREATE TABLE IF NOT EXISTS device_types (
    device_type_id UUID,
    device_type_name LowCardinality(String),
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY device_type_id;

CREATE TABLE IF NOT EXISTS operating_systems (
    os_id UUID,
    os_name LowCardinality(String),
    device_type_id UUID,
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY os_id;

CREATE TABLE IF NOT EXISTS browsers (
    browser_id UUID,
    browser_name LowCardinality(String),
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY browser_id;

-- Customer ----------------------------------------------------------------
CREATE TABLE IF NOT EXISTS customer_events (
    event_id UUID,
    session_id UUID,
    user_id UUID,
    brand_id UUID,
    event_type LowCardinality(String),
    event_timestamp DateTime64(3, 'UTC'),
    article_id Nullable(UUID),
    category_id Nullable(UUID),
    author_id Nullable(UUID),
    device_type_id UUID,
    os_id UUID,
    browser_id UUID,
    country_code LowCardinality(String),
    city_id UUID,
    engagement_seconds Float32,
    scroll_depth Float32,
    ad_placement LowCardinality(String),
    revenue Float64,
    INDEX idx_user user_id TYPE bloom_filter(0.01) GRANULARITY 4
) ENGINE = MergeTree
PARTITION BY toYYYYMM(event_timestamp)
ORDER BY (brand_id, toDate(event_timestamp), user_id, event_timestamp);

CREATE TABLE IF NOT EXISTS customer_sessions (
    session_id UUID,
    user_id UUID,
    brand_id UUID,
    session_start DateTime64(3, 'UTC'),
    session_end DateTime64(3, 'UTC'),
    session_duration_sec Float64,
    total_events UInt32,
    page_views UInt32,
    article_views UInt32,
    article_clicks UInt32,
    video_plays UInt32,
    newsletter_signups UInt32,
    subscriptions UInt32,
    ad_impressions UInt32,
    ad_clicks UInt32,
    ad_revenue Float64,
    total_engagement_seconds Float64,
    avg_scroll_depth Float32,
    category_ids Array(UUID),
    device_type_id UUID,
    os_id UUID,
    browser_id UUID,
    country_code LowCardinality(String),
    city_id UUID,
    INDEX idx_user user_id TYPE bloom_filter(0.01) GRANULARITY 4
) ENGINE = MergeTree
PARTITION BY toYYYYMM(session_start)
ORDER BY (brand_id, toDate(session_start), user_id);

CREATE TABLE IF NOT EXISTS customer_user_features (
    user_id UUID,
    feature_date Date,
    brand_id UUID,
    -- behavioural
    total_sessions UInt32,
    total_events UInt64,
    avg_session_duration_sec Float64,
    avg_events_per_session Float64,
    session_frequency Float64,
    active_days UInt32,
    -- recency and trend
    days_since_first_session UInt32,
    days_since_last_session UInt32,
    sessions_last_7d UInt32,
    sessions_last_30d UInt32,
    sessions_prev_30d UInt32,
    active_days_last_30d UInt32,
    activity_trend Float64,
    -- engagement
    total_page_views UInt64,
    total_article_views UInt64,
    total_article_clicks UInt64,
    total_video_plays UInt64,
    total_newsletter_signups UInt32,
    total_engagement_seconds Float64,
    avg_scroll_depth Float64,
    engagement_score Float64,
    -- conversion
    is_subscriber UInt8,
    has_newsletter UInt8,
    newsletter_signup_rate Float64,
    -- ads
    total_ad_impressions UInt64,
    total_ad_clicks UInt64,
    total_ad_revenue Float64,
    -- content
    preferred_brand_id UUID,
    brand_count UInt32,
    brand_loyalty_score Float64,
    preferred_category_id Nullable(UUID),
    category_diversity UInt32,
    -- geography and device
    primary_country_code LowCardinality(String),
    primary_city_id UUID,
    preferred_device_type_id UUID,
    preferred_os_id UUID,
    preferred_browser_id UUID,
    device_count UInt32,
    -- derived
    click_through_rate Float64,
    engagement_per_minute Float64,
    recency_score Float64,
    activity_score Float64,
    ml_features String,
    computed_at DateTime64(0, 'UTC') DEFAULT now(),
    INDEX idx_user user_id TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY feature_date
ORDER BY (brand_id, user_id);

CREATE TABLE IF NOT EXISTS customer_user_labels (
    user_id UUID,
    feature_date Date,
    brand_id UUID,
    churned_30d UInt8,
    converted_30d UInt8,
    sessions_next_30d UInt32,
    label_window_complete UInt8,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY feature_date
ORDER BY (brand_id, user_id);

CREATE TABLE IF NOT EXISTS customer_session_summary_daily (
    date Date,
    brand_id UUID,
    total_sessions UInt64,
    total_users UInt64,
    new_users UInt64,
    avg_session_duration_sec Float64,
    total_events UInt64,
    total_page_views UInt64,
    total_article_views UInt64,
    total_video_plays UInt64,
    total_newsletter_signups UInt64,
    total_subscriptions UInt64,
    total_ad_impressions UInt64,
    total_ad_clicks UInt64,
    total_ad_revenue Float64,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY date
ORDER BY brand_id;

CREATE TABLE IF NOT EXISTS customer_user_segments (
    segment_id UUID,
    segment_name String,
    segment_description String,
    brand_id Nullable(UUID),
    model_id Nullable(UUID),
    model_version String,
    segment_profile String,
    user_count UInt64,
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY segment_id;

CREATE TABLE IF NOT EXISTS customer_user_segment_assignments (
    user_id UUID,
    segment_id UUID,
    assignment_date Date,
    brand_id UUID,
    confidence Float64,
    model_id Nullable(UUID),
    model_version String,
    assigned_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY assignment_date
ORDER BY (brand_id, user_id);

CREATE TABLE IF NOT EXISTS customer_churn_predictions (
    user_id UUID,
    prediction_date Date,
    brand_id UUID,
    churn_probability Float64,
    churn_risk_level LowCardinality(String),
    is_churned UInt8,
    model_id Nullable(UUID),
    model_version String,
    predicted_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY (brand_id, user_id);

CREATE TABLE IF NOT EXISTS customer_conversion_predictions (
    user_id UUID,
    prediction_date Date,
    brand_id UUID,
    conversion_probability Float64,
    conversion_tier LowCardinality(String),
    will_convert UInt8,
    model_id Nullable(UUID),
    model_version String,
    predicted_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY (brand_id, user_id);

CREATE TABLE IF NOT EXISTS customer_recommendations (
    user_id UUID,
    recommendation_date Date,
    brand_id UUID,
    article_id UUID,
    rank UInt16,
    score Float64,
    algorithm LowCardinality(String),
    model_id Nullable(UUID),
    model_version String,
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY recommendation_date
ORDER BY (brand_id, user_id, rank);

-- Editorial ---------------------------------------------------------------
CREATE TABLE IF NOT EXISTS editorial_authors (
    author_id UUID,
    brand_id UUID,
    author_name String,
    primary_category_id UUID,
    joined_date Date,
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at) ORDER BY author_id;

CREATE TABLE IF NOT EXISTS editorial_articles (
    article_id UUID,
    brand_id UUID,
    author_id UUID,
    category_id UUID,
    title String,
    topic LowCardinality(String),
    word_count UInt32,
    has_video UInt8,
    is_premium UInt8,
    publish_timestamp DateTime64(0, 'UTC'),
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (brand_id, article_id);

CREATE TABLE IF NOT EXISTS editorial_article_content (
    article_id UUID,
    content_version UInt32,
    title String,
    summary String,
    word_count UInt32,
    updated_at DateTime64(0, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (article_id, content_version);

CREATE TABLE IF NOT EXISTS editorial_content_events (
    event_id UUID,
    session_id UUID,
    user_id UUID,
    brand_id UUID,
    article_id UUID,
    author_id UUID,
    category_id UUID,
    event_type LowCardinality(String),
    event_timestamp DateTime64(3, 'UTC'),
    engagement_seconds Float32,
    scroll_depth Float32,
    INDEX idx_user user_id TYPE bloom_filter(0.01) GRANULARITY 4
) ENGINE = MergeTree
PARTITION BY toYYYYMM(event_timestamp)
ORDER BY (brand_id, toDate(event_timestamp), article_id, event_timestamp);

CREATE TABLE IF NOT EXISTS editorial_article_performance (
    article_id UUID,
    performance_date Date,
    brand_id UUID,
    author_id UUID,
    category_id UUID,
    article_age_days UInt32,
    total_views UInt64,
    views_1d UInt64,
    views_7d UInt64,
    unique_viewers_7d UInt64,
    clicks_7d UInt64,
    impressions_7d UInt64,
    click_through_rate_7d Float64,
    avg_engagement_seconds_7d Float64,
    avg_scroll_depth_7d Float64,
    video_plays_7d UInt64,
    engagement_score Float64,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY performance_date
ORDER BY (brand_id, article_id);

CREATE TABLE IF NOT EXISTS editorial_author_performance (
    author_id UUID,
    performance_date Date,
    brand_id UUID,
    articles_published_30d UInt32,
    total_views_30d UInt64,
    unique_viewers_30d UInt64,
    avg_engagement_seconds_30d Float64,
    click_through_rate_30d Float64,
    engagement_score Float64,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY performance_date
ORDER BY (brand_id, author_id);

CREATE TABLE IF NOT EXISTS editorial_category_performance (
    category_id UUID,
    performance_date Date,
    brand_id UUID,
    articles_published_30d UInt32,
    total_views_30d UInt64,
    unique_viewers_30d UInt64,
    avg_engagement_seconds_30d Float64,
    click_through_rate_30d Float64,
    views_growth_7d Float64,
    engagement_score Float64,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY performance_date
ORDER BY (brand_id, category_id);

-- ML ----------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS ml_model_registry (
    model_id UUID,
    model_name LowCardinality(String),
    model_version String,
    model_type LowCardinality(String),
    algorithm LowCardinality(String),
    stage LowCardinality(String),
    metrics String,
    feature_names Array(String),
    input_schema String,
    training_data_start Nullable(Date),
    training_data_end Nullable(Date),
    artifact_uri String,
    artifact_sha256 String,
    description String,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (model_name, model_version);

CREATE TABLE IF NOT EXISTS ml_model_features (
    model_id UUID,
    model_name LowCardinality(String),
    model_version String,
    feature_name String,
    feature_type LowCardinality(String),
    importance Float64,
    description String,
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (model_name, model_version, feature_name);

CREATE TABLE IF NOT EXISTS ml_model_training_runs (
    run_id UUID,
    model_id Nullable(UUID),
    model_name LowCardinality(String),
    model_version String,
    status LowCardinality(String),
    parameters String,
    metrics String,
    data_snapshot String,
    package_version String,
    error_message String,
    started_at DateTime64(3, 'UTC'),
    finished_at Nullable(DateTime64(3, 'UTC')),
    duration_sec Float64
) ENGINE = ReplacingMergeTree(started_at)
ORDER BY (model_name, run_id);

CREATE TABLE IF NOT EXISTS ml_model_predictions (
    prediction_id UUID,
    model_id Nullable(UUID),
    model_name LowCardinality(String),
    model_version String,
    entity_type LowCardinality(String),
    entity_id String,
    brand_id Nullable(UUID),
    prediction_date Date,
    prediction_value Float64,
    prediction_label String,
    batch_id UUID,
    predicted_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY (model_name, entity_type, entity_id);

CREATE TABLE IF NOT EXISTS ml_model_monitoring (
    monitoring_id UUID,
    model_id Nullable(UUID),
    model_name LowCardinality(String),
    model_version String,
    monitoring_date Date,
    monitor_type LowCardinality(String),
    metric_name String,
    feature_name String,
    metric_value Float64,
    threshold Nullable(Float64),
    status LowCardinality(String),
    details String,
    created_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(monitoring_date)
ORDER BY (model_name, monitoring_date, monitor_type, metric_name, feature_name);

CREATE TABLE IF NOT EXISTS ml_model_ab_tests (
    test_id UUID,
    test_name String,
    model_name LowCardinality(String),
    variant_a_version String,
    variant_b_version String,
    traffic_split Float64,
    status LowCardinality(String),
    primary_metric String,
    start_date Date,
    end_date Nullable(Date),
    results String,
    winner String,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY test_id;

-- Simulator ground truth ---------------------------------------------------
CREATE TABLE IF NOT EXISTS sim_runs (
    run_id UUID,
    seed UInt64,
    users UInt32,
    days UInt32,
    start_date Date,
    parameters String,
    created_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree ORDER BY created_at;

CREATE TABLE IF NOT EXISTS sim_users (
    user_id UUID,
    user_index UInt32,
    home_brand_id UUID,
    first_day Date,
    engaged_until Date,
    churned_on Date,
    subscribed_on Nullable(Date),
    newsletter_on Nullable(Date),
    activity_rate Float64,
    fading_activity_rate Float64,
    fade_hazard Float64,
    churn_hazard Float64,
    conversion_rate Float64,
    ad_responsiveness Float64,
    click_affinity Float64,
    topic_preferences Array(Float32)
) ENGINE = MergeTree ORDER BY user_id;

CREATE TABLE IF NOT EXISTS sim_articles (
    article_id UUID,
    quality Float64,
    category_index UInt8
) ENGINE = MergeTree ORDER BY article_id;

CREATE TABLE IF NOT EXISTS sim_user_truth (
    user_id UUID,
    feature_date Date,
    stage LowCardinality(String),
    churn_probability Float64,
    conversion_probability Float64
) ENGINE = MergeTree
PARTITION BY feature_date
ORDER BY user_id;

-- Reference look-ups for loaders: dictionaries over the reference tables (reloaded after a simulation)
CREATE DICTIONARY IF NOT EXISTS dict_brands (brand_id UUID, brand_name String, brand_code String)
PRIMARY KEY brand_id SOURCE(CLICKHOUSE(TABLE 'brands')) LIFETIME(MIN 30 MAX 60) LAYOUT(COMPLEX_KEY_HASHED());

CREATE DICTIONARY IF NOT EXISTS dict_device_types (device_type_id UUID, device_type_name String)
PRIMARY KEY device_type_id SOURCE(CLICKHOUSE(TABLE 'device_types')) LIFETIME(MIN 30 MAX 60) LAYOUT(COMPLEX_KEY_HASHED());

CREATE DICTIONARY IF NOT EXISTS dict_operating_systems (os_id UUID, os_name String)
PRIMARY KEY os_id SOURCE(CLICKHOUSE(TABLE 'operating_systems')) LIFETIME(MIN 30 MAX 60) LAYOUT(COMPLEX_KEY_HASHED());

CREATE DICTIONARY IF NOT EXISTS dict_browsers (browser_id UUID, browser_name String)
PRIMARY KEY browser_id SOURCE(CLICKHOUSE(TABLE 'browsers')) LIFETIME(MIN 30 MAX 60) LAYOUT(COMPLEX_KEY_HASHED());

CREATE DICTIONARY IF NOT EXISTS dict_countries (country_code String, country_name String)
PRIMARY KEY country_code SOURCE(CLICKHOUSE(TABLE 'countries')) LIFETIME(MIN 30 MAX 60) LAYOUT(COMPLEX_KEY_HASHED());

CREATE DICTIONARY IF NOT EXISTS dict_cities (city_id UUID, city_name String)
PRIMARY KEY city_id SOURCE(CLICKHOUSE(TABLE 'cities')) LIFETIME(MIN 30 MAX 60) LAYOUT(COMPLEX_KEY_HASHED());

CREATE DICTIONARY IF NOT EXISTS dict_categories (category_id UUID, category_name String)
PRIMARY KEY category_id SOURCE(CLICKHOUSE(TABLE 'categories')) LIFETIME(MIN 30 MAX 60) LAYOUT(COMPLEX_KEY_HASHED());
