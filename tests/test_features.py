from datetime import date, timedelta

import pandas as pd
import pytest
from conftest import FEATURE_DATES

from ownlens.ml.data.loaders import SessionLoader, UserFeaturesLoader
from ownlens.ml.errors import NotFound, SchemaMissing
from ownlens.ml.features.build import build_features
from ownlens.ml.features.customer import STATE_KEEP_DATES, build_user_features
from ownlens.ml.simulation import SimulationConfig, simulate

POINT_IN_TIME_TABLES = {
    "customer_user_features": ("feature_date", "user_id"),
    "customer_session_summary_daily": ("date", "brand_id"),
    "editorial_article_performance": ("performance_date", "article_id"),
    "editorial_author_performance": ("performance_date", "author_id, brand_id"),
    "editorial_category_performance": ("performance_date", "category_id, brand_id"),
}


def _snapshot(client, table, date_column, order, d):
    return client.query_df(
        f"SELECT * EXCEPT computed_at FROM {table} WHERE {date_column} = {{d:Date}} ORDER BY {order}", parameters={"d": d})


def test_features_use_only_data_before_the_date(make_db):
    client = make_db()
    simulate(client, SimulationConfig(users=1500, days=50, start=date(2026, 1, 5), seed=5))
    d = date(2026, 2, 4)
    build_features(client, d)
    before = {t: _snapshot(client, t, c, o, d if t != "customer_session_summary_daily" else d - timedelta(days=1))
              for t, (c, o) in POINT_IN_TIME_TABLES.items()}
    assert all(len(frame) > 0 for frame in before.values())
    later = client.command("SELECT count() FROM customer_events WHERE event_timestamp >= {d:Date}", parameters={"d": d})
    assert later > 1000
    for table, column in [("customer_events", "event_timestamp"), ("customer_sessions", "session_start"),
                          ("editorial_content_events", "event_timestamp"), ("editorial_articles", "publish_timestamp")]:
        client.command(f"ALTER TABLE {table} DELETE WHERE {column} >= {{d:Date}} SETTINGS mutations_sync = 2", parameters={"d": d})
    for state in ("as stored", "rebuilt from the remaining sessions"):
        if state != "as stored":
            client.command("TRUNCATE TABLE customer_user_state")
        build_features(client, d)
        for table, (column, order) in POINT_IN_TIME_TABLES.items():
            day = d if table != "customer_session_summary_daily" else d - timedelta(days=1)
            pd.testing.assert_frame_equal(_snapshot(client, table, column, order, day), before[table], check_exact=False, rtol=1e-9)
    # with the future gone, every user now looks churned: the labels did read the future, the features did not
    assert client.command("SELECT min(churned_30d) FROM customer_user_labels WHERE feature_date = {d:Date}", parameters={"d": d}) == 1


def test_rebuilding_a_date_replaces_rows(sim):
    d = FEATURE_DATES[0]
    counts = lambda: sim.query(
        "SELECT count(), uniqExact(user_id) FROM customer_user_features WHERE feature_date = {d:Date}", parameters={"d": d}
    ).result_rows[0]
    first = counts()
    build_features(sim, d)
    assert counts() == first
    assert first[0] == first[1] > 500


def test_labels_match_a_hand_computation(sim):
    d = FEATURE_DATES[0]
    labels = sim.query_df(
        "SELECT toString(user_id) AS user_id, churned_30d, converted_30d, sessions_next_30d FROM customer_user_labels "
        "WHERE feature_date = {d:Date} ORDER BY cityHash64(user_id) LIMIT 40", parameters={"d": d})
    subscribers = set(sim.query_df(
        "SELECT toString(user_id) AS u FROM customer_user_features WHERE feature_date = {d:Date} AND is_subscriber",
        parameters={"d": d})["u"])
    sessions = SessionLoader(sim).load(d, d + timedelta(days=29), limit=10_000_000)
    assert not labels.empty and labels["churned_30d"].nunique() == 2
    for row in labels.itertuples():
        mine = sessions[sessions["user_id"] == row.user_id]
        assert row.sessions_next_30d == len(mine)
        assert row.churned_30d == int(len(mine) == 0)
        assert row.converted_30d == int(row.user_id not in subscribers and mine["subscriptions"].sum() > 0)


