import numpy as np
import pytest

from ownlens.ml import schema
from ownlens.ml.errors import InvalidInput, SchemaMissing
from ownlens.ml.warehouse import insert_columns, query_columns

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


def test_native_columns_round_trip(make_db):
    db = make_db(init=False)

    out = query_columns(db, "SELECT generateUUIDv4(number) AS id, toFloat64(number) / 4 AS x, [x, -x, nan] AS row "
                            "FROM numbers(70000) ORDER BY number")  # more rows than one block
    assert out["id"].dtype == "V16" and out["row"].shape == (70000, 3) and out["x"][-1] == 69999 / 4
    assert (out["row"][:, 1] == -out["x"]).all() and np.isnan(out["row"][:, 2]).all()
    db.command("CREATE TABLE native_rt (id UUID, x Float64, n UInt8) ENGINE = Memory")
    assert insert_columns(db, "native_rt", {"id": ("UUID", out["id"]), "x": ("Float64", out["x"]), "n": ("UInt8", np.ones(70000))}) == 70000
    back = query_columns(db, "SELECT id, x FROM native_rt ORDER BY x")
    assert (back["id"] == out["id"]).all() and db.query("SELECT sum(n), uniqExact(id) FROM native_rt").result_rows == [(70000, 70000)]
    assert query_columns(db, "SELECT 1 AS one WHERE 0") == {}
    with pytest.raises(InvalidInput, match="arrays of different lengths"):
        query_columns(db, "SELECT range(number % 3 + 1) AS r FROM numbers(5)")
    with pytest.raises(InvalidInput, match="type String"):
        query_columns(db, "SELECT 'text' AS s")


def test_init_names_every_way_an_existing_table_differs_from_the_contract(make_db):
    client = make_db(init=False)
    # the publisher's own table, created before OwnLens: a column missing, one of another type, one extra
    client.command("CREATE TABLE brands (brand_id String, company_id UUID, brand_name String, brand_code String, "
                   "is_premium UInt8, created_at DateTime64(0, 'UTC'), owner String) ENGINE = MergeTree ORDER BY brand_id")
    schema.apply(client)
    found = schema.mismatches(client)
    assert found == ["brands.brand_id is String; the contract says UUID", "brands has no column primary_country_code (LowCardinality(String))"]
    client.command("DROP TABLE editorial_article_content")
    schema.apply(client)  # (already at the latest version: a dropped table is not recreated by apply)
    assert schema.mismatches(client)[-1] == "table editorial_article_content is missing"
    assert client.command("SELECT count() FROM system.databases WHERE startsWith(name, '_ownlens_contract_')") == 0


def test_a_fresh_schema_matches_its_own_contract(db):
    assert schema.mismatches(db) == []


def test_a_publishers_own_tables_are_read_through_views_without_copying(sim, make_db, warehouse_path, capsys, monkeypatch, tmp_path):
    """Their tables, under their names and column names, in their own database: `init --map` makes the contract's
    input tables views over them, and the features built through those views are the features built from ours."""
    import json

    from conftest import FEATURE_DATES
    from test_cli import in_process

    from ownlens.ml.errors import InvalidInput
    from ownlens.ml.features.customer import build_user_features
    from ownlens.ml.schema.inputs import BY_NAME

    theirs = make_db(init=False).database
    for table in BY_NAME:
        sim.command("CREATE TABLE {d:Identifier}.{t:Identifier} ENGINE = MergeTree ORDER BY tuple() AS SELECT * FROM {t:Identifier}",
                    parameters={"d": theirs, "t": table})
    sim.command("RENAME TABLE {d:Identifier}.customer_sessions TO {d:Identifier}.web_sessions", parameters={"d": theirs})
    sim.command("ALTER TABLE {d:Identifier}.web_sessions RENAME COLUMN user_id TO visitor, MODIFY COLUMN session_duration_sec Float32",
                parameters={"d": theirs})
    mapping = {t: {"table": f"{theirs}.{t}"} for t in BY_NAME}
    mapping["customer_sessions"] = {"table": f"{theirs}.web_sessions", "columns": {"user_id": "visitor"}}
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    ours = make_db(init=False)
    cli = in_process(f"chdb://{warehouse_path}?database={ours.database}", capsys, monkeypatch)
    done = cli(["init", "--map", str(tmp_path / "map.json")])
    assert done.returncode == 0 and "read through views" in done.stdout, done.stderr
    assert ours.command("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'customer_sessions'") == "View"
    d = FEATURE_DATES[1]
    assert build_user_features(ours, d) == sim.command("SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}",
                                                        parameters={"d": d}) > 0
    fingerprint = "SELECT groupBitXor(cityHash64(user_id, total_sessions, sessions_last_30d)) FROM customer_user_features WHERE feature_date = {d:Date}"
    assert ours.command(fingerprint, parameters={"d": d}) == sim.command(fingerprint, parameters={"d": d})
    # a bad mapping gets one clear line, and nothing half-made
    (tmp_path / "bad.json").write_text(json.dumps({"customer_sessions": {"table": f"{theirs}.web_sessions", "columns": {"user_id": "nobody"}}}))
    bad = cli(["init", "--map", str(tmp_path / "bad.json")])
    assert bad.returncode == InvalidInput.exit_code and "cannot read it from" in " ".join(bad.stderr.split())
    assert ours.command("SELECT count() FROM customer_sessions") > 0  # the view it had is untouched
    (tmp_path / "sql.json").write_text(json.dumps({"customer_sessions": {"table": "x; DROP TABLE brands"}}))
    injected = cli(["init", "--map", str(tmp_path / "sql.json")])
    assert injected.returncode == InvalidInput.exit_code and "not a plain name" in " ".join(injected.stderr.split())
    assert ours.command("SELECT count() FROM brands") > 0  # nothing run from the file
    contract = cli(["contract", "--table", "customer_sessions", "--json"])
    rows = json.loads(contract.stdout)["inputs"]
    assert contract.returncode == 0 and {"user_id", "session_start"} <= {r["column"] for r in rows} and all(r["meaning"] for r in rows)


def test_every_input_column_of_the_contract_says_what_it_means(db):
    from ownlens.ml.schema.inputs import INPUTS, describe

    rows = describe(db)
    assert {r["table"] for r in rows} == {t.name for t in INPUTS}
    assert [f"{r['table']}.{r['column']}" for r in rows if not r["meaning"]] == []
    documented = {(t.name, c) for t in INPUTS for c in t.columns}
    assert documented == {(r["table"], r["column"]) for r in rows}  # no meaning for a column the contract lacks
