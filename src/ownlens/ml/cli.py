"""The ownlens-ml command line: one place that turns OwnLens errors into one-line messages and exit codes."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ownlens.ml.errors import InvalidInput, NotFound, OwnLensError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="OwnLens ML: features, models and serving on your ClickHouse warehouse.")
features_app = typer.Typer(no_args_is_help=True, help="Build and check point-in-time feature tables.")
app.add_typer(features_app, name="features")
models_app = typer.Typer(no_args_is_help=True, help="List, inspect, promote and roll back registered model versions.")
app.add_typer(models_app, name="models")
abtest_app = typer.Typer(no_args_is_help=True, help="A/B tests between two versions of a model.")
app.add_typer(abtest_app, name="abtest")
console = Console(stderr=True)
out = Console()
log = logging.getLogger("ownlens")

DSN_HELP = "Warehouse DSN: chdb:///abs/path (embedded) or http://user:pass@host:8123/db; default $OWNLENS_DSN, else $OWNLENS_HOME/warehouse."


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                   "logger": record.name, "event": record.getMessage()}
        payload.update(getattr(record, "fields", {}))
        return json.dumps(payload, default=str)


@app.callback()
def _setup(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
    log_json: bool = typer.Option(False, "--log-json", help="Write logs as JSON lines (for log shippers)."),
):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_json else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("ownlens")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose or log_json else logging.WARNING)
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)  # its failures reach the user as our one-line errors


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option} {value!r} is not a date: use YYYY-MM-DD, e.g. 2026-02-01") from None


def _connect(dsn: str | None):
    from ownlens.ml.warehouse import connect

    return connect(dsn)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False, disable=not console.is_terminal and False)


def _emit(payload: dict, as_json: bool, title: str) -> None:
    if as_json:
        out.print_json(json.dumps(payload, default=str))
        return
    table = Table(title=title, show_header=False)
    for key, value in payload.items():
        table.add_row(str(key), str(value))
    out.print(table)


@app.command(epilog="Example: ownlens-ml init --dsn chdb:///data/ownlens/warehouse")
def init(dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP)):
    """Create (or migrate) every OwnLens table; safe to run again."""
    from ownlens.ml import schema
    from ownlens.ml.warehouse import describe_dsn, resolve_dsn

    client = _connect(dsn)
    applied = schema.apply(client)
    version = schema.current_version(client)
    msg = f"applied migrations {applied}" if applied else "already up to date"
    out.print(f"warehouse {describe_dsn(resolve_dsn(dsn))}: schema version {version} ({msg})")


@app.command(epilog="Example: ownlens-ml simulate --users 20000 --days 90 --start 2026-01-05 --seed 7")
def simulate(
    users: int = typer.Option(20_000, help="Number of users."),
    days: int = typer.Option(90, help="Number of days of activity."),
    start: str = typer.Option("2026-01-05", help="First simulated day, YYYY-MM-DD."),
    seed: int = typer.Option(7, help="Random seed; the same seed gives the same data."),
    articles_per_day: int = typer.Option(120, help="Articles published per day across brands."),
    drift_at: Optional[str] = typer.Option(None, help="Inject drift from this day on (activity drops 40 %)."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
):
    """Fill the warehouse with a simulated publisher and the true answers it used (replaces earlier data)."""
    from ownlens.ml import schema
    from ownlens.ml.data.loaders import reload_reference_dictionaries
    from ownlens.ml.simulation import SimulationConfig
    from ownlens.ml.simulation import simulate as run

    cfg = SimulationConfig(users=users, days=days, start=parse_date(start, "--start"), seed=seed,
                           articles_per_day=articles_per_day, drift_at=parse_date(drift_at, "--drift-at"))
    cfg.validate()
    client = _connect(dsn)
    schema.require(client)
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("simulating users", total=users)
        result = run(client, cfg, progress=lambda done, total: progress.update(task, completed=done))
    reload_reference_dictionaries(client)
    result["seconds"] = round(time.perf_counter() - started, 1)
    log.info("simulated", extra={"fields": result})
    _emit(result, as_json, "simulation")


@features_app.command("build", epilog="Examples: ownlens-ml features build --date 2026-02-01\n\nownlens-ml features build --from 2026-02-01 --to 2026-02-28\n\nownlens-ml features build --date 2026-02-01 --from-history   (after correcting past sessions in place)")
def features_build(
    on: Optional[str] = typer.Option(None, "--date", help="Feature date D: features use data before D."),
    start: Optional[str] = typer.Option(None, "--from", help="First date of a range."),
    end: Optional[str] = typer.Option(None, "--to", help="Last date of a range (inclusive)."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print rows written as JSON."),
    from_history: bool = typer.Option(
        False, "--from-history",
        help="Compute user features from all history, not from the stored per-user state of an earlier date. A state "
             "is reused only while it counts exactly the sessions stored before its date; use this after past sessions "
             "were changed in place (same count)."),
):
    """Compute customer_user_features, labels, daily summaries and editorial performance for dates, inside ClickHouse."""
    from ownlens.ml.features.build import build_features, date_range

    if on and (start or end):
        raise InvalidInput("give either --date or --from/--to, not both")
    if on:
        dates = [parse_date(on, "--date")]
    elif start and end:
        dates = date_range(parse_date(start, "--from"), parse_date(end, "--to"))
    else:
        raise InvalidInput("say which date to build: --date YYYY-MM-DD, or --from YYYY-MM-DD --to YYYY-MM-DD")
    client = _connect(dsn)
    results = {}
    with _progress() as progress:
        task = progress.add_task("building features", total=len(dates))
        for d in dates:
            results[str(d)] = build_features(client, d, from_history=from_history and d == dates[0])
            log.info("features built", extra={"fields": {"date": str(d), **results[str(d)]}})
            progress.advance(task)
    if as_json:
        out.print_json(json.dumps(results))
    else:
        table = Table(title="rows written")
        table.add_column("date")
        names = list(next(iter(results.values())))
        for name in names:
            table.add_column(name.replace("customer_", "").replace("editorial_", ""), justify="right")
        for d, counts in results.items():
            table.add_row(d, *[str(counts[n]) for n in names])
        out.print(table)


@features_app.command("quality", epilog="Example: ownlens-ml features quality --date 2026-02-01")
def features_quality(
    on: Optional[str] = typer.Option(None, "--date", help="Feature date to check (default: latest built)."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
):
    """Check customer_user_features: row count, duplicates, missing values, ranges, freshness. Exits 1 on a failure."""
    from ownlens.ml.data.loaders import latest_feature_date
    from ownlens.ml.data.quality import check_user_features

    client = _connect(dsn)
    d = parse_date(on, "--date") or latest_feature_date(client)
    report = check_user_features(client, d)
    if as_json:
        out.print_json(json.dumps({"table": report.table, "date": str(d), "rows": report.rows, "ok": report.ok,
                                   "checks": [c.__dict__ for c in report.checks]}))
    else:
        out.print(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command(epilog="Example: ownlens-ml explore --date 2026-02-01 --out reports/exploration")
def explore(
    on: Optional[str] = typer.Option(None, "--date", help="Feature date to describe (default: latest built)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: $OWNLENS_HOME/reports/exploration)."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Write the data-exploration report (HTML with plots, plus CSV tables)."""
    from ownlens.ml.data.exploration import explore as run
    from ownlens.ml.settings import get_settings

    client = _connect(dsn)
    target = out_dir or get_settings().reports_dir / "exploration"
    with console.status("writing exploration report"):
        path = run(client, target, parse_date(on, "--date"))
    out.print(f"exploration report: {path}")


