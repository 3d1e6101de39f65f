"""Named sets of model inputs, defined once: which columns of which feature table a model reads.

A set is declared here, next to the SQL that computes its table, and models refer to it by name; the
serving vectors (customer_user_feature_vectors) pack a set's columns in this order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSet:
    """Named model inputs read from one table: numeric columns, categorical columns, JSON keys."""

    name: str
    table: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    json_column: str | None = None
    json_keys: tuple[str, ...] = ()
    trending: tuple[str, ...] = ()  # inputs that grow with time by construction: drift monitoring reports, never alerts
    # days of data before a row's date that an input needs to be what it says (its window): monitoring does not use
    # a reference date with less history for it; inputs not named need ``min_history_days``
    history_days: tuple[tuple[str, int], ...] = ()
    min_history_days: int = 0

    def history_of(self, column: str) -> int:
        return dict(self.history_days).get(column, self.min_history_days)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.json_keys, *self.categorical]

    @property
    def signature(self) -> str:
        """Names the column layout of the packed serving vectors (changes whenever the columns do)."""
        return f"{self.name}-" + hashlib.sha256(",".join(self.columns).encode()).hexdigest()[:12]

    def json_sql(self, alias: str, key: str) -> str:
        """One JSON key as Float64 (0 when absent). The document is parsed once per row for all keys: the
        same JSONExtract expression repeated is computed once by ClickHouse (5 JSONExtractFloats cost ~2x)."""
        keys = ", ".join(f"{k} Float64" for k in self.json_keys)
        return f"tupleElement(JSONExtract({alias}.{self.json_column}, 'Tuple({keys})'), '{key}')"

    def vector_sql(self, alias: str) -> str:
        """The inputs packed as ``numeric`` (numeric then JSON keys) and ``categorical`` (as text, '' for NULL)."""
        numeric = [f"toFloat64({alias}.{c})" for c in self.numeric]
        numeric += [self.json_sql(alias, k) for k in self.json_keys]
        categorical = [f"ifNull(toString({alias}.{c}), '')" for c in self.categorical]
        return f"[{', '.join(numeric)}] AS numeric, [{', '.join(categorical)}] AS categorical"

    def select_sql(self, alias: str) -> str:
        """SELECT list: user_id, feature_date, brand_id (as text) and every input column (JSON keys as Float64)."""
        parts = [f"toString({alias}.user_id) AS user_id", f"{alias}.feature_date AS feature_date"]
        parts += [f"toString({alias}.brand_id) AS brand_id"] if "brand_id" not in self.categorical else []
        parts += [f"{alias}.{c} AS {c}" for c in self.numeric]
        parts += [f"{self.json_sql(alias, k)} AS {k}" for k in self.json_keys]
        parts += [f"toString({alias}.{c}) AS {c}" for c in self.categorical]
        return ",\n    ".join(parts)

    def drift_columns(self, alias: str = "uf") -> list[tuple[str, str, str]]:
        """(name, SQL expression over ``alias``, kind) of every input, for drift monitoring."""
        return ([(c, f"{alias}.{c}", "numeric") for c in self.numeric]
                + [(k, self.json_sql(alias, k), "numeric") for k in self.json_keys]
                + [(c, f"{alias}.{c}", "categorical") for c in self.categorical])


# every model trained on customer_user_features reads these
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
    # tenure, lifetime totals and the distinct values seen in a lifetime rise for every returning user as time
    # passes, drift or not; the weekend share of sessions moves with the weekday of the date (a Saturday's counts
    # no weekend since the last one): on a steady 20k publisher it passed 0.2 sd every Saturday
    trending=("weekend_session_share", "is_subscriber", "has_newsletter", "days_since_first_session", "active_days", "total_sessions", "total_events",
              "total_page_views", "total_article_views", "total_article_clicks", "total_video_plays", "total_newsletter_signups",
              "total_engagement_seconds", "total_ad_impressions", "total_ad_clicks", "total_ad_revenue", "brand_count",
              "device_count", "category_diversity"),
    # a row is a user active in the 30 days before its date, so the windowed inputs need 30 days (the previous 30
    # days, 60); the others summarise each user's whole history, which on a young warehouse is short for everyone:
    # compared with a reference of 30 days' history, a steady 5k publisher alerted on 5 of them 60 days later
    history_days=(("sessions_last_7d", 30), ("sessions_last_30d", 30), ("active_days_last_30d", 30), ("activity_trend", 30),
                  ("days_since_last_session", 30), ("recency_score", 30), ("activity_score", 30), ("sessions_prev_30d", 60)),
    min_history_days=60,
)


# every subscriber model reads these (features/subscription.py)
SUBSCRIBER_FEATURES = FeatureSet(
    name="subscriber_features",
    table="customer_subscription_features",
    numeric=("plan_tier", "monthly_price_eur", "tenure_days", "renewals", "days_to_renewal", "failed_payments",
             "failed_payments_90d", "upgrades", "downgrades", "sessions_last_7d", "sessions_last_30d", "active_days_last_30d",
             "reading_trend", "days_since_last_session", "avg_session_duration_sec"),
    categorical=("brand_id", "plan_code"),
    # a subscription's tenure and its counts of renewals and changes only grow
    trending=("tenure_days", "renewals", "failed_payments", "upgrades", "downgrades"),
    history_days=(("sessions_last_7d", 30), ("sessions_last_30d", 30), ("active_days_last_30d", 30), ("reading_trend", 30),
                  ("days_since_last_session", 30), ("avg_session_duration_sec", 30), ("failed_payments_90d", 90)),
    min_history_days=0,
)


# the lead model reads the user features and these, from customer_lead_features (features/lead.py)
LEAD_COLUMNS = ("touches_last_7d", "touches_last_30d", "channels_touched_30d", "days_since_last_touch",
                "last_touch_channel", "funnel_stage")
LEAD_FEATURES = FeatureSet(
    name="lead_features",
    table="customer_lead_features",
    numeric=tuple(c for c in USER_FEATURES.numeric if c != "is_subscriber") + LEAD_COLUMNS[:4],
    categorical=USER_FEATURES.categorical + LEAD_COLUMNS[4:],
    json_column=USER_FEATURES.json_column,
    json_keys=USER_FEATURES.json_keys,
    trending=USER_FEATURES.trending,
    history_days=USER_FEATURES.history_days + (("touches_last_30d", 30), ("days_since_last_touch", 30)),
    min_history_days=USER_FEATURES.min_history_days,
)
# the lead model's own inputs as stored, what monitoring compares (its user features are the conversion model's)
LEAD_TOUCHES = FeatureSet(
    name="lead_touches",
    table="customer_lead_features",
    numeric=LEAD_COLUMNS[:4],
    categorical=LEAD_COLUMNS[4:],
    history_days=(("touches_last_7d", 7), ("touches_last_30d", 30), ("channels_touched_30d", 30), ("days_since_last_touch", 30)),
)
