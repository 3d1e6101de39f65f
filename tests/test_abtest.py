"""A/B tests: stable assignment (the same in Python and SQL), outcomes, significance, the recorded winner."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import FEATURE_DATES, copy_of

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models.customer.churn import CHURN
from ownlens.ml.models.runs import train
from ownlens.ml.monitoring import abtest


@pytest.fixture(scope="module")
def versions(labelled, trained):
    good = trained["churn"].model.version
    weak = train(CHURN, labelled, algorithm="logistic", params={}).model.version
    return good, weak


def test_assignment_is_stable_and_the_same_in_sql(labelled):
    rows = labelled.query(
        f"SELECT toString(user_id), {abtest.VARIANT_SQL} FROM customer_user_features WHERE feature_date = {{d:Date}} LIMIT 500",
        parameters={"test": "t-123", "split": 0.3, "d": FEATURE_DATES[0]}).result_rows
    assert all(abtest.variant("t-123", user, 0.3) == arm for user, arm in rows)
    share_b = sum(arm == "B" for _, arm in rows) / len(rows)
    assert 0.22 < share_b < 0.38


def test_create_status_conclude(labelled, versions):
    good, weak = versions
    abtest.create(labelled, "churn-ab", "churn", weak, good, split=0.5, start=FEATURE_DATES[0])
    with pytest.raises(InvalidInput, match="already running"):
        abtest.create(labelled, "churn-ab", "churn", weak, good)
    running, results = abtest.status(labelled, "churn-ab")
    # both versions learnt from the first date's 30 days of outcomes: only the second is read out
    assert running.status == "running" and results["dates"] == [str(FEATURE_DATES[1])]
    assert list(results["excluded_dates"]) == [str(FEATURE_DATES[0])]
    arms = results["arms"]
    assert arms["A"]["version"] == weak and arms["B"]["version"] == good
    assert abs(arms["A"]["users"] - arms["B"]["users"]) < 0.2 * (arms["A"]["users"] + arms["B"]["users"])
    t = results["test"]
    assert t["enough_data"] and 0 < t["minimum_detectable_effect"] < 0.2
    assert 0 <= t["p_value"] <= 1 and t["prob_a_best"] + t["prob_b_best"] == pytest.approx(1)
    assert (t["prob_b_best"] > 0.5) == (t["lift"] > 0)
    final = abtest.conclude(labelled, "churn-ab")
    assert final.status == "concluded" and final.winner in {"A", "B", "none"}
    assert final.winner == ("none" if t["p_value"] >= 0.05 else ("B" if t["lift"] > 0 else "A"))
    assert abtest.get(labelled, "churn-ab").winner == final.winner
    with pytest.raises(InvalidInput, match="already concluded"):
        abtest.conclude(labelled, "churn-ab")


def test_a_readout_is_stored_and_recomputed_only_when_its_data_changes(labelled, versions, make_db):
    import time

    from ownlens.ml.registry import store

    good, weak = versions
    client = copy_of(labelled, make_db)
    abtest.create(client, "churn-kept", "churn", weak, good, split=0.5, start=FEATURE_DATES[0])
    time.sleep(1.1)  # the copy's parts were written this second: a readout computed in it counts as outdated once
    first = abtest.readout(client, "churn-kept")
    assert first[2] and first[1]["test"]["verdict"]  # computed (and stored) the first time
    again = abtest.readout(client, "churn-kept")
    assert not again[2] and again[1]["test"]["verdict"] == first[1]["test"]["verdict"]  # then read back
    assert abtest.refresh_running(client) == []  # nothing it reads changed
    time.sleep(1.1)
    store.promote(client, "churn", weak)  # the registry is one of the tables a readout reads
    time.sleep(1.1)
    assert abtest.refresh_running(client) == ["churn-kept"]
    assert not abtest.readout(client, "churn-kept")[2]
    assert abtest.readout(client, "churn-kept", refresh=True)[2]  # the console's "recompute"
    abtest.conclude(client, "churn-kept")
    assert abtest.refresh_running(client) == [] and not abtest.readout(client, "churn-kept")[2]


def test_bad_tests_are_refused(labelled, versions):
    good, _ = versions
    with pytest.raises(NotFound, match="has no version '9.9.9'"):
        abtest.create(labelled, "x", "churn", good, "9.9.9")
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        abtest.create(labelled, "x", "churn", good, "9.9.9", split=1.5)
    with pytest.raises(NotFound, match="no A/B test named 'nope'"):
        abtest.status(labelled, "nope")


def test_batch_predictions_follow_the_arms_of_a_running_test(labelled, versions):
    from ownlens.ml.models.scoring import predict_batch
    from ownlens.ml.models.trained import load

    good, weak = versions
    test = abtest.create(labelled, "batch-ab", "churn", good, weak, split=0.3)
    d = FEATURE_DATES[1]
    for _ in range(2):  # a re-run replaces
        result = predict_batch(CHURN, labelled, load(labelled, "churn", good), d, ab_test=test)
    assert result["version"] == f"{good} | {weak}"
    rows = labelled.query("SELECT toString(user_id), model_version FROM customer_churn_predictions WHERE prediction_date = {d:Date}",
                          parameters={"d": d}).result_rows
    assert len(rows) == result["rows"] == len({u for u, _ in rows})
    assert all(v == (weak if abtest.variant(test.test_id, u, 0.3) == "B" else good) for u, v in rows)
    assert 0.2 < sum(v == weak for _, v in rows) / len(rows) < 0.4
    stored = labelled.query("SELECT model_version, count() FROM ml_model_predictions WHERE model_name = 'churn' "
                            "AND prediction_date = {d:Date} GROUP BY model_version", parameters={"d": d}).result_rows
    assert dict(stored) == {v: sum(x == v for _, x in rows) for v in (good, weak)}
    abtest.conclude(labelled, "batch-ab")


def test_readout_only_on_unseen_labelled_dates_each_user_once(sim, make_db):
    """A version is never scored on a date it learnt from (today's bug: 'B wins' from a training date), a user on two
    dates counts once, and a test without such dates says there is not enough data yet instead of a winner."""
    from ownlens.ml.features.build import build_features
    from ownlens.ml.models.rows import training_frame

    client = copy_of(sim, make_db)
    extra = date(2026, 2, 27)  # a second date after both versions' training outcomes, its labels complete
    build_features(client, extra)
    first, second = FEATURE_DATES
    a = train(CHURN, client, train_dates=[first], test_date=second).model.version
    b = train(CHURN, client, algorithm="logistic", params={}, train_dates=[first], test_date=second).model.version
    late = train(CHURN, client, feature_date=second).model.version  # a random split of the second date: learnt from it
    abtest.create(client, "unseen", "churn", a, b, start=first)
    results = abtest.analyse(client, "unseen")
    assert results["dates"] == [str(second), str(extra)]
    users = training_frame(client, CHURN, [second, extra])["user_id"]
    assert len(users) > users.nunique()  # users on both dates...
    assert sum(arm["users"] for arm in results["arms"].values()) == users.nunique()  # ...are counted once
    assert results["test"]["enough_data"]

    # B learnt from the outcomes of the 30 days after the second date, which overlap the labels of both dates
    abtest.create(client, "too-soon", "churn", a, late, start=first)
    empty = abtest.analyse(client, "too-soon")
    assert empty["dates"] == [] and empty["arms"] == {} and not empty["test"]["enough_data"]
    assert "learnt from by B" in empty["excluded_dates"][str(second)] and "learnt from by B" in empty["excluded_dates"][str(extra)]
    assert "learnt from by A" in empty["excluded_dates"][str(first)]
    assert empty["test"]["verdict"].startswith("not enough data yet")
    assert abtest.conclude(client, "too-soon").winner == "none"


def test_small_arms_are_not_enough_data_and_the_detectable_effect_shrinks_with_users():
    small = abtest.two_proportions(30, 50, 45, 50)
    assert not small["enough_data"] and "not enough data yet" in small["verdict"]
    big = abtest.two_proportions(3_000, 5_000, 3_050, 5_000)
    bigger = abtest.two_proportions(12_000, 20_000, 12_200, 20_000)
    assert big["enough_data"] and bigger["minimum_detectable_effect"] == pytest.approx(big["minimum_detectable_effect"] / 2, rel=0.02)
    # a difference smaller than the detectable effect is no winner: the verdict says what the test could have seen
    assert big["p_value"] > 0.05 and "detects a difference of 0.0" in big["verdict"]