@app.command(epilog="Example: ownlens-ml status --json")
def status(
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
):
    """Show the warehouse: schema version, data range, rows per table, feature dates built."""
    from ownlens.ml import schema
    from ownlens.ml.features.build import data_range
    from ownlens.ml.warehouse import describe_dsn, resolve_dsn

    client = _connect(dsn)
    schema.require(client)
    span = data_range(client)
    rows = dict(client.query(
        "SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' "
        "AND NOT startsWith(name, '_') ORDER BY name"
    ).result_rows)
    dates = [str(d) for (d,) in client.query("SELECT DISTINCT feature_date FROM customer_user_features ORDER BY feature_date").result_rows]
    payload = {"dsn": describe_dsn(resolve_dsn(dsn)), "schema_version": schema.current_version(client),
               "data_from": str(span[0]) if span else None, "data_to": str(span[1]) if span else None,
               "feature_dates": dates, "rows": {k: int(v or 0) for k, v in rows.items()}}
    if as_json:
        out.print_json(json.dumps(payload))
        return
    _emit({k: v for k, v in payload.items() if k != "rows"}, False, "warehouse")
    _emit({k: v for k, v in payload["rows"].items() if v}, False, "rows")


def _spec(name: str):
    from ownlens.ml.models import get_spec

    return get_spec(name)


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return obj


