"""The master run (seed 003's run_ml.py): exploration, features, every model, predictions, evaluation, monitoring."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import NotFound
from ownlens.ml.models.spec import TaskModel

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    skip_exploration: bool = False
    skip_features: bool = False
    models_only: bool = False  # train, predict and evaluate only: no features, exploration or monitoring
    skip_prerequisites: bool = False
    models: list[str] | None = None  # default: every model
    rebuild_features: bool = False  # also rebuild feature dates that already exist


@dataclass
class RunSummary:
    steps: list[tuple[str, str, float]] = field(default_factory=list)  # (step, outcome, seconds)
    models: dict[str, dict] = field(default_factory=dict)
    feature_dates: list[date] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)


def plan_feature_dates(first: date, last: date) -> list[date]:
    """The dates to build features for: the latest with a complete 30-day label window (the test date), the
    week before it (a recommender learns its blend there), up to three weekly dates whose labels were complete by
    the test date (training dates, 30 to 44 days before it), and the day after the data ends (scoring).
    Dates with under two weeks of history before them are left out."""
    test = last - timedelta(days=29)
    candidates = [test - timedelta(days=n) for n in (44, 37, 30, 7)] + [test]
    return [d for d in candidates if d > first + timedelta(days=14)] + [last + timedelta(days=1)]


def _timed(summary: RunSummary, step: str, fn):
    started = time.perf_counter()
    try:
        outcome = fn()
        summary.steps.append((step, outcome or "ok", time.perf_counter() - started))
        return outcome
    except Exception as exc:
        summary.steps.append((step, f"failed: {exc}".splitlines()[0][:200], time.perf_counter() - started))
        raise


def run_all(client: Client, options: RunOptions | None = None, progress=None) -> RunSummary:
    """Run every step for the warehouse's data; ``progress(step)`` is called as each step starts."""
    from ownlens.ml import schema
    from ownlens.ml.features.build import build_features, data_range
    from ownlens.ml.models import ALL_MODELS, get_model
    from ownlens.ml.settings import get_settings

    options = options or RunOptions()
    summary = RunSummary()
    say = progress or (lambda step: None)
    names = options.models or ALL_MODELS
    specs = [get_model(n) for n in names]
    reports_dir = get_settings().reports_dir

    if not options.skip_prerequisites:
        say("checking prerequisites")

        def prerequisites():
            schema.require(client)
            if data_range(client) is None:
                raise NotFound("the warehouse has no sessions: run `ownlens-ml simulate` or load customer_events first")
            return "schema current, data present"
        _timed(summary, "prerequisites", prerequisites)

    span = data_range(client)
    if span is None:
        raise NotFound("the warehouse has no sessions: run `ownlens-ml simulate` or load customer_events first")
    summary.feature_dates = plan_feature_dates(*span)
    if not (options.skip_features or options.models_only):
        built = {r[0] for r in client.query("SELECT DISTINCT feature_date FROM customer_user_features").result_rows}
        todo = [d for d in summary.feature_dates if options.rebuild_features or d not in built]
        for d in todo:
            say(f"building features for {d}")
            _timed(summary, f"features {d}", lambda d=d: f"{build_features(client, d)['customer_user_features']:,} users")
    scoring_date = summary.feature_dates[-1]
    if not (options.skip_exploration or options.models_only):
        say("writing the exploration report")
        from ownlens.ml.data.exploration import explore

        labelled = summary.feature_dates[-2] if len(summary.feature_dates) > 1 else scoring_date
        summary.reports["exploration"] = str(_timed(summary, "exploration", lambda: str(explore(client, reports_dir / "exploration", labelled))))

    for spec in specs:
        say(f"training {spec.name}")
        started = time.perf_counter()
        try:
            run_one = _task_model if isinstance(spec, TaskModel) else _model
            summary.models[spec.name] = run_one(client, spec, scoring_date, reports_dir, monitor=not options.models_only)
            summary.steps.append((f"model {spec.name}", "ok", time.perf_counter() - started))
        except Exception as exc:  # one model failing must not stop the others
            log.exception("model %s failed", spec.name)
            summary.models[spec.name] = {"error": str(exc).splitlines()[0][:300]}
            summary.steps.append((f"model {spec.name}", f"failed: {str(exc).splitlines()[0][:200]}", time.perf_counter() - started))
    return summary


def _model(client: Client, spec, scoring_date: date, reports_dir, monitor: bool) -> dict:
    """Train, evaluate (report), promote when at least as good as production, score the latest date, monitor."""
    from ownlens.ml.models.evaluation import write_report
    from ownlens.ml.models.prediction import predict_batch
    from ownlens.ml.models.training import challenge
    from ownlens.ml.registry import store

    result, duel = challenge(spec, client)  # promoted when at least as good as production on the same test rows
    key, new, promoted = duel["metric"], duel["new"], duel["promoted"]
    report = write_report(spec, result.model, result.test, result.metrics, result.oracle_metrics,
                          reports_dir / "models" / spec.name / str(result.model.version), result.split)
    served = store.load(client, spec.name, "production")
    from ownlens.ml.monitoring.abtest import running

    scored = predict_batch(spec, client, served, scoring_date, ab_test=running(client, spec.name))
    out = {"version": result.model.version, "promoted": promoted, "production": served.version, "metric": key,
           "value": new, "oracle": (result.oracle_metrics or {}).get(key), "test_rows": result.split["test_rows"],
           "predictions": scored["rows"], "prediction_table": scored["table"], "report": str(report)}
    if monitor and spec.source is None:
        from ownlens.ml.monitoring.monitor import monitor as run_monitor

        reference = result.split.get("test_date")
        if reference and str(reference) < str(scoring_date):
            m = run_monitor(client, spec, scoring_date, date.fromisoformat(str(reference)))
            out["drift_alerts"] = len(m.alerts)
    return out


def _task_model(client: Client, task: TaskModel, scoring_date: date, reports_dir, monitor: bool) -> dict:
    """Train and report a task model, promote it unless production did better on the same test date, store its batch."""
    import json

    from ownlens.ml.errors import NotFound as Missing
    from ownlens.ml.models.evaluation import write_task_report
    from ownlens.ml.registry import store

    result = task.train(client)
    key, new = task.primary_metric, result.metrics.get(task.primary_metric)
    try:
        current = store.get(client, task.name, "production")
        stored = json.loads(current["metrics"] or "{}")
        comparable = stored.get("test_date") == result.split.get("test_date") and stored.get(key) is not None
        promoted = not comparable or new is None or new >= stored[key]
    except Missing:
        promoted = True
    if promoted:
        store.promote(client, task.name, result.model.version)
    report = write_task_report(task, result, reports_dir / "models" / task.name / str(result.model.version))
    from ownlens.ml.monitoring.abtest import AB_TASK_MODELS, running

    served = store.load(client, task.name, "production")
    test = running(client, task.name) if task.name in AB_TASK_MODELS else None
    stored_batch = task.predict_batch(client, served, scoring_date, **({"ab_test": test} if test else {}))
    return {"version": result.model.version, "promoted": promoted, "production": served.version, "metric": key,
            "value": new, "oracle": (result.oracle_metrics or {}).get(key), "test_rows": result.split["test_rows"],
            "predictions": stored_batch["rows"], "prediction_table": task.output_table, "report": str(report)}
