"""Model monitoring, the same for every model: input and prediction drift, and realised performance, into
ml_model_monitoring.

``monitor(client, model, current)`` compares the model's inputs (``model.inputs``, if it has any) and its stored
predictions on ``current`` with a reference: by default the production version's training data (its training
dates, pooled), so the demo, ``monitor`` and ``serve``'s schedule give a date the same alerts. An input is compared
only on reference dates with the history its window needs (``FeatureSet.history_days``); with none, it is
``skipped``. Once the outcomes of ``current`` are known, the model says how its stored outputs did
(``model.realised``). Re-running for the same model and date replaces its rows. Alerts go to the log and, when
``OWNLENS_ALERT_WEBHOOK`` is set, to that URL (see ``monitoring/alerts.py``). The schedule (``pipelines/monitoring.py``) calls it.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timezone

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.monitoring import alerts as alerting
from ownlens.ml.monitoring.drift import INPUT_THRESHOLDS, PREDICTION_THRESHOLDS, Drift, column_drift, feature_drift
from ownlens.ml.registry import store

log = logging.getLogger(__name__)

FEATURE_ROWS = "SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}"
FIRST_FEATURE_DATE = "SELECT minOrNull(feature_date) FROM customer_user_features"
PREDICTIONS = """
SELECT {value:Identifier} AS v, has({refs:Array(Date)}, prediction_date) AS is_ref FROM ml_model_predictions
WHERE model_name = {model:String} AND (prediction_date = {cur:Date} OR has({refs:Array(Date)}, prediction_date))
"""
PREDICTION_COUNTS = f"SELECT countIf(is_ref), countIf(NOT is_ref) FROM ({PREDICTIONS})"
MODEL_ID = "SELECT any(model_id) FROM ml_model_registry FINAL WHERE model_name = {m:String} AND model_version = {v:String}"
DELETE_DATE = "DELETE FROM ml_model_monitoring WHERE model_name = {m:String} AND monitoring_date = {d:Date}"


@dataclass
class MonitoringReport:
    model: str
    version: str
    current: date
    references: list[date]  # empty: no earlier features to compare with (performance only)
    drift: list[Drift] = field(default_factory=list)
    prediction_drift: Drift | None = None
    performance: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> date | None:
        """The latest reference date."""
        return self.references[-1] if self.references else None

    @property
    def alerts(self) -> list[str]:
        out = [f"{d.name}: {d.status} ({d.metric} {d.size:.3f})" for d in self.drift if d.status == "alert"]
        p = self.prediction_drift
        if p and p.status == "alert":
            out.append(f"predictions: alert ({p.metric} {p.size:.3f})")
        return out

    def to_dict(self) -> dict:
        def row(d: Drift) -> dict:
            return asdict(d) | {"status": d.status, "metric": d.metric}

        return {"model": self.model, "version": self.version, "current": str(self.current),
                "reference": str(self.reference) if self.reference else None, "references": [str(d) for d in self.references],
                "alerts": self.alerts, "drift": [row(d) for d in self.drift],
                "prediction_drift": row(self.prediction_drift) if self.prediction_drift else None,
                "performance": self.performance, "notes": self.notes}


def reference_dates(client: Client, model, current: date, version: str = "production") -> list[date]:
    """The dates the ``version`` (production) learnt from, before ``current``: its training data. Without such a
    version or dates, the first feature date; [] when nothing lies before ``current``."""
    from ownlens.ml.models.trained import training_dates

    try:
        learnt = training_dates(client, model.name, version)
    except NotFound:
        learnt = []
    dates = [d for d in learnt if d < current]
    if dates:
        return dates
    earliest = client.query(FIRST_FEATURE_DATE).result_rows[0][0]
    return [earliest] if earliest and earliest < current else []


def input_drift(client: Client, model, references: list[date], current: date) -> list[Drift]:
    """Drift of each of ``model``'s inputs, each against the reference dates with the history it needs."""
    from ownlens.ml.features.build import data_range

    inputs = model.inputs
    first = (data_range(client) or (current, current))[0]
    columns = inputs.drift_columns("uf")
    usable = {name: tuple(r for r in references if (r - first).days >= inputs.history_of(name)) for name, _, _ in columns}
    found: dict[str, Drift] = {}
    for dates in set(usable.values()):
        group = [c for c in columns if usable[c[0]] == dates]
        if not dates:
            for name, _, kind in group:
                need = inputs.history_of(name)
                found[name] = Drift(name, kind, 0.0, 0.0, None, None, 0, 0, skipped=(
                    f"the reference dates have under {need} days of data before them, which this input needs "
                    f"(data starts {first}): it is compared once a version trained on later dates is in production"))
            continue
        for d in feature_drift(client, inputs.table, group, list(dates), current, where=getattr(model, "population", "1")):
            found[d.name] = d
    thresholds = model.input_thresholds
    return [replace(found[name], trending=name in inputs.trending, thresholds=thresholds or found[name].thresholds)
            for name, _, _ in columns]


