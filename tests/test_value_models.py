"""Seed 004's value and marketing models on the small test simulation: attribution judged against the conversions
each channel truly caused, customer value against a holdout; stored, served by the CLI and the API, with clear errors."""

import json

import pytest
from conftest import FEATURE_DATES
from test_cli import in_process

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import get
from ownlens.ml.models.marketing import campaigns
from ownlens.ml.models.runs import train

D = FEATURE_DATES[1]


def test_attribution_is_judged_against_the_true_causes_and_its_budget_split_against_the_true_curves(trained):
    result = trained["attribution"]
    m, oracle = result.metrics, result.oracle_metrics
    # every method is scored on the same held-out month, after the months the touch model learnt from
    assert result.split["train_dates"][1] < result.split["test_dates"][0] and result.split["test_conversions"] > 50
    assert {f"{rule}_accuracy" for rule in campaigns.RULES} <= set(m)
    assert m["attribution_accuracy"] >= 0.75 and oracle["attribution_accuracy"] >= m["attribution_accuracy"] - 0.02, (m, oracle)
    assert m["rank_correlation"] >= 0.6, m
    # the recommended split beats an equal split and the split actually spent, judged under the true response curves
    assert m["budget_regret_share"] < m["equal_split_regret_share"] and m["budget_regret_share"] < m["actual_split_regret_share"], m


def test_every_method_credits_exactly_the_conversions_it_is_given(trained):
    scored = trained["attribution"].test
    table, test = scored.table, scored.test
    touched = int(test.journeys["converted_on"].notna().sum())
    for rule in campaigns.RULES:  # the credit rules share the conversions of the journeys with touches
        assert table[f"conversions_{rule}"].sum() == pytest.approx(touched, rel=1e-6), rule
    # the incremental credit shares every prospect's conversion between organic and the channels
    assert table["conversions"].sum() == pytest.approx(test.frame["conversions"].sum(), rel=1e-6)
    assert (table.loc[table["channel_code"] != "organic", "conversions_per_touch"] >= 0).all()


def test_a_batch_is_stored_per_channel_replaced_on_rerun_and_judged_once_known(trained, labelled):
    model = get("attribution")
    version = trained["attribution"].model
    first = model.predict_batch(labelled, version, D)
    second = model.predict_batch(labelled, version, D)
    rows = labelled.query("SELECT count(), uniqExact(channel_code), sum(conversions), sum(recommended_spend_eur) "
                          "FROM marketing_channel_attribution WHERE prediction_date = {d:Date}", parameters={"d": D}).result_rows[0]
    channels = labelled.command("SELECT count() FROM marketing_channels")
    assert first["rows"] == second["rows"] == rows[0] == rows[1] == channels + 1  # + organic
    assert rows[2] == pytest.approx(first["conversions"], abs=0.1) and rows[3] == pytest.approx(first["daily_budget_eur"], rel=0.01)
    assert D in model.stored_dates(labelled)
    # each campaign's part: its channel's conversions split by touches, the recommendation among the live ones
    per_channel = labelled.query("""SELECT c.channel_code, sum(c.conversions), any(a.conversions), sum(c.recommended_spend_eur),
                                           any(a.recommended_spend_eur), max(c.live_at_end), sum(c.touches), count()
                                    FROM marketing_campaign_attribution AS c INNER JOIN marketing_channel_attribution AS a
                                    ON a.prediction_date = c.prediction_date AND a.channel_code = c.channel_code
                                    WHERE c.prediction_date = {d:Date} GROUP BY c.channel_code""", parameters={"d": D}).result_rows
    assert per_channel and sum(r[7] for r in per_channel) == labelled.command(
        "SELECT count() FROM marketing_campaigns WHERE start_date < {d:Date} AND end_date >= {d:Date} - 30", parameters={"d": D})
    for channel, conversions, channel_conversions, recommended, channel_recommended, live, touches, _ in per_channel:
        assert conversions == pytest.approx(channel_conversions if touches else 0, abs=1e-6), channel
        assert recommended == pytest.approx(channel_recommended if live else 0, abs=1e-6), channel
    realised = model.realised(labelled, D)
    assert 0 <= realised["attribution_accuracy"] <= 1 and realised["paid_conversions_true"] > 0


