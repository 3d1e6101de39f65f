-- The editorial models (article performance, trending) and the simulator truth they are judged against.

-- Where a visit came from (direct, search, social, newsletter; internal for views reached from another article) and
-- shares ('share' events): what a publisher's analytics records of an article's early traction.
ALTER TABLE customer_events ADD COLUMN IF NOT EXISTS referrer LowCardinality(String) DEFAULT '';
ALTER TABLE editorial_content_events ADD COLUMN IF NOT EXISTS referrer LowCardinality(String) DEFAULT '';

-- Each article's inputs as an editor could know them: metadata and the author's earlier record at publication,
-- then its traction over the first 1, 3 and 6 hours (from_*: the share of its views by referrer); the outcome (7 days) once complete. Partitioned by the
-- publication date; `features build --date D` rewrites the articles published in the 8 days before D from events
-- before D, so a row's horizons and outcome fill in as the days pass.
CREATE TABLE IF NOT EXISTS editorial_article_features (
    article_id UUID,
    publish_date Date,
    publish_timestamp DateTime('UTC'),
    brand_id UUID,
    author_id UUID,
    category_id UUID,
    topic LowCardinality(String),
    word_count UInt32,
    has_video UInt8,
    is_premium UInt8,
    publish_hour UInt8,
    publish_weekday UInt8,
    author_articles_30d UInt32,
    author_avg_log_views_7d Nullable(Float64),
    author_avg_completion_7d Nullable(Float64),
    category_views_24h UInt64,
    topic_views_24h UInt64,
    topic_views_growth_24h Float64,
    brand_views_24h UInt64,
    views_1h Nullable(UInt64), readers_1h Nullable(UInt64), clicks_1h Nullable(UInt64), impressions_1h Nullable(UInt64),
    scroll_1h Nullable(Float64), completion_1h Nullable(Float64), engagement_1h Nullable(Float64), video_plays_1h Nullable(UInt64),
    shares_1h Nullable(UInt64), from_social_1h Nullable(Float64), from_search_1h Nullable(Float64), from_internal_1h Nullable(Float64),
    views_3h Nullable(UInt64), readers_3h Nullable(UInt64), clicks_3h Nullable(UInt64), impressions_3h Nullable(UInt64),
    scroll_3h Nullable(Float64), completion_3h Nullable(Float64), engagement_3h Nullable(Float64), video_plays_3h Nullable(UInt64),
    shares_3h Nullable(UInt64), from_social_3h Nullable(Float64), from_search_3h Nullable(Float64), from_internal_3h Nullable(Float64),
    views_6h Nullable(UInt64), readers_6h Nullable(UInt64), clicks_6h Nullable(UInt64), impressions_6h Nullable(UInt64),
    scroll_6h Nullable(Float64), completion_6h Nullable(Float64), engagement_6h Nullable(Float64), video_plays_6h Nullable(UInt64),
    shares_6h Nullable(UInt64), from_social_6h Nullable(Float64), from_search_6h Nullable(Float64), from_internal_6h Nullable(Float64),
    views_7d Nullable(UInt64),
    readers_7d Nullable(UInt64),
    completion_rate_7d Nullable(Float64),
    as_of DateTime('UTC'),
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY publish_date
ORDER BY (brand_id, article_id);

-- Article performance predictions of a date: every article published in the 7 days before it, with what was known
-- of it then (`hours_observed`: 0 before any traction window closed, else 1, 3 or 6).
CREATE TABLE IF NOT EXISTS editorial_article_predictions (
    article_id UUID,
    prediction_date Date,
    brand_id UUID,
    publish_timestamp DateTime('UTC'),
    hours_observed UInt8,
    views_observed UInt64,
    predicted_views_7d Float64,
    predicted_completion_rate_7d Float64,
    performance_decile UInt8,
    model_id Nullable(UUID),
    model_version String,
    predicted_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY (brand_id, article_id);

-- What is trending, per brand and hour: categories, topics and articles ranked by views against their own seasonal
-- baseline, with whether it is a burst and why. Partitioned by the day of the hour; re-running a day replaces it.
CREATE TABLE IF NOT EXISTS editorial_trending (
    brand_id UUID,
    hour DateTime('UTC'),
    level LowCardinality(String),
    item String,
    item_name String,
    rank UInt16,
    views UInt64,
    expected_views Float64,
    velocity Float64,
    acceleration Float64,
    score Float64,
    is_burst UInt8,
    reason String,
    model_id Nullable(UUID),
    model_version String,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY toDate(hour)
ORDER BY (brand_id, hour, level, rank);

-- Simulator truth: news events that made a topic spike in one brand (`intensity`: the readers' extra pull at its
-- start, fading to none at its end).
CREATE TABLE IF NOT EXISTS sim_topic_bursts (
    burst_id UInt32,
    brand_id UUID,
    category_id UUID,
    topic LowCardinality(String),
    start_at DateTime('UTC'),
    end_at DateTime('UTC'),
    intensity Float64
) ENGINE = MergeTree
ORDER BY (brand_id, start_at);