def monitor(client: Client, model, current: date, reference: date | None = None, version: str = "production") -> MonitoringReport:
    """Drift and realised performance of ``model`` on ``current``; writes ml_model_monitoring (replacing that date's
    rows). ``reference``: one date to compare with instead of the version's training data."""
    if reference is not None and reference >= current:
        raise InvalidInput(f"the reference date {reference} must be before {current}")
    alerting.webhook_format()  # a misspelt format is refused before anything is written
    references = [reference] if reference is not None else reference_dates(client, model, current, version)
    if model.inputs is not None:
        for d in (*references, current):
            if not int(client.command(FEATURE_ROWS, parameters={"d": d})):
                raise NotFound(f"no features for {d}: run `ownlens-ml features build --date {d}`")
    try:
        row = store.get(client, model.name, version)
        model_version, model_id = row["model_version"], row["model_id"]
    except NotFound:
        model_version, model_id = "", None
    report = MonitoringReport(model.name, model_version, current, references)
    if references and model.inputs is not None:
        report.drift = input_drift(client, model, references, current)
    if references and model.prediction_drift is not None:
        params = {"refs": references, "cur": current, "model": model.name,
                  "value": "prediction_value" if model.prediction_drift == "numeric" else "prediction_label"}
        counts = client.query(PREDICTION_COUNTS, parameters=params).result_rows[0]
        if min(counts) > 0:
            report.prediction_drift = replace(column_drift(client, PREDICTIONS, params, "prediction", model.prediction_drift,
                                                           model.prediction_thresholds or PREDICTION_THRESHOLDS, counts=counts),
                                              references=tuple(references))
        elif counts[1] > 0:
            report.notes.append(f"predictions not compared: none stored for the reference dates "
                                f"({', '.join(str(d) for d in references)}); score one with `ownlens-ml predict {model.name} "
                                f"--date {references[-1]}`")
    found = model.realised(client, current) if model.realised is not None else None
    if found is not None:
        version_stored = found.pop("model_version", None)
        if version_stored and version_stored != model_version:
            report.version = version_stored
            rows = client.query(MODEL_ID, parameters={"m": model.name, "v": version_stored}).result_rows
            model_id = rows[0][0] if rows and rows[0][0] else None
        report.performance = {k: float(v) for k, v in found.items()}
    _write(client, report, model_id)
    alerting.send(report)
    return report


STORED = """
SELECT model_version, monitor_type, metric_name, feature_name, metric_value, status, details FROM ml_model_monitoring
WHERE model_name = {m:String} AND monitoring_date = {d:Date} ORDER BY monitor_type, feature_name, metric_name
"""


def stored(client: Client, model, current: date) -> MonitoringReport:
    """The report ``monitor`` wrote for ``model`` on ``current``, read back from ml_model_monitoring (what the console
    shows without monitoring again); :class:`NotFound` when that date was not monitored."""
    rows = client.query(STORED, parameters={"m": model.name, "d": current}).result_rows
    if not rows:
        raise NotFound(f"{model.name} was not monitored on {current}: run `ownlens-ml monitor {model.name} --date {current}`")
    report = MonitoringReport(model.name, rows[0][0], current, [])
    performance = {}
    for _, monitor_type, metric, feature, value, status, details in rows:
        details = json.loads(details or "{}")
        if monitor_type == "performance":
            performance[f"{metric}:{feature}" if feature else metric] = value
            continue
        prediction = monitor_type == "prediction_drift"
        thresholds = (model.prediction_thresholds or PREDICTION_THRESHOLDS) if prediction else (model.input_thresholds or INPUT_THRESHOLDS)
        references = tuple(date.fromisoformat(str(d)) for d in details.get("references", []))
        numeric = metric == "wasserstein"
        drift = Drift(feature, "numeric" if numeric else "categorical", details.get("psi") or 0.0, details.get("js") or 0.0,
                      details.get("ks_statistic"), details.get("ks_p_value"), int(details.get("reference_rows") or 0),
                      int(details.get("current_rows") or 0), wasserstein=value if numeric and value == value else None,
                      trending=status == "trend", skipped=details.get("skipped", ""), thresholds=thresholds,
                      references=references)
        report.references = sorted(set(report.references) | set(references))
        if prediction:
            report.prediction_drift = drift
        else:
            report.drift.append(drift)
    report.performance = performance or None
    return report


def _write(client: Client, report: MonitoringReport, model_id) -> None:
    now = datetime.now(timezone.utc)
    rows = []

    def add(monitor_type, metric, feature, value, threshold, status, details):
        rows.append([uuid.uuid4(), uuid.UUID(str(model_id)) if model_id else None, report.model, report.version, report.current,
                     monitor_type, metric, feature, float(value if value is not None else float("nan")), threshold, status,
                     json.dumps(details, default=str), now])

    def alert_at(d: Drift) -> float:
        return d.thresholds.wasserstein_alert if d.metric == "wasserstein" else d.thresholds.psi_alert

    for d in report.drift:
        details = {"references": report.references, "psi": d.psi, "js": d.js, "ks_statistic": d.ks_statistic,
                   "ks_p_value": d.ks_p_value, "reference_rows": d.reference_rows, "current_rows": d.current_rows}
        add("feature_drift", d.metric, d.name, None if d.skipped else d.size, alert_at(d), d.status,
            details | ({"skipped": d.skipped} if d.skipped else {}))
    if report.prediction_drift:
        d = report.prediction_drift
        add("prediction_drift", d.metric, "prediction", d.size, alert_at(d), d.status,
            {"references": report.references, "psi": d.psi, "js": d.js, "ks_statistic": d.ks_statistic})
    for metric, value in (report.performance or {}).items():
        metric, _, part = metric.partition(":")  # "realised_ctr:footer": the metric of one part (a placement)
        add("performance", metric, part, value, None, "ok", {})
    client.command(DELETE_DATE, parameters={"m": report.model, "d": report.current})
    if rows:
        client.insert("ml_model_monitoring", rows, column_names=[
            "monitoring_id", "model_id", "model_name", "model_version", "monitoring_date", "monitor_type", "metric_name",
            "feature_name", "metric_value", "threshold", "status", "details", "created_at"])
