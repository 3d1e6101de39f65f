import pytest

from ownlens.ml import schema
from ownlens.ml.errors import SchemaMissing

SEED_TABLES = [
    "customer_events", "customer_sessions", "customer_user_features", "customer_user_segments",
    "customer_user_segment_assignments", "customer_churn_predictions", "customer_conversion_predictions",
    "customer_recommendations", "customer_session_summary_daily", "editorial_articles", "editorial_authors",
    "editorial_content_events", "editorial_article_performance", "editorial_article_content",
    "editorial_author_performance", "editorial_category_performance", "ml_model_registry", "ml_model_features",
    "ml_model_training_runs", "ml_model_predictions", "ml_model_monitoring", "ml_model_ab_tests",
    "companies", "brands", "countries", "cities", "categories", "device_types", "operating_systems", "browsers",
]


def _tables(client):
    return sorted(r[0] for r in client.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows)


def test_init_twice_leaves_one_schema(make_db):
    client = make_db(init=False)
    with pytest.raises(SchemaMissing, match="ownlens-ml init"):
        schema.require(client)
    assert schema.apply(client) == list(range(1, schema.latest_version() + 1))
    first = _tables(client)
    assert schema.apply(client) == []
    assert _tables(client) == first
    assert set(SEED_TABLES) <= set(first)
    assert schema.current_version(client) == schema.latest_version()
    rows = client.query(f"SELECT version, count() FROM {schema.MIGRATIONS_TABLE} FINAL GROUP BY version").result_rows
    assert all(n == 1 for _, n in rows)
    schema.require(client)


def test_seed_columns_exist(db):
    cols = {(t, c) for t, c in db.query(
        "SELECT table, name FROM system.columns WHERE database = currentDatabase()").result_rows}
    for table, column in [
        ("customer_user_features", "preferred_brand_id"), ("customer_user_features", "primary_country_code"),
        ("customer_user_features", "avg_session_duration_sec"), ("customer_user_features", "ml_features"),
        ("editorial_content_events", "author_id"), ("editorial_article_performance", "engagement_score"),
        ("brands", "brand_code"), ("customer_events", "event_timestamp"), ("customer_sessions", "session_start"),
        ("customer_session_summary_daily", "total_video_plays"), ("cities", "city_name"),
    ]:
        assert (table, column) in cols
