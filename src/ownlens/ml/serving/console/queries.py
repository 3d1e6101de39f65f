"""What the console shows, read from the warehouse: each function returns plain data for one part of one page.

Aggregates run in ClickHouse (histograms, counts, latest rows); row counts per model and date come from
``system.parts`` (ml_model_predictions is partitioned by model and date, and replaced a partition at a time), so a
page costs the same at 1M users as at 3k. Nothing here writes except :func:`drift_report`, which renders the stored
monitoring of a date into the reports directory.
"""

from __future__ import annotations

import json
import math
from datetime import date

from clickhouse_connect.driver.client import Client

from ownlens.ml.models import MODELS, get
from ownlens.ml.models.metrics import higher_is_better, meets

LATEST_RUNS = """
SELECT model_name, argMax(status, started_at), max(started_at), argMax(duration_sec, started_at), countIf(status = 'failed')
FROM ml_model_training_runs FINAL GROUP BY model_name
"""
RUNS = """
SELECT toString(run_id), model_name, model_version, status, parameters, metrics, error_message, started_at, duration_sec,
       package_version
FROM ml_model_training_runs FINAL
WHERE {name:String} = '' OR model_name = {name:String} ORDER BY started_at DESC LIMIT {limit:UInt32}
"""
STAGE_HISTORY = """
SELECT model_version, stage, changed_at FROM ml_model_stage_events WHERE model_name = {name:String}
ORDER BY changed_at DESC LIMIT {limit:UInt32}
"""
PREDICTION_PARTS = """
SELECT partition, sum(rows) FROM system.parts
WHERE database = currentDatabase() AND table = 'ml_model_predictions' AND active GROUP BY partition
"""
SCORE_RANGE = """
SELECT min(prediction_value), max(prediction_value), count(), avg(prediction_value) FROM ml_model_predictions
WHERE model_name = {m:String} AND prediction_date = {d:Date}
"""
SCORE_HISTOGRAM = """
SELECT least(toUInt32(floor((prediction_value - {lo:Float64}) / {width:Float64})), {last:UInt32}) AS bin, count()
FROM ml_model_predictions WHERE model_name = {m:String} AND prediction_date = {d:Date} AND isFinite(prediction_value)
GROUP BY bin ORDER BY bin
"""
LABELS = """
SELECT prediction_label, count() AS n FROM ml_model_predictions
WHERE model_name = {m:String} AND prediction_date = {d:Date} GROUP BY prediction_label ORDER BY n DESC LIMIT 12
"""
MONITORING_LATEST = """
SELECT model_name, max(monitoring_date) AS latest,
       countIf(status = 'alert' AND monitoring_date = latest_date) AS alerts
FROM ml_model_monitoring AS m
INNER JOIN (SELECT model_name, max(monitoring_date) AS latest_date FROM ml_model_monitoring GROUP BY model_name) AS l
    USING model_name
GROUP BY model_name
"""
LATEST_STATUSES = """
SELECT m.model_name, m.status, count() FROM ml_model_monitoring AS m
INNER JOIN (SELECT model_name, max(monitoring_date) AS latest FROM ml_model_monitoring GROUP BY model_name) AS l
    ON l.model_name = m.model_name AND l.latest = m.monitoring_date
WHERE m.monitor_type != 'performance' GROUP BY m.model_name, m.status
"""
LATEST_PERFORMANCE = """
SELECT model_name, if(feature_name = '', metric_name, concat(metric_name, ':', feature_name)) AS metric,
       max(monitoring_date), argMax(metric_value, monitoring_date), argMax(model_version, monitoring_date)
FROM ml_model_monitoring WHERE monitor_type = 'performance' AND isFinite(metric_value)
GROUP BY model_name, metric ORDER BY model_name, metric
"""
DRIFT_HISTORY = """
SELECT monitoring_date, if(monitor_type = 'prediction_drift', 'prediction', feature_name) AS column, metric_name,
       metric_value, threshold, status
FROM ml_model_monitoring
WHERE model_name = {m:String} AND monitor_type IN ('feature_drift', 'prediction_drift')
ORDER BY monitoring_date
"""
PERFORMANCE_HISTORY = """
SELECT monitoring_date, if(feature_name = '', metric_name, concat(metric_name, ':', feature_name)), metric_value, model_version
FROM ml_model_monitoring WHERE model_name = {m:String} AND monitor_type = 'performance' AND isFinite(metric_value)
ORDER BY monitoring_date
"""
ALERTS = """
SELECT monitoring_date, model_name, model_version, if(monitor_type = 'prediction_drift', 'prediction', feature_name),
       metric_name, metric_value, threshold
FROM ml_model_monitoring WHERE status = 'alert' AND ({m:String} = '' OR model_name = {m:String})
ORDER BY monitoring_date DESC, model_name, metric_value DESC LIMIT {limit:UInt32}
"""
AB_TESTS = """
SELECT test_name, model_name, variant_a_version, variant_b_version, traffic_split, status, start_date, end_date, winner,
       results, updated_at
FROM ml_model_ab_tests FINAL ORDER BY created_at DESC
"""
TABLES = """
SELECT t.name, t.engine, t.total_rows, t.total_bytes, p.max_date, p.max_time, p.modified
FROM system.tables AS t
LEFT JOIN (
    SELECT table, max(max_date) AS max_date, max(max_time) AS max_time, max(modification_time) AS modified
    FROM system.parts WHERE database = currentDatabase() AND active GROUP BY table
) AS p ON p.table = t.name
WHERE t.database = currentDatabase() AND t.name != 'ownlens_schema_migrations' AND NOT t.is_temporary
ORDER BY t.total_bytes DESC NULLS LAST, t.name
"""
FEATURE_DATES = "SELECT DISTINCT feature_date FROM customer_user_features ORDER BY feature_date DESC"
USER_FEATURES = """
SELECT * EXCEPT (ml_features, computed_at) FROM customer_user_features
WHERE user_id = {u:UUID} ORDER BY feature_date DESC LIMIT 1
"""
USER_PREDICTIONS = """
SELECT model_name, argMax(model_version, prediction_date), max(prediction_date), argMax(prediction_value, prediction_date),
       argMax(prediction_label, prediction_date)
FROM ml_model_predictions WHERE entity_type = 'user' AND entity_id = {u:String} GROUP BY model_name ORDER BY model_name
"""
USER_SEGMENT = """
SELECT a.assignment_date, s.segment_name, s.segment_description, a.confidence, a.model_version
FROM customer_user_segment_assignments AS a LEFT JOIN customer_user_segments AS s ON s.segment_id = a.segment_id
WHERE a.user_id = {u:UUID} ORDER BY a.assignment_date DESC LIMIT 1
"""
USER_RECOMMENDATIONS = """
SELECT r.rank, toString(r.article_id), a.title, r.score, r.algorithm, r.recommendation_date
FROM customer_recommendations AS r LEFT JOIN editorial_articles AS a ON a.article_id = r.article_id
WHERE r.user_id = {u:UUID}
  AND r.recommendation_date = (SELECT max(recommendation_date) FROM customer_recommendations WHERE user_id = {u:UUID})
ORDER BY r.rank LIMIT 10
"""
EXAMPLE_USER = """
SELECT entity_id FROM ml_model_predictions WHERE model_name = {m:String} AND entity_type = 'user' AND prediction_date = {d:Date}
LIMIT 1
"""