def _brief(value) -> str:
    """A nested metric compactly: floats to 3 significant digits, dicts as {k v, ...}."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {_brief(v)}" for k, v in value.items()) + "}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _metrics_table(title: str, metrics: dict, oracle: dict | None, targets: dict) -> Table:
    table = Table(title=title)
    for column in ("metric", "model", "oracle", "seed target"):
        table.add_column(column, justify="right")
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            o = (oracle or {}).get(key)
            target = targets.get(key)
            mark = "" if target is None else (" ✓" if value >= target else " ✗")
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            table.add_row(key, shown, "" if o is None else f"{o:.4f}", "" if target is None else f"{target}{mark}")
    return table


TRAINABLE = "churn, conversion, engagement, click, segmentation, recommendation, ad_placement, all, or baselines"


@app.command(epilog="Examples: ownlens-ml train churn --promote\n\nownlens-ml train conversion --test-date 2026-03-02 --json\n\n"
                    "ownlens-ml train baselines --model churn")
def train(
    model: str = typer.Argument(..., help=f"What to train: {TRAINABLE}."),
    feature_date: Optional[str] = typer.Option(None, "--date", help="Train and test on one feature date (random split)."),
    test_date: Optional[str] = typer.Option(None, "--test-date", help="Test on this date, train on up to 4 labelled dates before it (default: the latest labelled date)."),
    brand: Optional[str] = typer.Option(None, "--brand", help="Only this brand (id, code or name)."),
    limit: Optional[int] = typer.Option(None, help="At most this many rows."),
    test_size: float = typer.Option(0.25, help="Test share for a random split."),
    algorithm: Optional[str] = typer.Option(None, help="Override the model's algorithm (xgboost, lightgbm, logistic, random_forest, mlp, linear)."),
    tune: int = typer.Option(0, help="Optuna trials of hyper-parameter search (needs the tune extra); 0 = off."),
    cv: int = typer.Option(0, help="Also report k-fold cross-validation on the training rows; 0 = off."),
    baseline_model: Optional[str] = typer.Option(None, "--model", help="With `baselines`: only this model."),
    clusters: Optional[int] = typer.Option(None, help="segmentation: the number of segments (default: picked by silhouette)."),
    promote: bool = typer.Option(False, help="Promote the new version to production."),
    report: bool = typer.Option(True, help="Write the HTML evaluation report."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics (oracle included) as JSON."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Train a model on customer_user_features, evaluate it on later dates next to the oracle, register it."""
    from ownlens.ml.models import ALL_MODELS, MODELS, TASK_MODELS
    from ownlens.ml.models.evaluation import write_report
    from ownlens.ml.models.training import compare_baselines, train as run_training
    from ownlens.ml.registry import store
    from ownlens.ml.settings import get_settings

    if model not in (*ALL_MODELS, "all", "baselines"):
        raise InvalidInput(f"unknown model {model!r}: choose {TRAINABLE}")
    client = _connect(dsn)
    split = dict(feature_date=parse_date(feature_date, "--date"), test_date=parse_date(test_date, "--test-date"),
                 brand_id=brand, limit=limit, test_size=test_size)
    results = {}
    if model == "baselines":
        names = [baseline_model] if baseline_model else list(MODELS)
        for name in names:
            with console.status(f"training {name} and its baselines"):
                results[name] = compare_baselines(_spec(name), client, **split)
        if as_json:
            out.print_json(json.dumps(_rounded(results), default=str))
            return
        for name, result in results.items():
            primary = _spec(name).primary_metric
            table = Table(title=f"{name}: {primary} on {result['split']['test_rows']:,} test rows ({result['split']['kind']})")
            table.add_column("algorithm"); table.add_column(primary, justify="right"); table.add_column("fit s", justify="right")
            for algo, metrics in result["results"].items():
                table.add_row(algo, f"{metrics[primary]:.4f}", f"{metrics['fit_s']:.1f}")
            if result["oracle"]:
                table.add_row("oracle", f"{result['oracle'][primary]:.4f}", "")
            out.print(table)
        return
    names = ALL_MODELS if model == "all" else [model]
    for name in names:
        if name in TASK_MODELS:
            task = TASK_MODELS[name]
            options = {k: v for k, v in (("limit", limit), ("n_clusters", clusters)) if v is not None}
            with console.status(f"training {name}"):
                result = task.train(client, feature_date=split["feature_date"], test_date=split["test_date"],
                                    brand_id=brand, seed=0, **options)
            summary = result.summary()
            if promote:
                store.promote(client, name, result.model.version)
                summary["stage"] = "production"
            if report:
                from ownlens.ml.models.evaluation import write_task_report

                summary["report"] = str(write_task_report(task, result, get_settings().reports_dir / "models" / name /
                                                          str(result.model.version)))
            results[name] = summary
            if not as_json:
                out.print(_metrics_table(f"{name} {result.model.version} · {result.split['test_rows']:,} test rows · "
                                         f"{result.split['kind']} (test {result.split.get('test_date')})",
                                         result.metrics, result.oracle_metrics, task.targets))
                for key, value in result.metrics.items():
                    if isinstance(value, dict):
                        out.print(f"{key}: {_brief(value)}")
                if "report" in summary:
                    out.print(f"report: {summary['report']}")
            continue
        spec = _spec(name)
        with console.status(f"training {name}"):
            result = run_training(spec, client, algorithm=algorithm, tune_trials=tune, cv_folds=cv, **split)
        summary = result.summary()
        if promote:
            store.promote(client, name, result.model.version)
            summary["stage"] = "production"
        if report:
            path = write_report(spec, result.model, result.test, result.metrics, result.oracle_metrics,
                                get_settings().reports_dir / "models" / name / str(result.model.version), result.split)
            summary["report"] = str(path)
        results[name] = summary
        if not as_json:
            out.print(_metrics_table(f"{name} {result.model.version} · {result.split['test_rows']:,} test rows · "
                                     f"{result.split['kind']}", result.metrics, result.oracle_metrics, spec.targets))
            if "report" in summary:
                out.print(f"report: {summary['report']}")
    if as_json:
        out.print_json(json.dumps(_rounded(results if len(results) > 1 else results[names[0]]), default=str))


