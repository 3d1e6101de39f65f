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

from ownlens.ml.errors import InvalidInput, OwnLensError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="OwnLens ML: features, models and serving on your ClickHouse warehouse.")
features_app = typer.Typer(no_args_is_help=True, help="Build and check point-in-time feature tables.")
app.add_typer(features_app, name="features")
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


@features_app.command("build", epilog="Examples: ownlens-ml features build --date 2026-02-01\n\nownlens-ml features build --from 2026-02-01 --to 2026-02-28")
def features_build(
    on: Optional[str] = typer.Option(None, "--date", help="Feature date D: features use data before D."),
    start: Optional[str] = typer.Option(None, "--from", help="First date of a range."),
    end: Optional[str] = typer.Option(None, "--to", help="Last date of a range (inclusive)."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print rows written as JSON."),
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
            results[str(d)] = build_features(client, d)
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


def demo_feature_dates(first: date, last: date) -> list[date]:
    """Weekly feature dates with complete 30-day label windows, plus the day after the data ends."""
    latest_labelled = last - timedelta(days=29)
    dates = []
    d = latest_labelled
    while d > first + timedelta(days=14) and len(dates) < 4:
        dates.append(d)
        d -= timedelta(days=7)
    return sorted(dates) + [last + timedelta(days=1)]


@app.command(epilog="Example: ownlens-ml demo --users 5000 --days 75")
def demo(
    users: int = typer.Option(5_000, help="Number of simulated users."),
    days: int = typer.Option(75, help="Number of simulated days."),
    seed: int = typer.Option(7, help="Random seed."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
):
    """The whole loop on the embedded warehouse: init, simulate a publisher, build features, write the exploration report."""
    from ownlens.ml import schema
    from ownlens.ml.data.exploration import explore as write_report
    from ownlens.ml.data.loaders import reload_reference_dictionaries
    from ownlens.ml.features.build import build_features, data_range
    from ownlens.ml.settings import get_settings
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
        first, last = data_range(client)
        dates = demo_feature_dates(first, last)
        task = progress.add_task("building features", total=len(dates))
        for d in dates:
            build_features(client, d)
            progress.advance(task)
    report = write_report(client, get_settings().reports_dir / "exploration", dates[-2] if len(dates) > 1 else dates[-1])
    table = Table(title=f"OwnLens demo finished in {time.perf_counter() - started:.0f} s", show_header=False)
    table.add_row("warehouse", describe_dsn(resolve_dsn(dsn)))
    table.add_row("simulated", f"{sim['users']:,} users, {sim['sessions']:,} sessions, {sim['events']:,} events, {sim['from']} .. {sim['to']}")
    table.add_row("feature dates", ", ".join(str(d) for d in dates))
    table.add_row("exploration report", str(report))
    table.add_row("next", "ownlens-ml status · ownlens-ml features quality · python: UserFeaturesLoader().load(include_references=True)")
    out.print(table)


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
