"""Scheduled model monitoring: input and prediction drift, and realised performance, into ml_model_monitoring.

``monitor(client, spec, current)`` compares the model's inputs (and stored predictions) on ``current`` with a
reference date (default: the end of the production version's training window), and, when the 30-day label
window after ``current`` has passed, scores the stored predictions of ``current`` against what happened.
Re-running for the same model and date replaces its rows. Alerts go to the log and, when
``OWNLENS_ALERT_WEBHOOK`` is set, to that URL as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timezone

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models.spec import ModelSpec
from ownlens.ml.monitoring.drift import PREDICTION_THRESHOLDS, Drift, column_drift, feature_drift

log = logging.getLogger(__name__)

PERFORMANCE = """
SELECT count(), avg(p.prediction_value), avg(l.{label}),
       arrayAUC(groupArray(p.prediction_value), groupArray(l.{label} = 1)),
       avg(pow(p.prediction_value - l.{label}, 2))
FROM ml_model_predictions AS p
INNER JOIN customer_user_labels AS l ON l.user_id = toUUID(p.entity_id) AND l.feature_date = p.prediction_date
WHERE p.model_name = {{model:String}} AND p.prediction_date = {{d:Date}} AND l.label_window_complete = 1
"""


@dataclass
class MonitoringReport:
    model: str
    version: str
    current: date
    reference: date | None  # None: no earlier features to compare with (performance only)
    drift: list[Drift] = field(default_factory=list)
    prediction_drift: Drift | None = None
    performance: dict | None = None

    @property
    def alerts(self) -> list[str]:
        out = [f"{d.name}: {d.status} (PSI {d.psi:.3f}, KS {d.ks_statistic or 0:.3f})" for d in self.drift if d.status == "alert"]
        p = self.prediction_drift
        if p and p.status == "alert":
            out.append(f"predictions: alert (PSI {p.psi:.3f}, KS {p.ks_statistic or 0:.3f})")
        return out

    def to_dict(self) -> dict:
        return {"model": self.model, "version": self.version, "current": str(self.current), "reference": str(self.reference) if self.reference else None,
                "alerts": self.alerts,
                "drift": [asdict(d) | {"status": d.status} for d in self.drift],
                "prediction_drift": asdict(self.prediction_drift) | {"status": self.prediction_drift.status} if self.prediction_drift else None,
                "performance": self.performance}


def _feature_columns(spec: ModelSpec) -> list[tuple[str, str, str]]:
    fs = spec.features
    return ([(c, c, "numeric") for c in fs.numeric]
            + [(k, f"JSONExtractFloat({fs.json_column}, '{k}')", "numeric") for k in fs.json_keys]
            + [(c, c, "categorical") for c in fs.categorical])


def _default_reference(client: Client, spec: ModelSpec, current: date) -> date | None:
    """The end of the production version's training window, else the first feature date; None if not before ``current``."""
    from ownlens.ml.registry import store

    try:
        end = store.get(client, spec.name, "production")["training_data_end"]
    except NotFound:
        end = None
    if end is not None and str(end) not in ("NaT", "None"):
        end = end.date() if isinstance(end, datetime) else end  # pandas Timestamps are datetimes
        if end < current:
            return end
    earliest = date.fromisoformat(str(client.command("SELECT min(feature_date) FROM customer_user_features")))
    return earliest if earliest < current else None