def test_features_match_a_hand_computation(sim):
    d = FEATURE_DATES[1]
    features = UserFeaturesLoader(sim).load(d, limit=25)
    history = SessionLoader(sim).load(date(2026, 1, 1), d - timedelta(days=1), limit=10_000_000)
    for row in features.itertuples():
        mine = history[history["user_id"] == row.user_id]
        assert row.total_sessions == len(mine)
        last = pd.Timestamp(mine["session_start"].max()).date()
        assert row.days_since_last_session == (d - last).days
        assert row.sessions_last_7d == int((mine["session_start"] >= pd.Timestamp(d - timedelta(days=7), tz="UTC")).sum())
        assert row.total_article_views == mine["article_views"].sum()


def test_building_without_data_or_schema_fails_clearly(make_db):
    empty = make_db()
    with pytest.raises(NotFound, match="no sessions yet"):
        build_features(empty, date(2026, 2, 1))
    with pytest.raises(SchemaMissing, match="ownlens-ml init"):
        build_features(make_db(init=False), date(2026, 2, 1))


def test_date_outside_the_data_is_refused_and_nothing_written(sim):
    with pytest.raises(NotFound, match="pick a date from"):
        build_features(sim, date(2020, 1, 1))
    assert sim.command("SELECT count() FROM customer_user_features WHERE feature_date = '2020-01-01'") == 0


def test_daily_state_gives_the_same_features_as_all_history(make_db):
    client = make_db()
    simulate(client, SimulationConfig(users=1500, days=50, start=date(2026, 1, 5), seed=6))
    d = date(2026, 2, 4)
    states = lambda: [r[0] for r in client.query("SELECT DISTINCT state_date FROM customer_user_state ORDER BY 1").result_rows]
    for day in (d - timedelta(days=3), d - timedelta(days=1)):
        build_user_features(client, day)
    build_user_features(client, d)  # from the state of d - 1 plus one day of sessions
    assert states() == [d - timedelta(days=3), d - timedelta(days=1), d]
    incremental = _snapshot(client, "customer_user_features", "feature_date", "user_id", d)
    client.command("TRUNCATE TABLE customer_user_state")
    build_user_features(client, d)  # from all history
    pd.testing.assert_frame_equal(_snapshot(client, "customer_user_features", "feature_date", "user_id", d), incremental,
                                  check_exact=False, rtol=1e-9)
    assert len(incremental) > 300

    # a session loaded late, before a stored state's date, makes that state stale: it is not reused
    user, first = client.query("SELECT user_id, min(session_start) AS first FROM customer_sessions GROUP BY user_id "
                               "HAVING first < {d:Date} - 5 ORDER BY user_id LIMIT 1", parameters={"d": d}).result_rows[0]
    client.command("INSERT INTO customer_sessions SELECT * REPLACE (generateUUIDv4() AS session_id, session_start - INTERVAL 1 DAY AS session_start) "
                   "FROM customer_sessions AS s WHERE s.user_id = {u:UUID} AND s.session_start = {t:DateTime64(3, 'UTC')}",
                   parameters={"u": user, "t": first})
    build_user_features(client, d)
    row = client.query("SELECT total_sessions, toDate(first_session) FROM customer_user_state WHERE state_date = {d:Date} AND user_id = {u:UUID}",
                       parameters={"d": d, "u": user}).result_rows[0]
    expected = client.command("SELECT count() FROM customer_sessions WHERE user_id = {u:UUID} AND session_start < {d:Date}", parameters={"u": user, "d": d})
    assert row == (int(expected), (pd.Timestamp(first) - pd.Timedelta(days=1)).date())

    # only the newest few states are kept
    for offset in range(2, 9):
        build_user_features(client, d - timedelta(days=offset))
    assert len(states()) == STATE_KEEP_DATES and max(states()) == d


def test_production_paths_leave_the_simulator_alone(make_db):
    """Building features and training write and read no sim_ table: the oracle is read only to evaluate."""
    from ownlens.ml.models import get
    from ownlens.ml.models.oracle import attach

    client = make_db()
    simulate(client, SimulationConfig(users=400, days=50, start=date(2026, 1, 5), seed=4))
    build_features(client, date(2026, 2, 1))
    assert int(client.command("SELECT count() FROM sim_user_truth")) == 0  # not written by a feature build
    churn = get("churn")
    assert "sim_" not in churn.rows.training and "sim_" not in churn.rows.scoring and "sim_" not in get("click").rows.training
    frame = client.query("SELECT toString(user_id) AS user_id, feature_date FROM customer_user_features LIMIT 50").result_rows
    with_truth = attach(client, churn, pd.DataFrame(frame, columns=["user_id", "feature_date"]))
    assert with_truth["oracle"].between(0, 1).all()  # the evaluation place builds what it needs, on demand
    assert int(client.command("SELECT count() FROM sim_user_truth")) > 0


