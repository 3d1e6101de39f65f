-- Subscriber features and labels per date (features/subscription.py): every subscription active at the start of
-- feature_date, its plan, tenure, payments and changes before it, its reader's recent reading; labels from the
-- billing events of the 30 days from feature_date.

CREATE TABLE IF NOT EXISTS customer_subscription_features (
    user_id UUID,
    feature_date Date,
    brand_id UUID,
    subscription_id UUID,
    plan_code LowCardinality(String),
    plan_tier UInt8,
    monthly_price_eur Float64,
    tenure_days UInt32,
    renewals UInt32,
    days_to_renewal UInt8,
    failed_payments UInt32,
    failed_payments_90d UInt32,
    upgrades UInt32,
    downgrades UInt32,
    sessions_last_7d UInt32,
    sessions_last_30d UInt32,
    active_days_last_30d UInt32,
    reading_trend Float64,
    days_since_last_session UInt32,
    avg_session_duration_sec Float64,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY feature_date
ORDER BY (brand_id, user_id);

CREATE TABLE IF NOT EXISTS customer_subscription_labels (
    user_id UUID,
    feature_date Date,
    subscription_id UUID,
    upgraded_30d UInt8,
    cancelled_30d UInt8,
    cancelled_or_downgraded_30d UInt8,
    label_window_complete UInt8,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY feature_date
ORDER BY user_id;