def monitor(client: Client, spec: ModelSpec, current: date, reference: date | None = None, version: str = "production") -> MonitoringReport:
    """Drift and performance of ``spec`` on ``current``; writes ml_model_monitoring (replacing that date's rows)."""
    if spec.source is not None:
        raise InvalidInput(f"{spec.name} scores user x article pairs: monitoring covers the user models for now")
    if reference is not None and reference >= current:
        raise InvalidInput(f"the reference date {reference} must be before {current}")
    reference = reference or _default_reference(client, spec, current)  # None: nothing earlier, performance only
    for d in (current,) if reference is None else (reference, current):
        if not int(client.command("SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}", parameters={"d": d})):
            raise NotFound(f"no features for {d}: run `ownlens-ml features build --date {d}`")
    from ownlens.ml.registry import store

    try:
        row = store.get(client, spec.name, version)
        model_version, model_id = row["model_version"], row["model_id"]
    except NotFound:
        model_version, model_id = "", None
    report = MonitoringReport(spec.name, model_version, current, reference)
    if reference is not None:
        report.drift = [replace(d, trending=d.name in spec.features.trending, thresholds=spec.input_thresholds or d.thresholds)
                        for d in feature_drift(client, spec.features.table, _feature_columns(spec), reference, current,
                                               where=spec.population.replace("uf.", ""))]
        params = {"ref": reference, "cur": current, "model": spec.name}
        predictions = ("SELECT prediction_value AS v, prediction_date = {ref:Date} AS is_ref FROM ml_model_predictions "
                       "WHERE model_name = {model:String} AND prediction_date IN ({ref:Date}, {cur:Date})")
        have = client.query(f"SELECT countIf(is_ref), countIf(NOT is_ref) FROM ({predictions})", parameters=params).result_rows[0]
        if min(have) > 0:
            report.prediction_drift = column_drift(client, predictions, params, "prediction", "numeric",
                                                   spec.prediction_thresholds or PREDICTION_THRESHOLDS)
    if spec.task == "binary" and spec.label.startswith("l."):
        n, mean_p, rate, auc, brier = client.query(PERFORMANCE.format(label=spec.label[2:]),
                                                   parameters={"model": spec.name, "d": current}).result_rows[0]
        if n:
            report.performance = {"rows": int(n), "mean_prediction": float(mean_p), "observed_rate": float(rate),
                                  "roc_auc": float(auc), "brier": float(brier)}
    _write(client, report, model_id)
    _alert(report)
    return report


_LABELLED_UNMONITORED = """
SELECT DISTINCT prediction_date FROM ml_model_predictions
WHERE model_name = {model:String}
  AND prediction_date IN (SELECT DISTINCT feature_date FROM customer_user_labels WHERE label_window_complete = 1)
  AND prediction_date NOT IN (SELECT monitoring_date FROM ml_model_monitoring
                              WHERE model_name = {model:String} AND monitor_type = 'performance')
ORDER BY prediction_date
"""


def retrain_on_alert(client: Client, spec: ModelSpec, report: MonitoringReport) -> dict | None:
    """When ``report`` has alerts, train a challenger and promote it if it scores at least as well as production
    on the same (latest labelled) test rows; returns that comparison, or None without alerts."""
    if not report.alerts:
        return None
    from ownlens.ml.models.training import challenge

    _, duel = challenge(spec, client, description=f"retrained after drift alerts on {report.current}")
    log.warning("retrained %s after %d drift alert(s) on %s: %s %s %.4f vs production %s %s -> %s", spec.name,
                len(report.alerts), report.current, duel["version"], duel["metric"], duel["new"], duel["production_version"],
                "n/a" if duel["production"] is None else f"{duel['production']:.4f}", "promoted" if duel["promoted"] else "kept")
    return duel


def monitor_due(client: Client, done: set, retrain: bool = False) -> list[MonitoringReport]:
    """One scheduled pass over every registered user model: drift on the latest feature date, and realised
    performance on each date whose predictions now have complete labels and no performance rows yet.

    ``done`` holds the (model, date) pairs this process has already monitored, so a pass with nothing new
    costs a few small queries; it is updated in place. ``retrain``: see :func:`retrain_on_alert`.
    """
    from ownlens.ml.data.loaders import latest_feature_date
    from ownlens.ml.models import MODELS, TASK_MODELS

    registered = {name for (name,) in client.query("SELECT DISTINCT model_name FROM ml_model_registry").result_rows}
    latest = latest_feature_date(client)
    reports = []
    for name, spec in MODELS.items():
        if spec.source is not None or name not in registered:
            continue
        labelled = [d for (d,) in client.query(_LABELLED_UNMONITORED, parameters={"model": name}).result_rows]
        for d in dict.fromkeys([latest, *labelled]):
            if (name, d) in done:
                continue
            done.add((name, d))
            try:
                reports.append(monitor(client, spec, d))
            except (InvalidInput, NotFound) as exc:  # e.g. no reference date before the first features
                log.info("monitoring %s on %s skipped: %s", name, d, exc)
                continue
            if retrain and d == latest:
                retrain_on_alert(client, spec, reports[-1])
    for name, task in TASK_MODELS.items():  # stored outputs whose judging days have now passed
        if task.realised is None or name not in registered:
            continue
        monitored = {d for (d,) in client.query("SELECT DISTINCT monitoring_date FROM ml_model_monitoring WHERE model_name = {m:String}",
                                                parameters={"m": name}).result_rows}
        for d in task.stored_dates(client):
            if d in monitored or (name, d) in done:
                continue
            report = monitor_task(client, task, d)
            if report is not None:
                done.add((name, d))
                reports.append(report)
    return reports


