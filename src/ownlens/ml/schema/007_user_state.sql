-- Each user's running totals over all their sessions before state_date: the state customer_user_features is
-- computed from. A date's state is the previous date's state joined to the sessions in between, so a daily build
-- reads one day of sessions, not all history (see ownlens.ml.features.customer). Maps count sessions per day
-- (the last 60 days a user was active in, as of their last session) and per brand, device, OS, browser, country,
-- city and category.
CREATE TABLE IF NOT EXISTS customer_user_state (
    state_date Date,
    user_id UUID,
    first_session DateTime64(3, 'UTC'),
    first_brand_id UUID,
    last_session DateTime64(3, 'UTC'),
    total_sessions UInt64,
    total_events UInt64,
    total_duration_sec Float64,
    active_days UInt32,
    daily_sessions Map(Date, UInt32),
    page_views UInt64,
    article_views UInt64,
    article_clicks UInt64,
    video_plays UInt64,
    newsletter_signups UInt64,
    engagement_seconds Float64,
    scroll_x_views Float64,
    subscriptions UInt64,
    ad_impressions UInt64,
    ad_clicks UInt64,
    ad_revenue Float64,
    weekend_sessions UInt64,
    evening_sessions UInt64,
    morning_sessions UInt64,
    brands Map(UUID, UInt32),
    devices Map(UUID, UInt32),
    oses Map(UUID, UInt32),
    browsers Map(UUID, UInt32),
    countries Map(LowCardinality(String), UInt32),
    cities Map(UUID, UInt32),
    categories Map(UUID, UInt32)
) ENGINE = MergeTree
PARTITION BY state_date
ORDER BY user_id;