@app.command(epilog="Examples: ownlens-ml predict churn --date 2026-03-09\n\nownlens-ml predict churn --user 3f2b8c1e-0000-4000-8000-000000000000\n\nownlens-ml predict recommendation --user 3f2b8c1e-0000-4000-8000-000000000000 --json")
def predict(
    model: str = typer.Argument(..., help="Model name: churn, conversion, engagement, click, segmentation, recommendation or ad_placement."),
    feature_date: Optional[str] = typer.Option(None, "--date", help="Feature date to score (default: the latest built)."),
    brand: Optional[str] = typer.Option(None, "--brand", help="Only this brand (id, code or name)."),
    version: str = typer.Option("production", help="Version or stage to use (falls back to the latest when nothing is in production)."),
    user: Optional[list[str]] = typer.Option(None, "--user", help="Score just these users (repeatable) and print the result."),
    article: Optional[list[str]] = typer.Option(None, "--article", help="With --user, for click: the articles to score (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Score users with a registered model and store the predictions (ml_model_predictions and the model's table).
    While an A/B test of the model runs, each user is scored by the version of their arm (unless --version is given)."""
    from ownlens.ml.data.loaders import latest_feature_date
    from ownlens.ml.models.prediction import Scorer, predict_batch
    from ownlens.ml.registry import store

    from ownlens.ml.models import TASK_MODELS

    client = _connect(dsn)
    if model in TASK_MODELS:
        return _predict_task(client, TASK_MODELS[model], store.load(client, model, version),
                             parse_date(feature_date, "--date") or latest_feature_date(client), brand, user, as_json)
    spec = _spec(model)
    trained = store.load(client, model, version)
    d = parse_date(feature_date, "--date") or latest_feature_date(client)
    if user:
        keys = list(user)
        if spec.source is not None:
            if not article:
                raise InvalidInput(f"{model} scores user x article pairs: add --article ID")
            keys = [(u, a) for u in user for a in article]
        frame = Scorer(spec, client, trained).score(keys, d)
        if as_json:
            out.print_json(json.dumps({"predictions": json.loads(frame.to_json(orient="records", date_format="iso")),
                                       "unknown_users": frame.attrs.get("unknown_users", []),
                                       "message": frame.attrs.get("message")}))
        else:
            out.print(frame.to_string(index=False) if not frame.empty else "no predictions")
            if frame.attrs.get("message"):
                console.print(frame.attrs["message"])
        return
    from ownlens.ml.monitoring.abtest import running

    test = running(client, model) if version == "production" else None
    if test:
        console.print(f"A/B test {test.name} is running: users get {test.version_a} or {test.version_b} by their arm")
    with _progress() as progress:
        task = progress.add_task(f"scoring {model}", total=None)
        result = predict_batch(spec, client, trained, d, brand, progress=lambda n: progress.update(task, completed=n),
                               ab_test=test)
    _emit(result, as_json, f"{model} predictions")


def _predict_task(client, task, trained, d, brand, users, as_json: bool) -> None:
    """`predict` for segmentation, recommendation and ad placement: given users printed, else the batch stored."""
    if users:
        from ownlens.ml.models.advertising.placement import decide_users
        from ownlens.ml.models.content.recommendation import recommend_users
        from ownlens.ml.models.customer.segmentation import segment_of

        look = {"segmentation": segment_of, "recommendation": recommend_users, "ad_placement": decide_users}[task.name]
        frame = look(client, trained, list(users), d)
        if as_json:
            out.print_json(frame.to_json(orient="records", date_format="iso"))
        else:
            out.print(frame.to_string(index=False) if not frame.empty else "no such users on that date")
        return
    from ownlens.ml.monitoring.abtest import AB_TASK_MODELS, running

    options = {}
    if task.name in AB_TASK_MODELS and (test := running(client, task.name)) is not None:
        console.print(f"A/B test {test.name} is running: users get {test.version_a} or {test.version_b} by their arm")
        options["ab_test"] = test
    with _progress() as progress:
        bar = progress.add_task(f"{task.name} for {d}", total=None)
        result = task.predict_batch(client, trained, d, brand, progress=lambda n: progress.update(bar, completed=n), **options)
    _emit(result, as_json, f"{task.name} ({task.output_table})")


@app.command(epilog="Example: ownlens-ml evaluate churn --version production --test-date 2026-03-02 --json")
def evaluate(
    model: str = typer.Argument(..., help="Model name: churn, conversion or engagement."),
    version: str = typer.Option("production", help="Version or stage to evaluate."),
    test_date: Optional[str] = typer.Option(None, "--test-date", help="Labelled feature date to evaluate on (default: the latest)."),
    brand: Optional[str] = typer.Option(None, "--brand", help="Only this brand."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics (oracle included) as JSON."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Evaluate a registered version on labelled rows: metrics, oracle, seed targets and an HTML report."""
    from ownlens.ml.models.evaluation import evaluate_registered

    spec = _spec(model)
    result = evaluate_registered(spec, _connect(dsn), version, parse_date(test_date, "--test-date"), brand_id=brand)
    if as_json:
        out.print_json(json.dumps(_rounded(result), default=str))
        return
    out.print(_metrics_table(f"{model} {result['version']} on {result['split']['test_date']}", result["metrics"],
                             result["oracle"], spec.targets))
    out.print(f"report: {result['report']}")


@models_app.command("list", epilog="Example: ownlens-ml models list churn --json")
def models_list(
    name: Optional[str] = typer.Argument(None, help="Only this model."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Registered versions, newest first, with stage and primary metric."""
    from ownlens.ml.registry import store

    rows = store.versions(_connect(dsn), name)
    if name and rows.empty:
        _spec(name)  # an unknown name gets the clear error
    from ownlens.ml.models import MODELS, TASK_MODELS

    records = []
    for _, r in rows.iterrows():
        metrics = json.loads(r["metrics"] or "{}")
        known = MODELS.get(r["model_name"]) or TASK_MODELS.get(r["model_name"])
        key = known.primary_metric if known else "roc_auc"
        records.append({"model": r["model_name"], "version": r["model_version"], "stage": r["stage"], "algorithm": r["algorithm"],
                        "metric": key, "value": metrics.get(key), "oracle": (metrics.get("oracle") or {}).get(key),
                        "created_at": str(r["created_at"])})
    if as_json:
        out.print_json(json.dumps(_rounded(records)))
        return
    table = Table(title="registered models")
    for column in ("model", "version", "stage", "algorithm", "metric", "value", "oracle", "created_at"):
        table.add_column(column)
    for r in records:
        table.add_row(*["" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in r.values()])
    out.print(table if records else "no models registered yet: ownlens-ml train churn")


@models_app.command("show", epilog="Example: ownlens-ml models show churn 1.0.0")
def models_show(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument("latest", help="Version, stage (production...) or latest."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Everything the registry knows about one version, as JSON."""
    from ownlens.ml.registry import store

    row = store.get(_connect(dsn), name, version)
    row["metrics"] = json.loads(row["metrics"] or "{}")
    row["input_schema"] = json.loads(row["input_schema"] or "{}")
    row["feature_names"] = list(row["feature_names"])
    out.print_json(json.dumps(_rounded(row), default=str))


@models_app.command("promote", epilog="Example: ownlens-ml models promote churn 1.1.0")
def models_promote(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version to promote."),
    stage: str = typer.Option("production", help="Target stage: candidate, staging, production or archived."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Move a version to a stage; the previous production version is archived."""
    from ownlens.ml.registry import store

    row = store.promote(_connect(dsn), name, version, stage)
    out.print(f"{name} {row['model_version']} is now {row['stage']}")


@models_app.command("rollback", epilog="Example: ownlens-ml models rollback churn")
def models_rollback(
    name: str = typer.Argument(..., help="Model name."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Put the previous production version back in production."""
    from ownlens.ml.registry import store

    row = store.rollback(_connect(dsn), name)
    out.print(f"{name} {row['model_version']} is production again")


@app.command(epilog="Examples: ownlens-ml monitor churn --date 2026-03-09\n\nownlens-ml monitor churn --date 2026-03-09 --reference 2026-02-09 --json")
def monitor(
    model: str = typer.Argument(..., help="Model name: churn, conversion or engagement (drift and performance); "
                                          "recommendation, ad_placement or segmentation (realised performance or "
                                          "segment shares of stored outputs)."),
    current: Optional[str] = typer.Option(None, "--date", help="Date to check (default: the latest feature date)."),
    reference: Optional[str] = typer.Option(None, help="Date to compare with (default: the end of the production version's training window)."),
    fail_on_alert: bool = typer.Option(False, help="Exit with code 1 when anything drifted past the alert threshold."),
    retrain_on_alert: bool = typer.Option(False, help="On alerts, train a challenger and promote it if it scores at least as "
                                                      "well as production on the same test rows."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Input and prediction drift (PSI, JS, KS, in ClickHouse) and realised performance, into ml_model_monitoring."""
    from ownlens.ml.data.loaders import latest_feature_date
    from ownlens.ml.models import TASK_MODELS
    from ownlens.ml.monitoring.monitor import monitor as run_monitor, monitor_task

    client = _connect(dsn)
    if model in TASK_MODELS:
        d = parse_date(current, "--date") or latest_feature_date(client)
        found = monitor_task(client, TASK_MODELS[model], d)
        if found is None:
            raise NotFound(f"the days that judge {model}'s outputs of {d} have not all passed yet: monitor an earlier date")
        if as_json:
            out.print_json(json.dumps(_rounded(found.to_dict()), default=str))
        else:
            drift = found.prediction_drift
            moved = {"compared_with": str(found.reference), "shares_psi": drift.psi, "status": drift.status} if drift else {}
            _emit({"version": found.version, **moved, **found.performance}, False, f"{model} on {d} (written to ml_model_monitoring)")
        return
    spec = _spec(model)
    d = parse_date(current, "--date") or latest_feature_date(client)
    report = run_monitor(client, spec, d, parse_date(reference, "--reference"))
    if as_json:
        out.print_json(json.dumps(_rounded(report.to_dict()), default=str))
    else:
        table = Table(title=f"{model} {report.version}: {report.reference or '(no earlier features)'} → {report.current}")
        for column in ("input", "PSI", "JS", "KS", "status"):
            table.add_column(column, justify="right")
        rows = sorted(report.drift, key=lambda x: -x.psi)
        if report.prediction_drift:
            rows.insert(0, report.prediction_drift)
        for x in rows:
            table.add_row(x.name, f"{x.psi:.3f}", f"{x.js:.3f}", "" if x.ks_statistic is None else f"{x.ks_statistic:.3f}", x.status)
        out.print(table)
        if report.performance:
            out.print("realised performance: " + ", ".join(f"{k} {v:.4g}" for k, v in report.performance.items()))
        if report.alerts:
            from ownlens.ml.monitoring.drift import INPUT_THRESHOLDS, PREDICTION_THRESHOLDS

            i, p = spec.input_thresholds or INPUT_THRESHOLDS, spec.prediction_thresholds or PREDICTION_THRESHOLDS
            console.print(f"{len(report.alerts)} past the alert threshold (inputs: PSI >= {i.psi_alert} or KS >= {i.ks_alert}; "
                          f"predictions: PSI >= {p.psi_alert} or KS >= {p.ks_alert}); rows written to ml_model_monitoring")
    if retrain_on_alert and report.alerts:
        from ownlens.ml.monitoring.monitor import retrain_on_alert as retrain

        duel = retrain(client, spec, report)
        production = "none" if duel["production"] is None else f"{duel['production']:.4f} ({duel['production_version']})"
        console.print(f"retrained: {duel['version']} {duel['metric']} {duel['new']:.4f} vs production {production}: "
                      + ("promoted" if duel["promoted"] else "kept as a candidate"))
    if fail_on_alert and report.alerts:
        raise typer.Exit(1)


@abtest_app.command("create", epilog="Example: ownlens-ml abtest create churn-v2 --model churn --a 1.0.0 --b 1.1.0 --split 0.5 --start 2026-02-02")
def abtest_create(
    name: str = typer.Argument(..., help="A name for the test."),
    model: str = typer.Option(..., help="Model name (churn, conversion or recommendation)."),
    a: str = typer.Option(..., "--a", help="Version of variant A (the control)."),
    b: str = typer.Option(..., "--b", help="Version of variant B (the challenger)."),
    split: float = typer.Option(0.5, help="Share of users assigned to B."),
    start: Optional[str] = typer.Option(None, help="First feature date in the test (default: the latest built)."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Start an A/B test: users are split between the versions by a stable hash of the user id."""
    from ownlens.ml.monitoring import abtest

    test = abtest.create(_connect(dsn), name, model, a, b, split, parse_date(start, "--start"))
    out.print(f"A/B test {test.name} running: {model} {a} (A) vs {b} (B, {split:.0%} of users) from {test.start}")


def _abtest_table(name: str, results: dict) -> Table:
    table = Table(title=f"A/B test {name}: dates {', '.join(results['dates'])}")
    columns = [k for k in next(iter(results["arms"].values())) if k != "version"]
    for column in ("variant", "version", *columns):
        table.add_column(column, justify="right")
    for arm, r in results["arms"].items():
        table.add_row(arm, r["version"], *[f"{r[c]:,}" if isinstance(r[c], int) else _brief(r[c]) for c in columns])
    return table


@abtest_app.command("status", epilog="Example: ownlens-ml abtest status churn-v2 --json")
def abtest_status(
    name: str = typer.Argument(..., help="The test's name."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Outcomes of each variant so far, the two-proportion test and the probability each is best."""
    from ownlens.ml.monitoring import abtest

    test, results = abtest.status(_connect(dsn), name)
    if as_json:
        out.print_json(json.dumps(_rounded({"test": name, "status": test.status, **results}), default=str))
        return
    out.print(_abtest_table(name, results))
    t = results["test"]
    out.print(f"lift B-A {t['lift']:+.4f}, z {t['z']:.2f}, p {t['p_value']:.4g}; P(A best) {t['prob_a_best']:.3f}, "
              f"P(B best) {t['prob_b_best']:.3f}")


@abtest_app.command("conclude", epilog="Example: ownlens-ml abtest conclude churn-v2")
def abtest_conclude(
    name: str = typer.Argument(..., help="The test's name."),
    alpha: float = typer.Option(0.05, help="Significance level for declaring a winner."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Final analysis; records the winner (A, B or none) on the test."""
    from ownlens.ml.monitoring import abtest

    test = abtest.conclude(_connect(dsn), name, alpha)
    if as_json:
        out.print_json(json.dumps(_rounded({"test": name, "status": test.status, "winner": test.winner, **test.results}), default=str))
        return
    out.print(_abtest_table(name, test.results))
    out.print(f"winner: {test.winner} (p {test.results['test']['p_value']:.4g}, alpha {alpha})")


@app.command(epilog="Examples: ownlens-ml serve --port 8000\n\nOWNLENS_API_KEYS=secret1,secret2 ownlens-ml serve --host 0.0.0.0")
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    realtime: Optional[list[str]] = typer.Option(None, "--realtime", help="Also run this model's real-time worker inside the server (repeatable)."),
    monitor_every: float = typer.Option(60.0, help="Minutes between scheduled monitoring passes inside the server (drift on new "
                                              "feature dates, performance once labels are in); 0 turns it off."),
    retrain_on_alert: bool = typer.Option(False, help="When scheduled monitoring raises drift alerts, train a challenger and "
                                                      "promote it if it scores at least as well as production on the same rows."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Run the REST API (OpenAPI docs at /docs). With the embedded warehouse this process holds it, and runs
    scheduled monitoring (and any --realtime workers) itself."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one request, one thread: no oversubscription on small machines
    import uvicorn

    from ownlens.ml.serving.app import create_app
    from ownlens.ml.settings import get_settings

    from ownlens.ml import schema

    client = _connect(dsn)  # fail here, with the usual one-line error, if the warehouse is unreachable or held
    schema.require(client)
    settings = get_settings()
    console.print(f"serving on http://{host}:{port} (docs at /docs)" + (" with API keys" if settings.api_key_set else ""))
    for name in realtime or []:
        _spec(name)
    if monitor_every < 0:
        raise InvalidInput("--monitor-every must be >= 0 minutes (0 turns scheduled monitoring off)")
    app_ = create_app(settings, client, realtime=list(realtime or []), monitor_interval_s=monitor_every * 60 or None,
                      retrain_on_alert=retrain_on_alert)
    uvicorn.run(app_, host=host, port=port, log_level="warning",
                access_log=False)


@app.command(epilog="Examples: ownlens-ml worker churn --once\n\nownlens-ml worker churn --interval 10 --since 2026-03-19T00:00:00")
def worker(
    model: str = typer.Argument(..., help="Model to score with (churn, conversion or engagement)."),
    once: bool = typer.Option(False, help="Catch up with the events so far, then exit."),
    interval: float = typer.Option(10.0, help="Seconds to wait when there is nothing new."),
    since: Optional[str] = typer.Option(None, help="Restart from this time (ISO); default: where the worker stopped, or now for a new one."),
    window_hours: float = typer.Option(1.0, help="At most this much event time per pass."),
    name: Optional[str] = typer.Option(None, help="Worker name (its watermark); default: worker-MODEL."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """Real-time inference: score users as new events arrive, resuming exactly where it stopped."""
    from datetime import datetime, timezone

    from ownlens.ml.serving import worker as realtime
    from ownlens.ml.serving.models import ServedModels

    spec = _spec(model)
    if spec.source is not None:
        raise InvalidInput(f"{model} scores user x article pairs; the real-time worker covers user models")
    client = _connect(dsn)
    worker_name = name or f"worker-{model}"
    if since:
        try:
            at = datetime.fromisoformat(since).replace(tzinfo=timezone.utc)
        except ValueError:
            raise InvalidInput(f"--since {since!r} is not a time: use ISO format, e.g. 2026-03-19T00:00:00") from None
        realtime.set_watermark(client, worker_name, model, at)
    served = ServedModels(client, feature_cache_ttl_s=0)  # production, promotions and A/B arms, as the API serves them
    passes = realtime.run(client, spec, lambda user: served.scorer(model, user), worker_name, interval_s=interval, once=once,
                          max_window=timedelta(hours=window_hours))
    out.print(f"{worker_name}: {len(passes)} windows, {sum(p.users for p in passes):,} users with new events, "
              f"{sum(p.scored for p in passes):,} scored; watermark {realtime.watermark(client, worker_name)}")


def _print_summary(title: str, summary, extra_rows: list[tuple[str, str]] = ()) -> None:
    table = Table(title=title, show_header=False)
    for row in extra_rows:
        table.add_row(*row)
    table.add_row("feature dates", ", ".join(str(d) for d in summary.feature_dates))
    for step, outcome, seconds in summary.steps:
        if not step.startswith("model "):
            table.add_row(step, f"{outcome} · {seconds:.1f} s")
    for name, m in summary.models.items():
        if "error" in m:
            table.add_row(f"model {name}", f"failed: {m['error']}")
            continue
        versus = f" (oracle {m['oracle']:.3f})" if m.get("oracle") is not None else ""
        stage = "promoted" if m["promoted"] else f"kept production {m['production']}"
        drift = f" · {m['drift_alerts']} drift alerts" if "drift_alerts" in m else ""
        table.add_row(f"model {name} {m['version']}", f"{m['metric']} {m['value']:.3f}{versus} · {stage} · "
                                                      f"{m['predictions']:,} predictions → {m['prediction_table']}{drift} · {m['report']}")
    for name, path in summary.reports.items():
        table.add_row(f"{name} report", path)
    out.print(table)


def _run_with_progress(client, options):
    from ownlens.ml.pipelines.run import run_all

    with console.status("starting") as status:
        return run_all(client, options, progress=lambda step: status.update(step))


@app.command("run", epilog="Examples: ownlens-ml run\n\nownlens-ml run --models-only --model churn --json")
def run_pipeline(
    skip_exploration: bool = typer.Option(False, help="Do not write the exploration report."),
    skip_features: bool = typer.Option(False, help="Use the feature dates already built."),
    models_only: bool = typer.Option(False, help="Only train, evaluate and score (no features, exploration or monitoring)."),
    skip_prerequisites: bool = typer.Option(False, help="Skip the schema and data checks."),
    model: Optional[list[str]] = typer.Option(None, "--model", help="Only these models (repeatable); default: all."),
    rebuild_features: bool = typer.Option(False, help="Rebuild feature dates that already exist."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """The master run: features, exploration, every model (train, evaluate, promote if better, score), monitoring."""
    from ownlens.ml.pipelines.run import RunOptions

    for name in model or []:
        _spec(name)
    options = RunOptions(skip_exploration, skip_features, models_only, skip_prerequisites, list(model) if model else None,
                         rebuild_features)
    summary = _run_with_progress(_connect(dsn), options)
    if as_json:
        out.print_json(json.dumps(_rounded({"feature_dates": [str(d) for d in summary.feature_dates],
                                            "steps": [{"step": s, "outcome": o, "seconds": round(t, 2)} for s, o, t in summary.steps],
                                            "models": summary.models, "reports": summary.reports}), default=str))
    else:
        _print_summary("OwnLens run", summary)
    if any("error" in m for m in summary.models.values()):
        raise typer.Exit(1)


@app.command(epilog="Example: ownlens-ml demo --users 5000 --days 90")
def demo(
    users: int = typer.Option(5_000, help="Number of simulated users."),
    days: int = typer.Option(90, help="Number of simulated days (75 or more: models train on dates whose 30-day labels were complete 30 days before the test date)."),
    seed: int = typer.Option(7, help="Random seed."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """The whole loop on the embedded warehouse: init, simulate a publisher, then `ownlens-ml run`."""
    from ownlens.ml import schema
    from ownlens.ml.data.loaders import reload_reference_dictionaries
    from ownlens.ml.pipelines.run import RunOptions
    from ownlens.ml.simulation import SimulationConfig
    from ownlens.ml.simulation import simulate as run_simulation
    from ownlens.ml.warehouse import describe_dsn, resolve_dsn

    cfg = SimulationConfig(users=users, days=days, seed=seed)
    cfg.validate()
    if days < 45:
        raise InvalidInput("--days must be at least 45 for the demo: labels need 30 days after a feature date")
    client = _connect(dsn)
    started = time.perf_counter()
    schema.apply(client)
    with _progress() as progress:
        task = progress.add_task("simulating users", total=users)
        sim = run_simulation(client, cfg, progress=lambda done, total: progress.update(task, completed=done))
    reload_reference_dictionaries(client)
    summary = _run_with_progress(client, RunOptions(rebuild_features=True))
    _print_summary(f"OwnLens demo finished in {time.perf_counter() - started:.0f} s", summary, [
        ("warehouse", describe_dsn(resolve_dsn(dsn))),
        ("simulated", f"{sim['users']:,} users, {sim['sessions']:,} sessions, {sim['events']:,} events, {sim['from']} .. {sim['to']}"),
    ])
    out.print("next: ownlens-ml models list · ownlens-ml predict churn --user ID · ownlens-ml predict recommendation --user ID · "
              "ownlens-ml monitor churn · "
              "ownlens-ml serve (REST API, docs at /docs) · python: ChurnPredictor().predict(user_id)")


def main() -> None:
    """Entry point: runs the app and turns errors into one line and an exit code, never a traceback."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    try:
        app()
    except OwnLensError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except ClickHouseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"warehouse error: {first}\n")
        sys.exit(4)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
