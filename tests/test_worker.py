"""The real-time worker: windows of new events scored once, and a crash mid-pass neither loses nor repeats one."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from ownlens.ml.models.customer.churn import CHURN
from ownlens.ml.models.prediction import Scorer
from ownlens.ml.models.training import train
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