def test_bad_requests_get_clear_errors(trained, labelled):
    model = get("attribution")
    with pytest.raises(InvalidInput, match="every brand"):
        train(model, labelled, register=False, brand_id="DCH")
    with pytest.raises(InvalidInput, match="at least 14 days after the first touchpoint"):
        train(model, labelled, register=False, test_date="2026-01-06")
    server = model.server(labelled, trained["attribution"].model)
    with pytest.raises(NotFound, match="touchpoints cover"):
        server.records(["paid_search"], "2025-06-01")
    records, unknown = server.records(["paid_search", "no_such_channel"], D)
    assert [r["channel_code"] for r in records] == ["paid_search"] and unknown == ["no_such_channel"]


def test_the_attribution_command_and_route(trained, labelled, warehouse_path, capsys, monkeypatch):
    from fastapi.testclient import TestClient

    from ownlens.ml.registry import store
    from ownlens.ml.serving.app import create_app
    from ownlens.ml.settings import Settings

    store.promote(labelled, "attribution", trained["attribution"].model.version)
    cli = in_process(f"chdb://{warehouse_path}?database={labelled.database}", capsys, monkeypatch)
    shown = cli(["attribution", "--date", str(D), "--budget", "500", "--json"])
    assert shown.returncode == 0, shown.stderr
    records = {r["channel_code"]: r for r in json.loads(shown.stdout)["attribution"]}
    assert "organic" in records and "paid_search" in records
    assert sum(r["recommended_spend_eur"] for r in records.values()) == pytest.approx(500, rel=1e-6)
    assert cli(["attribution", "--date", "2025-01-01"]).returncode == NotFound.exit_code
    shown = cli(["attribution", "--date", str(D), "--budget", "500", "--campaigns", "--json"])
    campaigns = json.loads(shown.stdout)["campaigns"]
    assert shown.returncode == 0 and campaigns and {"campaign_id", "campaign_name", "conversions", "recommended_spend_eur"} <= set(campaigns[0])
    assert sum(c["recommended_spend_eur"] for c in campaigns) <= 500 + 1e-6
    with TestClient(create_app(Settings(api_keys=None), labelled)) as http:
        got = http.get("/predict/attribution/paid_search", params={"feature_date": str(D), "days": 30})
        assert got.status_code == 200 and got.json()["predictions"][0]["conversions"] >= 0
        assert http.get("/predict/attribution/paid_search", params={"feature_date": str(D), "days": 3}).status_code == 422
        assert http.get("/predict/attribution/not a code!").status_code in (404, 422)
        posted = http.post("/predict/attribution", json={"channel_codes": ["email", "nope"], "feature_date": str(D)})
        assert posted.status_code == 200 and posted.json()["unknown"] == ["nope"]


def test_customer_value_beats_last_period_repeats_on_the_holdout(trained):
    result = trained["clv"]
    m, oracle = result.metrics, result.oracle_metrics
    assert result.split["holdout_days"] >= 28 and m["customers"] > 100 and m["subscriptions"] > 30
    # validated after the cutoff only, against what customers then bought and paid
    assert result.model.info["split"]["train_dates"][1] < result.split["test_dates"][0]
    for level in ("revenue_cohort_mape", "revenue_total_mape", "purchase_cohort_mape"):
        assert m[level] < m[f"baseline_{level}"], (level, m)
    for level in ("revenue_customer_r2", "revenue_cohort_r2"):
        assert m[level] > m[f"baseline_{level}"], (level, m)
    assert m["revenue_cohort_r2"] > 0.5 and oracle["revenue_customer_r2"] >= m["revenue_customer_r2"] - 0.05, (m, oracle)