def monitor_task(client: Client, task, d: date) -> MonitoringReport | None:
    """Realised performance of a task model's outputs stored for ``d`` (recommendations read, ad click rates),
    written to ml_model_monitoring; None while the days that judge them have not passed."""
    if task.realised is None:
        raise InvalidInput(f"{task.name} has no realised performance to monitor")
    found = task.realised(client, d)
    if found is None:
        return None
    version, drift, reference = found.pop("model_version"), found.pop("prediction_drift", None), found.pop("reference", None)
    report = MonitoringReport(task.name, version, d, reference, prediction_drift=drift,
                              performance={k: float(v) for k, v in found.items()})
    row = client.query("SELECT any(model_id) FROM ml_model_registry FINAL WHERE model_name = {m:String} AND model_version = {v:String}",
                       parameters={"m": task.name, "v": version}).result_rows
    _write(client, report, row[0][0] if row and row[0][0] else None)
    _alert(report)
    return report


def _write(client: Client, report: MonitoringReport, model_id) -> None:
    now = datetime.now(timezone.utc)
    rows = []

    def add(monitor_type, metric, feature, value, threshold, status, details):
        rows.append([uuid.uuid4(), uuid.UUID(str(model_id)) if model_id else None, report.model, report.version, report.current,
                     monitor_type, metric, feature, float(value if value is not None else float("nan")), threshold, status,
                     json.dumps(details, default=str), now])

    for d in report.drift:
        details = {"reference": report.reference, "js": d.js, "ks_statistic": d.ks_statistic, "ks_p_value": d.ks_p_value,
                   "reference_rows": d.reference_rows, "current_rows": d.current_rows}
        add("feature_drift", "psi", d.name, d.psi, d.thresholds.psi_alert, d.status, details)
    if report.prediction_drift:
        d = report.prediction_drift
        add("prediction_drift", "psi", "prediction", d.psi, d.thresholds.psi_alert, d.status, {"reference": report.reference, "js": d.js,
                                                                             "ks_statistic": d.ks_statistic})
    for metric, value in (report.performance or {}).items():
        metric, _, part = metric.partition(":")  # "realised_ctr:footer": the metric of one part (a placement)
        add("performance", metric, part, value, None, "ok", {})
    client.command("DELETE FROM ml_model_monitoring WHERE model_name = {m:String} AND monitoring_date = {d:Date}",
                   parameters={"m": report.model, "d": report.current})
    if rows:
        client.insert("ml_model_monitoring", rows, column_names=[
            "monitoring_id", "model_id", "model_name", "model_version", "monitoring_date", "monitor_type", "metric_name",
            "feature_name", "metric_value", "threshold", "status", "details", "created_at"])


def _alert(report: MonitoringReport) -> None:
    alerts = report.alerts
    if not alerts:
        return
    names = [a.split(":")[0] for a in alerts]
    log.warning("drift alert for %s on %s against %s: %d past the threshold (%s%s)", report.model, report.current,
                report.reference, len(alerts), ", ".join(names[:5]), ", ..." if len(names) > 5 else "")
    url = os.environ.get("OWNLENS_ALERT_WEBHOOK")
    if url:
        body = json.dumps({"model": report.model, "date": str(report.current), "alerts": alerts}).encode()
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except OSError as exc:  # an unreachable webhook must not fail the monitoring run
            log.warning("alert webhook %s failed: %s", url, exc)
