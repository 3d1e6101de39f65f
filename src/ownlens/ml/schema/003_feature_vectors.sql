-- Serving copy of customer_user_features: one row per user and date with the model inputs packed into two
-- columns, so reading one user's features touches two columns, not fifty (single-user prediction latency).
CREATE TABLE IF NOT EXISTS customer_user_feature_vectors (
    feature_date Date,
    user_id UUID,
    brand_id UUID,
    feature_set LowCardinality(String),
    numeric Array(Float64),
    categorical Array(String)
) ENGINE = MergeTree
PARTITION BY feature_date
ORDER BY user_id
SETTINGS index_granularity = 256;