def test_the_cohort_revenue_forecast_is_judged_on_the_same_holdout(trained, labelled):
    """Prophet over each cohort's daily revenue before the cutoff, against what the cohort paid after it; a cohort too
    young for a trend is counted, not scored; the forecast's total is the holdout's total of the warehouse's rows."""
    import pandas as pd

    from ownlens.ml.models.customer import revenue_forecast, value_data
    from ownlens.ml.models.operations import forecast

    m = trained["clv"].metrics
    assert m["prophet_cohorts"] > 0 and m["prophet_revenue_cohort_mape"] >= 0 and m["prophet_revenue_total_mape"] >= 0
    cutoff, days = pd.Timestamp(trained["clv"].split["test_date"]).date(), trained["clv"].split["holdout_days"]
    cohorts = revenue_forecast.cohort_forecast(value_data.cohort_revenue(labelled, cutoff, days), cutoff, days,
                                               forecast.seasonal_naive("7D"))
    paid = labelled.command("""SELECT sum(amount_eur) FROM revenue_payments WHERE paid_at >= {c:Date} AND paid_at < {c:Date} + {n:UInt16}
                               AND user_id IN (SELECT user_id FROM revenue_payments GROUP BY user_id HAVING min(paid_at) < {c:Date})""",
                            parameters={"c": cutoff, "n": days})
    assert cohorts["actual"].sum() == pytest.approx(float(paid))
    assert len(cohorts) == m["prophet_cohorts"] + m["prophet_young_cohorts"] and (cohorts["predicted"] >= 0).all()


def test_customer_value_is_stored_per_customer_and_served(trained, labelled):
    model, version = get("clv"), trained["clv"].model
    first = model.predict_batch(labelled, version, D)
    second = model.predict_batch(labelled, version, D)
    rows = labelled.query("SELECT count(), uniqExact(user_id), countIf(subscribed), min(clv_eur), "
                          "countIf(abs(clv_eur - expected_purchase_revenue_eur - expected_subscription_revenue_eur) > 1e-6) "
                          "FROM customer_lifetime_value WHERE prediction_date = {d:Date}", parameters={"d": D}).result_rows[0]
    assert first["rows"] == second["rows"] == rows[0] == rows[1] > 100 and rows[2] > 0 and rows[3] >= 0 and rows[4] == 0
    assert model.realised(labelled, D) is None  # a year's value is not known yet
    # a customer with one purchase only still gets a value; an unknown user is listed as unknown
    single = labelled.command("SELECT toString(user_id) FROM revenue_payments WHERE kind = 'purchase' AND paid_at < {d:Date} "
                              "GROUP BY user_id HAVING count() = 1 ORDER BY user_id LIMIT 1", parameters={"d": D})
    records, unknown = model.server(labelled, version).records([single, "00000000-0000-4000-8000-000000000000"], D, horizon_days=90)
    assert len(records) == 1 and records[0]["expected_purchases"] > 0 and records[0]["horizon_days"] == 90
    assert unknown == ["00000000-0000-4000-8000-000000000000"]
    with pytest.raises(InvalidInput, match="needs at least 90 days of them"):
        train(get("clv"), labelled, register=False, test_date="2025-02-01")
    with pytest.raises(InvalidInput, match="at least 90 days after the first payment"):
        train(get("clv"), labelled, register=False, test_date="2024-01-20")


def test_a_paused_channel_and_a_new_one_leave_the_others_attributed(trained, labelled, make_db):
    """A channel with no spend in the period gets no curve and no recommendation; one the version never saw counts as
    no touch; neither stops the others."""
    from conftest import copy_of

    client = copy_of(labelled, make_db)
    client.command("ALTER TABLE marketing_touchpoints UPDATE channel_code = 'tv' WHERE channel_code = 'podcast' SETTINGS mutations_sync = 1")
    client.command("ALTER TABLE marketing_spend_daily DELETE WHERE channel_code = 'email' SETTINGS mutations_sync = 1")
    client.command("INSERT INTO marketing_channels VALUES ('tv', 'Television')")
    records, unknown = get("attribution").server(client, trained["attribution"].model).records(["email", "tv", "paid_search"], D)
    by = {r["channel_code"]: r for r in records}
    assert unknown == ["tv"] and by["email"]["recommended_spend_eur"] == 0 and by["email"]["spend_eur"] == 0
    assert by["paid_search"]["recommended_spend_eur"] > 0
