-- Revenue and marketing (seed 004): what a publisher's billing system and marketing stack record, and the
-- simulator's truth about them.

CREATE TABLE IF NOT EXISTS revenue_subscription_plans (
    plan_code LowCardinality(String),
    plan_name String,
    tier UInt8,
    monthly_price_eur Float64
) ENGINE = MergeTree ORDER BY plan_code;

-- One row per change of a subscription: start, renewal (a payment), upgrade, downgrade, payment_failed, cancel.
-- `plan_code` is the plan after the event; `amount_eur` what was charged (0 for events without a charge).
CREATE TABLE IF NOT EXISTS revenue_subscription_events (
    subscription_id UUID,
    user_id UUID,
    brand_id UUID,
    event_date Date,
    event_type LowCardinality(String),
    plan_code LowCardinality(String),
    amount_eur Float64
) ENGINE = MergeTree
ORDER BY (user_id, subscription_id, event_date);

-- Every payment: subscription charges and one-off purchases (shop, events, gifts).
CREATE TABLE IF NOT EXISTS revenue_payments (
    payment_id UUID,
    user_id UUID,
    brand_id UUID,
    paid_at DateTime64(0, 'UTC'),
    kind LowCardinality(String),
    amount_eur Float64
) ENGINE = MergeTree
ORDER BY (user_id, paid_at);

CREATE TABLE IF NOT EXISTS marketing_channels (
    channel_code LowCardinality(String),
    channel_name String
) ENGINE = MergeTree ORDER BY channel_code;

CREATE TABLE IF NOT EXISTS marketing_campaigns (
    campaign_id UUID,
    channel_code LowCardinality(String),
    campaign_name String,
    start_date Date,
    end_date Date,
    daily_budget_eur Float64
) ENGINE = MergeTree ORDER BY (channel_code, start_date);

CREATE TABLE IF NOT EXISTS marketing_spend_daily (
    spend_date Date,
    campaign_id UUID,
    channel_code LowCardinality(String),
    spend_eur Float64
) ENGINE = MergeTree ORDER BY (spend_date, channel_code);

-- A paid-media contact with a known reader: an ad click-through, an affiliate referral, an opened email.
CREATE TABLE IF NOT EXISTS marketing_touchpoints (
    user_id UUID,
    touched_at DateTime64(0, 'UTC'),
    channel_code LowCardinality(String),
    campaign_id UUID
) ENGINE = MergeTree
PARTITION BY toYYYYMM(touched_at)
ORDER BY (user_id, touched_at);

-- Simulator truth: each channel's touches per reader-day at a daily spend s (EUR per 1,000 readers) are
-- touches_at_saturation * s^hill_shape / (s^hill_shape + half_saturation^hill_shape), each converting an engaged,
-- unsubscribed reader with conversion_per_touch.
CREATE TABLE IF NOT EXISTS sim_channel_truth (
    channel_code LowCardinality(String),
    touches_at_saturation Float64,
    half_saturation_eur_per_1k Float64,
    hill_shape Float64,
    conversion_per_touch Float64
) ENGINE = MergeTree ORDER BY channel_code;

-- Simulator truth: each reader's value process. converted_by: what made them subscribe in the window ('organic',
-- a channel code), 'legacy' (subscribed before it), '' (did not). Subscription and purchase parameters are NULL
-- for readers without subscriptions or purchases; purchases_dropped_on is when the buyer stopped for good.
CREATE TABLE IF NOT EXISTS sim_customer_value (
    user_id UUID,
    marketing_reach Float64,
    converted_by LowCardinality(String),
    monthly_cancel_probability Nullable(Float64),
    upgrade_probability Nullable(Float64),
    purchase_rate_per_day Nullable(Float64),
    purchase_dropout Nullable(Float64),
    mean_order_value_eur Nullable(Float64),
    purchases_dropped_on Nullable(Date)
) ENGINE = MergeTree ORDER BY user_id;

-- The attribution model's batch output: per channel (and 'organic'), the conversions of the period_days before
-- prediction_date credited incrementally and by the credit rules, its spend, and the budget recommendation.
CREATE TABLE IF NOT EXISTS marketing_channel_attribution (
    prediction_date Date,
    period_days UInt16,
    channel_code LowCardinality(String),
    spend_eur Float64,
    touches UInt64,
    conversions Float64,
    conversions_last_touch Float64,
    conversions_first_touch Float64,
    conversions_linear Float64,
    conversions_markov Float64,
    conversions_shapley Float64,
    conversions_per_touch Float64,
    cost_per_conversion_eur Nullable(Float64),
    curve_top Float64,
    curve_half_eur Float64,
    curve_shape Float64,
    recommended_spend_eur Float64,
    expected_conversions Float64,
    model_id Nullable(UUID),
    model_version String,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY channel_code;

-- The customer value model's batch output: each customer's expected revenue over horizon_days from prediction_date.
CREATE TABLE IF NOT EXISTS customer_lifetime_value (
    prediction_date Date,
    user_id UUID,
    horizon_days UInt16,
    expected_purchases Float64,
    probability_alive Float64,
    expected_order_value_eur Float64,
    expected_purchase_revenue_eur Float64,
    subscribed UInt8,
    plan_code LowCardinality(String),
    tenure_months UInt16,
    probability_subscribed_at_horizon Float64,
    expected_subscription_revenue_eur Float64,
    clv_eur Float64,
    model_id Nullable(UUID),
    model_version String,
    computed_at DateTime64(0, 'UTC') DEFAULT now()
) ENGINE = MergeTree
PARTITION BY prediction_date
ORDER BY user_id;