def test_exploration_draws_no_label_rates_for_open_windows(sim, make_db, tmp_path):
    from conftest import copy_of

    from ownlens.ml.data.exploration import explore

    client = copy_of(sim, make_db)
    late = date(2026, 3, 25)  # the simulation ends on 2026-03-30: this date's 30 days are still open
    build_features(client, late)
    explore(client, tmp_path)
    rates = pd.read_csv(tmp_path / "target_rates.csv")
    open_rows = rates[rates["feature_date"] == str(late)]
    assert len(open_rows) == 1 and open_rows[["churn_rate", "conversion_rate"]].isna().all(axis=None)
    known = rates[rates["window_complete"] == 1]
    assert len(known) == len(FEATURE_DATES) and known["churn_rate"].between(0.01, 0.9).all()
    page = (tmp_path / "report.html").read_text()
    assert f"from {late} on have no rates" in page and f"by brand ({FEATURE_DATES[-1]})" in page


def test_the_dbt_project_is_the_feature_sql_and_builds_the_same_rows(sim, make_db):
    """deploy/dbt is what `features dbt` generates from the current code, and its models, rendered as dbt renders
    them and run on the warehouse, give exactly the rows `features build` wrote."""
    from pathlib import Path

    import jinja2

    from ownlens.ml.features import dbt

    project = Path(__file__).parent.parent / "deploy" / "dbt"
    for relative, text in dbt.files().items():
        assert (project / relative).read_text() == text, f"deploy/dbt/{relative} is stale: ownlens-ml features dbt --out deploy/dbt"
    d = FEATURE_DATES[1]
    scratch = make_db(init=False)
    contract = sim.query("SELECT table, name FROM system.columns WHERE database = {db:String} AND name != 'computed_at' ORDER BY table, position",
                         parameters={"db": sim.database}).result_rows
    for name in dbt.MODELS:
        sql = jinja2.Environment().from_string(dbt.model_sql(name)).render(
            var=lambda _: str(d), config=lambda **_: "", source=lambda _, table: f"{sim.database}.{table}",
            ref=lambda model: f"{scratch.database}.{model}")
        scratch.command(f"CREATE TABLE {name} ENGINE = Memory AS {sql}")
        made = [c for (c,) in scratch.query("SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
                                            "AND name != 'computed_at' ORDER BY position", parameters={"db": scratch.database, "t": name}).result_rows]
        assert made == [c for t, c in contract if t == name], name  # the table's own columns, by name: dbt inserts by name
    for table, column, day, key in (("customer_user_features", "feature_date", d, "user_id"),
                                    ("customer_user_labels", "feature_date", d, "user_id"),
                                    ("customer_session_summary_daily", "date", d - timedelta(days=1), "brand_id")):
        columns = scratch.query("SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} "
                                "AND name != 'computed_at' ORDER BY position", parameters={"db": scratch.database, "t": table}).result_rows
        # floats within 1e-9: features build adds a day's sums to the stored state, dbt sums all history at once,
        # and sums in another order differ in the last bits
        same = " AND ".join(f"abs(o.`{c}` - t.`{c}`) <= 1e-9 * greatest(1, abs(o.`{c}`))" if "Float" in kind
                            else f"isNotDistinctFrom(o.`{c}`, t.`{c}`)" for c, kind in columns)
        ours = f"(SELECT * FROM {sim.database}.{table} WHERE {column} = {{day:Date}})"
        rows = sim.command(f"SELECT count() FROM {ours}", parameters={"day": day})
        assert rows > 0 and scratch.command(f"SELECT count() FROM {table}") == rows, table
        differing = sim.command(f"SELECT count() FROM {ours} AS o FULL OUTER JOIN {scratch.database}.{table} AS t ON o.{key} = t.{key} "
                                f"WHERE NOT ({same}) SETTINGS join_use_nulls = 1", parameters={"day": day})
        assert differing == 0, table