def _day(value) -> date | None:
    """A date from what pandas gives for a Nullable(Date) column (NaT, Timestamp or date)."""
    if value is None or value != value:
        return None
    return value.date() if hasattr(value, "date") else value


def _finite(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def metric_rows(name: str, metrics: dict) -> list[dict]:
    """Every numeric metric of a version next to the oracle's and the seed target, with whether the target is met."""
    targets = get(name).targets if name in MODELS else {}
    oracle = metrics.get("oracle") or {}
    rows = []
    for key, value in metrics.items():
        value = _finite(value)
        if value is None:
            continue
        target = targets.get(key)
        rows.append({"metric": key, "value": value, "oracle": _finite(oracle.get(key)), "target": target,
                     "meets": None if target is None else meets(key, value, target), "higher_is_better": higher_is_better(key)})
    return rows


def registry(client: Client) -> list[dict]:
    """Every registered version, newest first, with its metrics parsed."""
    from ownlens.ml.registry import store

    rows = store.versions(client)
    out = []
    for r in rows.itertuples():
        out.append({"model": r.model_name, "version": r.model_version, "stage": r.stage, "algorithm": r.algorithm,
                    "metrics": json.loads(r.metrics or "{}"), "created_at": r.created_at, "description": r.description,
                    "training_data": tuple(_day(d) for d in (r.training_data_start, r.training_data_end)), "features": list(r.feature_names)})
    return out


def prediction_counts(client: Client) -> dict[str, dict[date, int]]:
    """Rows stored per model and date, from the parts of ml_model_predictions (partition ``(model, date)``)."""
    out: dict[str, dict[date, int]] = {}
    for partition, rows in client.query(PREDICTION_PARTS).result_rows:
        name, _, day = partition.strip("()").partition(",")
        out.setdefault(name.strip("'"), {})[date.fromisoformat(day.strip().strip("'"))] = int(rows)
    return {name: dict(sorted(dates.items())) for name, dates in out.items()}


def overview(client: Client) -> list[dict]:
    """One row per model: its production version and primary metric next to the oracle and target, the latest
    training run, the latest predictions and the latest monitoring."""
    versions = registry(client)
    runs = {r[0]: r[1:] for r in client.query(LATEST_RUNS).result_rows}
    counts = prediction_counts(client)
    monitored = {r[0]: r[1:] for r in client.query(MONITORING_LATEST).result_rows}
    out = []
    for name in MODELS:
        model = get(name)
        mine = [v for v in versions if v["model"] == name]
        production = next((v for v in mine if v["stage"] == "production"), None)
        metrics = production["metrics"] if production else {}
        key = model.primary_metric
        value, oracle, target = _finite(metrics.get(key)), _finite((metrics.get("oracle") or {}).get(key)), model.targets.get(key)
        run = runs.get(name)
        dates = counts.get(name, {})
        latest = max(dates) if dates else None
        monitor = monitored.get(name)
        out.append({"model": name, "task": model.task, "description": model.description, "versions": len(mine),
                    "production": production["version"] if production else None,
                    "algorithm": production["algorithm"] if production else model.algorithm, "metric": key, "value": value,
                    "oracle": oracle, "target": target, "meets": None if target is None or value is None else meets(key, value, target),
                    "last_run": {"status": run[0], "started_at": run[1], "duration_s": run[2], "failed": run[3]} if run else None,
                    "predicted": {"date": latest, "rows": dates[latest]} if latest else None,
                    "monitored": {"date": monitor[0], "alerts": int(monitor[1])} if monitor else None})
    return out


def runs(client: Client, name: str = "", limit: int = 50) -> list[dict]:
    """Training runs, newest first: parameters, metrics, timing and the error of a failed one."""
    from ownlens.ml.settings import get_settings

    reports = get_settings().reports_dir
    out = []
    for run_id, model, version, status, parameters, metrics, error, started, duration, package in client.query(
            RUNS, parameters={"name": name, "limit": limit}).result_rows:
        report = reports / "models" / model / version / "report.html" if version else None
        out.append({"run_id": run_id, "model": model, "version": version, "status": status,
                    "parameters": json.loads(parameters or "{}"), "metrics": json.loads(metrics or "{}"), "error": error,
                    "started_at": started, "duration_s": duration, "package_version": package,
                    "report": f"models/{model}/{version}/report.html" if report is not None and report.is_file() else None})
    return out


def stage_history(client: Client, name: str, limit: int = 50) -> list[tuple]:
    return client.query(STAGE_HISTORY, parameters={"name": name, "limit": limit}).result_rows


def score_distribution(client: Client, name: str, d: date, bins: int = 20) -> dict:
    """Histogram of a model's stored prediction values on ``d`` (equal-width bins, counted in ClickHouse) and its
    most common labels."""
    lo, hi, n, mean = client.query(SCORE_RANGE, parameters={"m": name, "d": d}).result_rows[0]
    out = {"date": d, "rows": int(n), "mean": _finite(mean), "bins": [], "labels": []}
    if not n or lo is None or not math.isfinite(lo) or not math.isfinite(hi):
        return out
    width = (hi - lo) / bins if hi > lo else 1.0
    counts = dict(client.query(SCORE_HISTOGRAM, parameters={"m": name, "d": d, "lo": lo, "width": width,
                                                            "last": bins - 1}).result_rows)
    out["bins"] = [(lo + i * width, lo + (i + 1) * width, int(counts.get(i, 0))) for i in range(bins if hi > lo else 1)]
    out["labels"] = [(label, int(count)) for label, count in client.query(LABELS, parameters={"m": name, "d": d}).result_rows
                     if label != ""]
    return out


def drift_history(client: Client, name: str) -> dict:
    """Drift of each compared column over the monitored dates: ``{"dates": [...], "columns": {column: {date: (metric,
    value, threshold, status)}}}``, the predictions first, then the columns with the largest latest drift."""
    rows = client.query(DRIFT_HISTORY, parameters={"m": name}).result_rows
    dates = sorted({r[0] for r in rows})
    columns: dict[str, dict] = {}
    for d, column, metric, value, threshold, status in rows:
        columns.setdefault(column, {})[d] = (metric, _finite(value), threshold, status)
    latest = dates[-1] if dates else None

    def order(item):
        column, by_date = item
        value = (by_date.get(latest) or (None, None))[1]
        return (column != "prediction", -(value or 0.0), column)

    return {"dates": dates, "columns": dict(sorted(columns.items(), key=order))}


def performance_history(client: Client, name: str) -> dict:
    """Realised performance per metric over the monitored dates: ``{metric: [(date, value, version)]}``."""
    out: dict[str, list] = {}
    for d, metric, value, version in client.query(PERFORMANCE_HISTORY, parameters={"m": name}).result_rows:
        out.setdefault(metric, []).append((d, float(value), version))
    return out


def alerts(client: Client, name: str = "", limit: int = 100) -> list[tuple]:
    return client.query(ALERTS, parameters={"m": name, "limit": limit}).result_rows


def monitoring_overview(client: Client) -> list[dict]:
    """Per model: the latest monitored date, its status counts, and the latest realised performance (three queries
    for every model together)."""
    latest = {r[0]: (r[1], int(r[2])) for r in client.query(MONITORING_LATEST).result_rows}
    statuses: dict[str, dict] = {}
    for name, status, count in client.query(LATEST_STATUSES).result_rows:
        statuses.setdefault(name, {})[status] = int(count)
    performance: dict[str, dict] = {}
    for name, metric, d, value, version in client.query(LATEST_PERFORMANCE).result_rows:
        performance.setdefault(name, {})[metric] = (d, float(value), version)
    return [{"model": name, "date": latest[name][0], "alerts": latest[name][1], "statuses": statuses.get(name, {}),
             "performance": performance.get(name, {})} if name in latest else {"model": name, "date": None} for name in MODELS]


def ab_tests(client: Client) -> list[dict]:
    return [{"name": r[0], "model": r[1], "version_a": r[2], "version_b": r[3], "split": r[4], "status": r[5], "start": r[6],
             "end": r[7], "winner": r[8], "results": json.loads(r[9] or "{}"), "updated_at": r[10]}
            for r in client.query(AB_TESTS).result_rows]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson interval of a proportion (sound at small counts and near 0 or 1)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def tables(client: Client) -> list[dict]:
    """Every table of the warehouse with its rows, bytes and freshness (the newest date in its partitions, else the
    time its newest part was written)."""
    out = []
    for name, engine, rows, size, max_date, max_time, modified in client.query(TABLES).result_rows:
        newest = max_date if max_date and max_date.year > 1970 else (max_time if max_time and max_time.year > 1970 else None)
        out.append({"table": name, "engine": engine, "rows": rows, "bytes": size, "newest": newest,
                    "written": modified if modified and modified.year > 1970 else None})
    return out


def feature_dates(client: Client) -> list[date]:
    return [d for (d,) in client.query(FEATURE_DATES).result_rows]


def user(client: Client, user_id: str) -> dict:
    """One user: the latest features, every model's latest stored prediction, segment and recommendations."""
    params = {"u": user_id}
    features = client.query(USER_FEATURES, parameters=params)
    feature_row = dict(zip(features.column_names, features.result_rows[0])) if features.result_rows else None
    predictions = [{"model": m, "version": v, "date": d, "value": _finite(value), "label": label}
                   for m, v, d, value, label in client.query(USER_PREDICTIONS, parameters=params).result_rows]
    segment = client.query(USER_SEGMENT, parameters=params).result_rows
    recommendations = client.query(USER_RECOMMENDATIONS, parameters=params).result_rows
    return {"user_id": user_id, "features": feature_row, "predictions": predictions,
            "segment": segment[0] if segment else None, "recommendations": recommendations}


def example_user(client: Client) -> str | None:
    """A user with a stored churn prediction on its latest date (for the lookup's placeholder)."""
    dates = prediction_counts(client).get("churn")
    if not dates:
        return None
    found = client.query(EXAMPLE_USER, parameters={"m": "churn", "d": max(dates)}).result_rows
    return found[0][0] if found else None
