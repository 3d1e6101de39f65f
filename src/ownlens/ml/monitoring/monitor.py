"""Model monitoring, the same for every model: input and prediction drift, and realised performance, into
ml_model_monitoring.

``monitor(client, model, current)`` compares the model's inputs (``model.inputs``, if it has any) and its stored
predictions on ``current`` with a reference date (default: the end of the production version's training
window), and, once the outcomes of ``current`` are known, asks the model how its stored outputs did
(``model.realised``). Re-running for the same model and date replaces its rows. Alerts go to the log and, when
``OWNLENS_ALERT_WEBHOOK`` is set, to that URL as JSON. The schedule (``pipelines/monitoring.py``) calls it.
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
from ownlens.ml.monitoring.drift import PREDICTION_THRESHOLDS, Drift, column_drift, feature_drift
from ownlens.ml.registry import store

log = logging.getLogger(__name__)

FEATURE_ROWS = "SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}"
FIRST_FEATURE_DATE = "SELECT min(feature_date) FROM customer_user_features"
PREDICTIONS = """
SELECT {value:Identifier} AS v, prediction_date = {ref:Date} AS is_ref FROM ml_model_predictions
WHERE model_name = {model:String} AND prediction_date IN ({ref:Date}, {cur:Date})
"""
PREDICTION_COUNTS = f"SELECT countIf(is_ref), countIf(NOT is_ref) FROM ({PREDICTIONS})"
MODEL_ID = "SELECT any(model_id) FROM ml_model_registry FINAL WHERE model_name = {m:String} AND model_version = {v:String}"
DELETE_DATE = "DELETE FROM ml_model_monitoring WHERE model_name = {m:String} AND monitoring_date = {d:Date}"


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


def default_reference(client: Client, model, current: date) -> date | None:
    """The end of the production version's training window, else the first feature date; None if not before ``current``."""
    try:
        end = store.get(client, model.name, "production")["training_data_end"]
    except NotFound:
        end = None
    if end is not None and str(end) not in ("NaT", "None"):
        end = end.date() if isinstance(end, datetime) else end  # pandas Timestamps are datetimes
        if end < current:
            return end
    earliest = date.fromisoformat(str(client.command(FIRST_FEATURE_DATE)))
    return earliest if earliest < current else None


def monitor(client: Client, model, current: date, reference: date | None = None, version: str = "production") -> MonitoringReport:
    """Drift and realised performance of ``model`` on ``current``; writes ml_model_monitoring (replacing that date's rows)."""
    if reference is not None and reference >= current:
        raise InvalidInput(f"the reference date {reference} must be before {current}")
    reference = reference or default_reference(client, model, current)  # None: nothing earlier to compare with
    if model.inputs is not None:
        for d in (current,) if reference is None else (reference, current):
            if not int(client.command(FEATURE_ROWS, parameters={"d": d})):
                raise NotFound(f"no features for {d}: run `ownlens-ml features build --date {d}`")
    try:
        row = store.get(client, model.name, version)
        model_version, model_id = row["model_version"], row["model_id"]
    except NotFound:
        model_version, model_id = "", None
    report = MonitoringReport(model.name, model_version, current, reference)
    if reference is not None and model.inputs is not None:
        report.drift = [replace(d, trending=d.name in model.inputs.trending, thresholds=model.input_thresholds or d.thresholds)
                        for d in feature_drift(client, model.inputs.table, model.inputs.drift_columns("uf"), reference, current,
                                               where=getattr(model, "population", "1"))]
    if reference is not None and model.prediction_drift is not None:
        params = {"ref": reference, "cur": current, "model": model.name,
                  "value": "prediction_value" if model.prediction_drift == "numeric" else "prediction_label"}
        if min(client.query(PREDICTION_COUNTS, parameters=params).result_rows[0]) > 0:
            report.prediction_drift = column_drift(client, PREDICTIONS, params, "prediction", model.prediction_drift,
                                                   model.prediction_thresholds or PREDICTION_THRESHOLDS)
    found = model.realised(client, current) if model.realised is not None else None
    if found is not None:
        version_stored = found.pop("model_version", None)
        if version_stored and version_stored != model_version:
            report.version = version_stored
            rows = client.query(MODEL_ID, parameters={"m": model.name, "v": version_stored}).result_rows
            model_id = rows[0][0] if rows and rows[0][0] else None
        report.performance = {k: float(v) for k, v in found.items()}
    _write(client, report, model_id)
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
    client.command(DELETE_DATE, parameters={"m": report.model, "d": report.current})
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
