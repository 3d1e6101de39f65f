-- Real-time inference: each worker's watermark (how far into customer_events it has scored) and its predictions.
CREATE TABLE IF NOT EXISTS ml_inference_watermarks (
    worker String,
    model_name LowCardinality(String),
    watermark DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY worker;

-- one row per user scored per window (window_end = the watermark the window advanced to)
CREATE TABLE IF NOT EXISTS ml_realtime_predictions (
    worker String,
    model_name LowCardinality(String),
    model_version String,
    user_id UUID,
    window_end DateTime64(3, 'UTC'),
    last_event_at DateTime64(3, 'UTC'),
    events UInt32,
    feature_date Date,
    prediction_value Float64,
    prediction_label String,
    predicted_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(window_end)
ORDER BY (worker, window_end, user_id);
