from datetime import date

import numpy as np
import pytest

from ownlens.ml.errors import InvalidInput
from ownlens.ml.simulation import SimulationConfig, simulate
from ownlens.ml.simulation.truth import churn_and_conversion

TINY = SimulationConfig(users=600, days=20, start=date(2026, 3, 2), seed=3)
FINGERPRINT = {
    "customer_events": "event_id, session_id, user_id, event_type, event_timestamp, article_id, revenue",
    "customer_sessions": "session_id, user_id, session_start, total_events, category_ids",
    "editorial_articles": "article_id, title, publish_timestamp",
    "sim_users": "user_id, activity_rate, churned_on",
    "revenue_subscription_events": "subscription_id, user_id, event_date, event_type, plan_code, amount_eur",
    "revenue_payments": "payment_id, user_id, paid_at, kind, amount_eur",
    "marketing_touchpoints": "user_id, touched_at, channel_code, campaign_id",
    "marketing_spend_daily": "spend_date, campaign_id, spend_eur",
}


def _fingerprint(client):
    return {t: client.query(f"SELECT count(), groupBitXor(cityHash64({cols})) FROM {t}").result_rows[0]
            for t, cols in FINGERPRINT.items()}


def test_same_seed_same_data_other_seed_other_data(make_db):
    a, b, c = make_db(), make_db(), make_db()
    simulate(a, TINY)
    simulate(b, TINY)
    simulate(c, SimulationConfig(users=600, days=20, start=date(2026, 3, 2), seed=4))
    assert _fingerprint(a) == _fingerprint(b)
    assert _fingerprint(a)["customer_events"] != _fingerprint(c)["customer_events"]
    assert _fingerprint(a)["customer_events"][0] > 1000


def test_resimulating_replaces_data(make_db):
    client = make_db()
    simulate(client, TINY)
    before = _fingerprint(client)
    simulate(client, TINY)
    assert _fingerprint(client) == before


@pytest.mark.parametrize("kwargs, message", [
    ({"users": 0}, "--users must be at least 1"),
    ({"days": 0}, "--days must be at least 1"),
    ({"drift_at": date(2020, 1, 1)}, "--drift-at must fall inside"),
])
def test_bad_configuration_is_refused_before_writing(make_db, kwargs, message):
    client = make_db()
    with pytest.raises(InvalidInput, match=message):
        simulate(client, SimulationConfig(**{**TINY.__dict__, **kwargs}))
    assert client.command("SELECT count() FROM customer_events") == 0


def test_world_is_realistic(sim):
    events = dict(sim.query("SELECT event_type, count() FROM customer_events GROUP BY event_type").result_rows)
    assert {"page_view", "article_view", "click", "video_play", "newsletter_signup", "subscription",
            "ad_impression", "ad_click", "article_impression"} <= set(events)
    assert 0.005 < events["ad_click"] / events["ad_impression"] < 0.1
    churn, conversion = sim.query(
        "SELECT avg(churned_30d), avg(converted_30d) FROM customer_user_labels WHERE label_window_complete").result_rows[0]
    assert 0.10 <= churn <= 0.35
    assert 0.005 <= conversion <= 0.08
    # new users keep arriving and articles keep being published through the period
    assert sim.command("SELECT uniqExact(toDate(first_day)) FROM sim_users") > 60
    assert sim.command("SELECT uniqExact(toDate(publish_timestamp)) FROM editorial_articles") > 90
    # heavy-tailed activity: the top 10 % of users make a large share of sessions
    top_share = sim.command(
        "SELECT sum(n * (r <= c / 10)) / sum(n) FROM (SELECT count() n, row_number() OVER (ORDER BY count() DESC) r, "
        "count() OVER () c FROM customer_sessions GROUP BY user_id)")
    assert float(top_share) > 0.3


def test_oracle_is_calibrated_on_simulated_labels(sim):
    from conftest import FEATURE_DATES

    from ownlens.ml.models.oracle import ensure_user_truth

    assert ensure_user_truth(sim, FEATURE_DATES)  # built for evaluation only, never by a feature build
    rows = sim.query(
        "SELECT avg(t.churn_probability), avg(l.churned_30d), avg(t.conversion_probability), avg(l.converted_30d), count() "
        "FROM sim_user_truth AS t INNER JOIN customer_user_labels AS l ON l.user_id = t.user_id AND l.feature_date = t.feature_date "
        "WHERE l.label_window_complete").result_rows[0]
    true_churn, seen_churn, true_conv, seen_conv, n = rows
    assert n > 1000
    assert abs(true_churn - seen_churn) < 3 * np.sqrt(seen_churn * (1 - seen_churn) / n) + 0.01
    assert abs(true_conv - seen_conv) < 3 * np.sqrt(seen_conv * (1 - seen_conv) / n) + 0.005


@pytest.mark.parametrize("varying", [False, True], ids=["constant-hazard", "daily-marketing-hazard"])
def test_oracle_formula_matches_monte_carlo(varying):
    rng = np.random.default_rng(0)
    n, horizon = 200_000, 30
    factors = np.array([1.1, 0.9, 1.0, 1.2, 0.8, 1.0, 1.0] * 5)[:horizon]
    activity, fading, a, h = 0.3, 0.1, 0.05, 0.2
    # a campaign flight raises the conversion hazard on some days (as marketing touches do)
    c_days = 0.01 * (1 + 2.0 * ((np.arange(horizon) // 7) % 2)) if varying else np.full(horizon, 0.01)
    # engaged today: each day first maybe fade (after day 0), then fading maybe ends; sessions Poisson; subscriptions force a session
    stage = np.zeros(n, dtype=int)
    any_session = np.zeros(n, dtype=bool)
    converted = np.zeros(n, dtype=bool)
    for k in range(horizon):
        if k > 0:
            to_fade = (stage == 0) & (rng.random(n) < a)
            to_gone = (stage == 1) & (rng.random(n) < h)
            stage[to_fade] = 1
            stage[to_gone] = 2
        rate = np.where(stage == 0, activity, np.where(stage == 1, fading, 0)) * factors[k]
        conv = (stage == 0) & ~converted & (rng.random(n) < c_days[k])
        converted |= conv
        any_session |= (rng.poisson(rate) > 0) | conv
    c = c_days[None, :] if varying else np.array([0.01])
    churn, convert = churn_and_conversion(np.array([0]), activity, fading, a, h, c, factors)
    assert abs(churn[0] - (~any_session).mean()) < 0.005
    assert abs(convert[0] - converted.mean()) < 0.003
