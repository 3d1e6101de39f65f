"""The master run (seed 003's run_ml.py): exploration, features, every model, predictions, evaluation, monitoring."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import NotFound

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
    from ownlens.ml.models import get, names
    from ownlens.ml.settings import get_settings

    options = options or RunOptions()
    summary = RunSummary()
    say = progress or (lambda step: None)
    models = [get(n) for n in options.models or names()]
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
        built = {r[0] for r in client.query(FEATURE_DATES).result_rows}
        todo = [d for d in summary.feature_dates if options.rebuild_features or d not in built]
        for d in todo:
            say(f"building features for {d}")
            _timed(summary, f"features {d}", lambda d=d: f"{build_features(client, d)['customer_user_features']:,} users")
    scoring_date = summary.feature_dates[-1]
    if not (options.skip_exploration or options.models_only):
        say("writing the exploration report")
        from ownlens.ml.data.exploration import REPORTS_EXTRA, explore, pyplot
        from ownlens.ml.models.oracle import ensure_user_truth

        labelled = summary.feature_dates[-2] if len(summary.feature_dates) > 1 else scoring_date

        def exploration():
            ensure_user_truth(client, [labelled])  # the true rates beside the observed ones, on a simulation
            return str(explore(client, reports_dir / "exploration", labelled))
        if pyplot() is None:  # a server install without the reports extra: everything else still runs
            summary.steps.append(("exploration", f"skipped: its figures need matplotlib ({REPORTS_EXTRA})", 0.0))
        else:
            summary.reports["exploration"] = str(_timed(summary, "exploration", exploration))

    for model in models:
        say(f"training {model.name}")
        started = time.perf_counter()
        try:
            summary.models[model.name] = run_model(client, model, scoring_date, monitor=not options.models_only)
            summary.steps.append((f"model {model.name}", "ok", time.perf_counter() - started))
        except Exception as exc:  # one model failing must not stop the others
            log.exception("model %s failed", model.name)
            summary.models[model.name] = {"error": str(exc).splitlines()[0][:300]}
            summary.steps.append((f"model {model.name}", f"failed: {str(exc).splitlines()[0][:200]}", time.perf_counter() - started))
    return summary


def run_model(client: Client, model, scoring_date: date, monitor: bool) -> dict:
    """Train, report, promote when at least as good as production on the same test rows, score the latest date, and
    monitor it against the production version's training data."""
    from ownlens.ml.monitoring.monitor import monitor as run_monitor
    from ownlens.ml.pipelines.inference import predict
    from ownlens.ml.pipelines.training import train_model

    result, summary = train_model(model, client, promote=True)
    duel = summary["promotion"]
    scored = predict(model, client, feature_date=scoring_date)
    out = {"version": result.model.version, "promoted": duel["promoted"], "production": duel["version"] if duel["promoted"]
           else duel["production_version"], "metric": duel["metric"], "value": duel["new"],
           "oracle": (result.oracle_metrics or {}).get(duel["metric"]), "test_rows": result.split["test_rows"],
           "predictions": scored["rows"], "prediction_table": scored["table"], "report": summary["report"]}
    if monitor:  # against the production version's training data, as `monitor` and `serve` do: the same alerts
        try:
            report = run_monitor(client, model, scoring_date)
            out["drift_alerts"] = len(report.alerts)
        except NotFound as exc:  # nothing to compare yet (no features or outputs of that date)
            log.info("monitoring %s on %s skipped: %s", model.name, scoring_date, exc)
    return out


FEATURE_DATES = "SELECT DISTINCT feature_date FROM customer_user_features"
