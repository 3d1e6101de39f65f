-- Seed 004's customer-success and growth scores: subscriber health (0-100 with its top drivers), expansion (who
-- upgrades in the next 30 days), and lead scoring (which free readers subscribe), with the marketing touches and
-- funnel stage of each free reader per date (features/lead.py).

CREATE TABLE IF NOT EXISTS customer_health_scores (
    user_id UUID,
    prediction_date Date,
    brand_id UUID,
    cancel_or_downgrade_probability Float64,
    health_score UInt8,
    health_band LowCardinality(String),
    at_risk UInt8,
    top_drivers Array(LowCardinality(String)),
    model_id Nullable(UUID),
    model_version String,
    predicted_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY (brand_id, user_id);

CREATE TABLE IF NOT EXISTS customer_expansion_predictions (
    user_id UUID,
    prediction_date Date,
    brand_id UUID,
    upgrade_probability Float64,
    expansion_tier LowCardinality(String),
    will_upgrade UInt8,
    top_drivers Array(LowCardinality(String)),
    model_id Nullable(UUID),
    model_version String,
    predicted_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY (brand_id, user_id);

-- every free reader of customer_user_features on feature_date: marketing touches before it, and where they stand
CREATE TABLE IF NOT EXISTS customer_lead_features (
    user_id UUID,
    feature_date Date,
    brand_id UUID,
    touches_last_7d UInt32,
    touches_last_30d UInt32,
    channels_touched_30d UInt8,
    days_since_last_touch UInt16,
    last_touch_channel LowCardinality(String),
    funnel_stage LowCardinality(String),
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY feature_date
ORDER BY (brand_id, user_id);

CREATE TABLE IF NOT EXISTS customer_lead_scores (
    user_id UUID,
    prediction_date Date,
    brand_id UUID,
    lead_probability Float64,
    lead_grade LowCardinality(String),
    is_qualified UInt8,
    funnel_stage LowCardinality(String),
    top_drivers Array(LowCardinality(String)),
    model_id Nullable(UUID),
    model_version String,
    predicted_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY (brand_id, user_id);

-- Each campaign's part of its channel's attribution (marketing_channel_attribution of the same date): campaigns of a
-- channel share its response curve, so a campaign's conversions are its share of the channel's touches, and its
-- recommended spend its share of the channel's spend in the period, of the channel's recommendation.
CREATE TABLE IF NOT EXISTS marketing_campaign_attribution (
    prediction_date Date,
    period_days UInt16,
    campaign_id UUID,
    campaign_name String,
    channel_code LowCardinality(String),
    spend_eur Float64,
    touches UInt64,
    conversions Float64,
    cost_per_conversion_eur Nullable(Float64),
    live_at_end UInt8,
    recommended_spend_eur Float64,
    expected_conversions Float64,
    model_id Nullable(UUID),
    model_version String,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY (channel_code, campaign_id);
