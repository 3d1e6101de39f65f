"""The real-time worker: windows of new events scored once, and a crash mid-pass neither loses nor repeats one."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from ownlens.ml.models.customer.churn import CHURN
from ownlens.ml.models.runs import train
from ownlens.ml.models.scoring import Scorer
from ownlens.ml.serving import worker


@pytest.fixture(scope="module")
def scorer(labelled):
    return Scorer(CHURN, labelled, train(CHURN, labelled, register=False).model)


def _rows(client, name):
    return client.query("SELECT toString(user_id), window_end, events FROM ml_realtime_predictions WHERE worker = {w:String} "
                        "ORDER BY window_end, user_id", parameters={"w": name}).result_rows


def test_crash_between_write_and_commit_loses_and_repeats_nothing(labelled, scorer):
    end = labelled.command("SELECT max(event_timestamp) FROM customer_events")
    from datetime import datetime

    start = datetime.fromisoformat(str(end)).replace(tzinfo=timezone.utc) - timedelta(days=3)
    kw = dict(max_window=timedelta(hours=12))
    for name in ("clean", "crashy"):
        worker.set_watermark(labelled, name, "churn", start)
    clean = worker.run(labelled, CHURN, scorer, "clean", once=True, **kw)
    assert len(clean) == 6 and sum(p.users for p in clean) > 100  # three days in 12-hour windows

    worker.run_pass(labelled, CHURN, scorer, "crashy", **kw)
    with pytest.raises(RuntimeError, match="simulated crash"):
        worker.run_pass(labelled, CHURN, scorer, "crashy", fail_before_commit=True, **kw)
    assert worker.watermark(labelled, "crashy") == clean[0].window_end  # not advanced past the failed window
    worker.run(labelled, CHURN, scorer, "crashy", once=True, **kw)

    assert _rows(labelled, "crashy") == _rows(labelled, "clean")
    n, unique = labelled.query("SELECT count(), uniqExact(user_id, window_end) FROM ml_realtime_predictions "
                               "WHERE worker = 'crashy'").result_rows[0]
    assert n == unique > 0
    assert worker.watermark(labelled, "crashy") == worker.watermark(labelled, "clean") == clean[-1].window_end
    assert worker.run_pass(labelled, CHURN, scorer, "crashy", **kw) is None  # caught up


def test_a_routing_function_scores_each_user_with_the_scorer_it_picks(labelled, scorer):
    from datetime import datetime

    from ownlens.ml.models.trained import TrainedModel
    from ownlens.ml.registry.abtests import variant

    m = scorer.model
    other = Scorer(CHURN, labelled, TrainedModel(m.spec_name, m.task, m.features, m.encoder, m.estimator, {"model_version": "9.9.9"}))
    end = datetime.fromisoformat(str(labelled.command("SELECT max(event_timestamp) FROM customer_events"))).replace(tzinfo=timezone.utc)
    worker.set_watermark(labelled, "routed", "churn", end - timedelta(days=1))
    route = lambda user: other if variant("t-worker", user, 0.5) == "B" else scorer  # noqa: E731
    passes = worker.run(labelled, CHURN, route, "routed", once=True, max_window=timedelta(days=1))
    rows = labelled.query("SELECT toString(user_id), model_version FROM ml_realtime_predictions WHERE worker = 'routed'").result_rows
    assert passes and len(rows) == sum(p.scored for p in passes) > 20
    assert all(v == ("9.9.9" if variant("t-worker", u, 0.5) == "B" else "unregistered") for u, v in rows)
    assert {v for _, v in rows} == {"9.9.9", "unregistered"}
