"""Drift detection in ClickHouse: an injected shift is caught, an unshifted week is not; the same shift gets the same
decision at any sample size; a reference too young for an input is not used for it; statistics match scipy."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from conftest import FEATURE_DATES, SMALL, copy_of
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ownlens.ml.features.build import build_features
from ownlens.ml.models.customer.churn import CHURN
from ownlens.ml.monitoring.drift import feature_drift
from ownlens.ml.monitoring.monitor import monitor
from ownlens.ml.simulation import simulate

BEFORE, AFTER = date(2026, 2, 23), date(2026, 3, 9)  # two weeks apart; the drift below starts in between
WINDOWED = [("sessions_last_7d", "sessions_last_7d", "numeric"), ("active_days_last_30d", "active_days_last_30d", "numeric"),
            ("preferred_device_type_id", "preferred_device_type_id", "categorical")]


@pytest.fixture(scope="module")
def drifted(make_db):
    client = make_db()
    simulate(client, replace(SMALL, drift_at=date(2026, 3, 1)))
    for d in (BEFORE, AFTER):
        build_features(client, d)
    return client


@pytest.fixture(scope="module")
def steady(sim, make_db):
    client = copy_of(sim, make_db)  # the same publisher without the drift
    for d in (BEFORE, AFTER):
        build_features(client, d)
    return client


def test_injected_shift_is_detected_and_steady_data_is_not(drifted, steady):
    shifted = {d.name: d for d in feature_drift(drifted, "customer_user_features", WINDOWED, BEFORE, AFTER)}
    calm = {d.name: d for d in feature_drift(steady, "customer_user_features", WINDOWED, BEFORE, AFTER)}
    assert shifted["sessions_last_7d"].status in ("warning", "alert"), shifted
    assert calm["sessions_last_7d"].status == "ok", calm
    assert shifted["sessions_last_7d"].psi > 3 * calm["sessions_last_7d"].psi
    assert shifted["sessions_last_7d"].ks_statistic > 2 * calm["sessions_last_7d"].ks_statistic
    assert shifted["sessions_last_7d"].wasserstein > 3 * calm["sessions_last_7d"].wasserstein
    assert calm["preferred_device_type_id"].status == "ok"
    # the whole model: the drifted publisher alerts, the steady one does not
    assert monitor(drifted, CHURN, AFTER, BEFORE).alerts
    assert not monitor(steady, CHURN, AFTER, BEFORE).alerts


def test_drift_statistics_match_an_independent_computation(drifted):
    [d] = feature_drift(drifted, "customer_user_features", WINDOWED[:1], BEFORE, AFTER)
    values = {day: np.array([r[0] for r in drifted.query(
        "SELECT toFloat64(sessions_last_7d) FROM customer_user_features WHERE feature_date = {d:Date}",
        parameters={"d": day}).result_rows]) for day in (BEFORE, AFTER)}
    ks = stats.ks_2samp(values[BEFORE], values[AFTER])
    assert d.ks_statistic == pytest.approx(ks.statistic, abs=1e-9)
    edges = np.quantile(values[BEFORE], np.arange(0.1, 1.0, 0.1), method="inverted_cdf")
    bins = lambda v: np.bincount((v[:, None] > edges[None, :]).sum(1), minlength=10) / len(v)
    r, c = bins(values[BEFORE]), bins(values[AFTER])
    psi = np.sum((c - r) * np.log((c + 1e-4) / (r + 1e-4)))
    js = jensenshannon(r, c) ** 2  # scipy returns the distance: the square root of the divergence
    assert d.psi == pytest.approx(psi, rel=1e-6) and d.js == pytest.approx(js, rel=1e-6)
    w = stats.wasserstein_distance(values[BEFORE], values[AFTER]) / values[BEFORE].std()
    assert d.wasserstein == pytest.approx(w, rel=1e-9)


def test_monitor_writes_rows_once_per_date(drifted):
    first = monitor(drifted, CHURN, AFTER, BEFORE)
    again = monitor(drifted, CHURN, AFTER, BEFORE)
    flagged = {d.name: d.status for d in first.drift if d.status != "ok"}
    assert flagged and flagged == {d.name: d.status for d in again.drift if d.status != "ok"}
    assert flagged.get("days_since_first_session") in (None, "trend", "skipped")  # tenure grows by itself: never an alert
    rows = drifted.query("SELECT count(), uniqExact(feature_name) FROM ml_model_monitoring WHERE model_name = 'churn' "
                         "AND monitoring_date = {d:Date} AND monitor_type = 'feature_drift'", parameters={"d": AFTER}).result_rows[0]
    assert rows[0] == rows[1] == len(CHURN.features.columns)


def test_a_model_can_set_its_own_drift_thresholds(steady):
    from ownlens.ml.monitoring.drift import Thresholds

    strict = replace(CHURN, input_thresholds=Thresholds(wasserstein_warn=0.0, wasserstein_alert=0.0, psi_warn=0.0, psi_alert=0.0))
    default = {d.name: d.status for d in monitor(steady, CHURN, AFTER, BEFORE).drift}
    report = monitor(steady, strict, AFTER, BEFORE)
    assert "alert" not in default.values()  # steady data: nothing alerts by default
    compared = [d for d in report.drift if not d.skipped]
    assert {d.status for d in compared if d.name not in CHURN.features.trending} == {"alert"}  # everything does at 0
    assert {d.status for d in compared if d.name in CHURN.features.trending} <= {"trend"}


def test_monitor_rejects_bad_dates(steady):
    from ownlens.ml.errors import InvalidInput, NotFound

    with pytest.raises(InvalidInput, match="must be before"):
        monitor(steady, CHURN, BEFORE, AFTER)
    with pytest.raises(NotFound, match="no features for 2026-03-02"):
        monitor(steady, CHURN, date(2026, 3, 2), BEFORE)


def test_realised_performance_of_stored_predictions(labelled):
    from ownlens.ml.models.runs import train
    from ownlens.ml.models.scoring import predict_batch

    result = train(CHURN, labelled)
    scored = predict_batch(CHURN, labelled, result.model, FEATURE_DATES[1])
    report = monitor(labelled, CHURN, FEATURE_DATES[1], FEATURE_DATES[0])
    perf = report.performance
    assert perf["rows"] == scored["rows"]
    assert perf["roc_auc"] == pytest.approx(result.metrics["roc_auc"], abs=0.02)  # the same users and labels as the test split
    assert abs(perf["mean_prediction"] - perf["observed_rate"]) < 0.05
    stored = labelled.query("SELECT metric_value FROM ml_model_monitoring WHERE model_name = 'churn' AND monitor_type = 'performance' "
                            "AND metric_name = 'roc_auc' AND monitoring_date = {d:Date}", parameters={"d": FEATURE_DATES[1]}).result_rows
    assert stored == [(pytest.approx(perf["roc_auc"]),)]


def test_scheduled_pass_covers_the_latest_date_and_completed_labels_once(labelled):
    from ownlens.ml.models.runs import train
    from ownlens.ml.models.scoring import predict_batch
    from ownlens.ml.pipelines.monitoring import scheduled_pass

    model = train(CHURN, labelled).model
    predict_batch(CHURN, labelled, model, FEATURE_DATES[0])
    labelled.command("DELETE FROM ml_model_monitoring WHERE model_name = 'churn'")
    done: set = set()
    reports = {(r.model, r.current): r for r in scheduled_pass(labelled, done)}
    latest = max(FEATURE_DATES)
    assert reports[("churn", latest)].drift  # drift on the newest features
    first = reports[("churn", FEATURE_DATES[0])]  # labels complete, predictions stored: realised performance
    assert first.reference is None and not first.drift and first.performance["rows"] > 0
    assert scheduled_pass(labelled, done) == []  # nothing new: nothing redone
    stored = labelled.query("SELECT monitoring_date, countIf(monitor_type = 'performance') FROM ml_model_monitoring "
                            "WHERE model_name = 'churn' GROUP BY monitoring_date ORDER BY monitoring_date").result_rows
    assert stored[0] == (FEATURE_DATES[0], len(first.performance))


def test_thresholds_inputs_predictions_and_trending_inputs():
    from ownlens.ml.monitoring.drift import PREDICTION_THRESHOLDS, Drift

    shift = dict(name="x", kind="numeric", psi=0.06, js=0.01, ks_statistic=0.12, ks_p_value=1e-6, reference_rows=5000,
                 current_rows=5000, wasserstein=0.12)
    assert Drift(**shift).status == "warning"  # an input: 0.12 sd of Wasserstein distance warns
    assert Drift(**shift, thresholds=PREDICTION_THRESHOLDS).status == "alert"  # predictions: the same shift alerts
    assert Drift(**(shift | {"wasserstein": 0.3}), trending=True).status == "trend"
    assert Drift(**(shift | {"psi": 0.9, "ks_statistic": 0.5})).status == "warning"  # numbers: only the distance decides
    assert Drift(**(shift | {"kind": "categorical", "wasserstein": None, "psi": 0.3})).status == "alert"  # categories: PSI
    assert Drift(**shift, skipped="the reference holds one value only").status == "skipped"


def test_alerts_can_retrain_a_challenger_promoted_only_if_at_least_as_good(labelled):
    from ownlens.ml.models import metrics as M
    from ownlens.ml.models.runs import train
    from ownlens.ml.models.trained import load
    from ownlens.ml.monitoring.drift import Drift
    from ownlens.ml.monitoring.monitor import MonitoringReport
    from ownlens.ml.pipelines.monitoring import retrain_on_alert
    from ownlens.ml.registry import store

    weak = train(CHURN, labelled, algorithm="logistic", params={}, limit=300).model.version
    store.promote(labelled, "churn", weak)
    quiet = MonitoringReport("churn", weak, FEATURE_DATES[1], [FEATURE_DATES[0]])
    assert retrain_on_alert(labelled, CHURN, quiet) is None  # no alert, no training
    shifted = Drift("sessions_last_7d", "numeric", 0.6, 0.1, 0.3, 1e-9, 1000, 1000, wasserstein=0.5)
    duel = retrain_on_alert(labelled, CHURN, MonitoringReport("churn", weak, FEATURE_DATES[1], [FEATURE_DATES[0]], drift=[shifted]))
    assert duel["production_version"] == weak and duel["metric"] == "roc_auc"
    assert duel["new"] > duel["production"]  # full XGBoost beats a 300-row logistic regression...
    assert duel["promoted"] and store.get(labelled, "churn", "production")["model_version"] == duel["version"]
    # ...on the very rows the challenger was tested on: the weak model scored again there gives the same number
    from ownlens.ml.models.rows import training_frame

    rows = training_frame(labelled, CHURN, [FEATURE_DATES[1]])
    again = M.compute("binary", rows["label"], load(labelled, "churn", weak).predict_values(rows))["roc_auc"]
    assert again == pytest.approx(duel["production"])
    from ownlens.ml.pipelines.promotion import retrain

    _, worse = retrain(CHURN, labelled, algorithm="logistic", params={}, limit=300)  # a weak challenger stays a candidate
    assert not worse["promoted"] and worse["new"] < worse["production"]
    assert store.get(labelled, "churn", "production")["model_version"] == duel["version"]


@pytest.mark.parametrize("current, expected", [
    ("randNormal(0.5, 1)", "alert"),  # the mean moves half a standard deviation
    ("randNormal(0, 1)", "ok"),
    ("exp(randNormal(0, 1.25))", "alert"),  # a log-normal's spread grows, its median stays (Evidently catches it)
])
def test_the_same_shift_gets_the_same_decision_at_any_sample_size(db, current, expected):
    from ownlens.ml.monitoring.drift import column_drift

    reference = "exp(randNormal(0, 1))" if current.startswith("exp") else "randNormal(0, 1)"
    decisions = {}
    for rows in (100_000, 1_000_000):
        db.command("DROP TABLE IF EXISTS sample")
        db.command(f"CREATE TABLE sample ENGINE = MergeTree ORDER BY tuple() AS SELECT toFloat64({reference}) AS v, 1 AS is_ref "
                   f"FROM numbers({rows}) UNION ALL SELECT toFloat64({current}), 0 FROM numbers({rows})")
        decisions[rows] = column_drift(db, "SELECT v, is_ref = 1 AS is_ref FROM sample", {}, "v", "numeric")
    assert {d.status for d in decisions.values()} == {expected}, decisions
    small, big = decisions.values()
    assert small.wasserstein == pytest.approx(big.wasserstein, abs=0.02)  # the statistic does not move with the sample


def test_a_reference_too_young_for_an_input_is_not_used_for_it(drifted):
    """A reference 21 days after the data starts has not filled any 30-day window: comparing with it would alert on
    every windowed input of a steady publisher. Those inputs are skipped, named, and never alerted."""
    young = date(2026, 1, 26)
    build_features(drifted, young)
    report = monitor(drifted, CHURN, BEFORE, young)
    assert report.drift and {d.status for d in report.drift} == {"skipped"} and not report.alerts
    assert "days of data before them" in report.drift[0].skipped
    # 49 days of history: the 30-day windows are compared, not the 30-60-day one, nor whole-history summaries
    older = {d.name: d for d in monitor(drifted, CHURN, AFTER, BEFORE).drift}
    assert older["sessions_prev_30d"].status == "skipped" and "60 days" in older["sessions_prev_30d"].skipped
    assert older["avg_session_duration_sec"].status == "skipped"
    assert not older["sessions_last_7d"].skipped and not older["activity_trend"].skipped
    stored = drifted.query("SELECT status, count() FROM ml_model_monitoring WHERE model_name = 'churn' AND monitoring_date = {d:Date} "
                           "AND monitor_type = 'feature_drift' GROUP BY status", parameters={"d": BEFORE}).result_rows
    assert dict(stored) == {"skipped": len(CHURN.features.columns)}


def test_every_path_compares_with_the_production_versions_training_data(drifted):
    """`monitor`, the demo's run and `serve`'s schedule give a date the same alerts: all compare with the dates the
    production version learnt from."""
    from ownlens.ml.models.runs import train
    from ownlens.ml.pipelines.monitoring import scheduled_pass
    from ownlens.ml.registry import store

    version = train(CHURN, drifted, feature_date=BEFORE).model.version  # learnt from BEFORE
    store.promote(drifted, "churn", version)
    default = monitor(drifted, CHURN, AFTER)
    assert default.references == [BEFORE] and default.alerts
    assert default.alerts == monitor(drifted, CHURN, AFTER, BEFORE).alerts
    [scheduled] = [r for r in scheduled_pass(drifted, set()) if r.model == "churn" and r.current == AFTER]
    assert scheduled.references == [BEFORE] and scheduled.alerts == default.alerts


def test_the_drift_report_shows_each_input_against_the_reference_and_over_time(drifted, tmp_path):
    from ownlens.ml.monitoring.drift import column_values, distribution
    from ownlens.ml.monitoring.report import summary, write_drift_report

    report = monitor(drifted, CHURN, AFTER, BEFORE)
    table = summary(report)
    compared = [d for d in report.drift if not d.skipped]
    assert len(table) == len(report.drift) + (report.prediction_drift is not None)
    assert table.iloc[0]["column"] == (report.prediction_drift.name if report.prediction_drift else max(compared, key=lambda d: d.size).name)
    # the distributions shown are the ones PSI compares: ten shares a side, summing to one, from ClickHouse
    params = {"refs": [BEFORE], "cur": AFTER, "table": "customer_user_features", "date_column": "feature_date"}
    bins = distribution(drifted, column_values("sessions_last_7d", "numeric"), params, "numeric")
    assert len(bins) <= 10 and sum(b[1] for b in bins) == pytest.approx(1) and sum(b[2] for b in bins) == pytest.approx(1)
    r, c = np.array([b[1] for b in bins]), np.array([b[2] for b in bins])
    sessions = next(d for d in report.drift if d.name == "sessions_last_7d")
    assert np.sum((c - r) * np.log((c + 1e-4) / (r + 1e-4))) == pytest.approx(sessions.psi, rel=1e-6)
    categories = distribution(drifted, column_values("preferred_device_type_id", "categorical"), params, "categorical")
    assert sum(b[1] for b in categories) == pytest.approx(1)
    page = write_drift_report(drifted, CHURN, report, tmp_path / "drift.html").read_text()
    assert page.count("<img") >= 2 and "sessions_last_7d" in page and "Drift over the dates monitored" in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from the internet


@pytest.mark.parametrize("fmt", ["json", "slack", "alertmanager"])
def test_alerts_are_posted_in_the_shape_the_receiver_accepts(steady, monkeypatch, fmt):
    import http.server
    import json
    import threading

    from ownlens.ml.monitoring.drift import Thresholds

    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, self.headers["Content-Type"], json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = {"json": "/hook", "slack": "/services/T0/B0/x", "alertmanager": "/api/v2/alerts"}[fmt]
    monkeypatch.setenv("OWNLENS_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}{path}")
    monkeypatch.setenv("OWNLENS_ALERT_WEBHOOK_FORMAT", fmt)
    strict = replace(CHURN, input_thresholds=Thresholds(wasserstein_warn=0.0, wasserstein_alert=0.0, psi_warn=0.0, psi_alert=0.0))
    try:
        report = monitor(steady, strict, AFTER, BEFORE)
    finally:
        server.shutdown()
    assert report.alerts and len(received) == 1 and received[0][:2] == (path, "application/json")
    body = received[0][2]
    if fmt == "json":
        assert body == {"model": "churn", "date": str(AFTER), "alerts": report.alerts}
    elif fmt == "slack":
        assert set(body) == {"text"} and "churn" in body["text"] and f"{len(report.alerts)} past the alert threshold" in body["text"]
    else:  # Alertmanager's API v2: a list of alerts, each with labels, annotations and RFC 3339 times
        from datetime import datetime

        assert len(body) == len(report.alerts)
        for alert in body:
            assert alert["labels"]["alertname"] == "OwnLensDrift" and alert["labels"]["model"] == "churn"
            assert set(alert) == {"labels", "annotations", "startsAt", "endsAt"} and alert["annotations"]["summary"]
            assert datetime.fromisoformat(alert["endsAt"]) > datetime.fromisoformat(alert["startsAt"])
        assert {a["labels"]["column"] for a in body} == {a.split(":")[0] for a in report.alerts}


def test_a_misspelt_webhook_format_is_refused_before_anything_is_written(steady, monkeypatch):
    from ownlens.ml.errors import InvalidInput

    monkeypatch.setenv("OWNLENS_ALERT_WEBHOOK_FORMAT", "teams")
    before = steady.command("SELECT count() FROM ml_model_monitoring")
    with pytest.raises(InvalidInput, match="OWNLENS_ALERT_WEBHOOK_FORMAT='teams' is not a format: use one of json, slack, alertmanager"):
        monitor(steady, CHURN, AFTER, BEFORE)
    assert steady.command("SELECT count() FROM ml_model_monitoring") == before
