-- Model predictions partitioned per (model, date); engagement predictions; oracle expected sessions; stage history.
-- No release wrote to ml_model_predictions before this migration, so it is recreated empty.
DROP TABLE IF EXISTS ml_model_predictions;

CREATE TABLE ml_model_predictions (
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
PARTITION BY (model_name, prediction_date)
ORDER BY (entity_type, entity_id);

-- the oracle of the engagement model: expected sessions in the 30 days after the feature date
ALTER TABLE sim_user_truth ADD COLUMN IF NOT EXISTS expected_sessions_30d Float64;

CREATE TABLE IF NOT EXISTS customer_engagement_predictions (
    user_id UUID,
    prediction_date Date,
    brand_id UUID,
    predicted_sessions_30d Float64,
    engagement_level LowCardinality(String),
    model_id Nullable(UUID),
    model_version String,
    predicted_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY (brand_id, user_id);

-- every stage change, for audit and rollback (the registry itself keeps only each version's latest row)
CREATE TABLE IF NOT EXISTS ml_model_stage_events (
    model_name LowCardinality(String),
    model_version String,
    stage LowCardinality(String),
    changed_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
ORDER BY (model_name, changed_at);
