"""Commands for the warehouse and its data: init, simulate, status, explore, and the ``features`` sub-app."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from ownlens.ml.cli.common import Dsn, app, connect, console, dsn_option, emit, json_option, log, out, parse_date, progress
from ownlens.ml.errors import InvalidInput

features_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Build and check point-in-time feature tables.")
app.add_typer(features_app, name="features")

TABLE_ROWS = """
SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'
  AND NOT startsWith(name, '_') ORDER BY name
"""
FEATURE_DATES = "SELECT DISTINCT feature_date FROM customer_user_features ORDER BY feature_date"


@app.command(epilog="Examples: ownlens-ml init --dsn chdb:///data/ownlens/warehouse\n\n"
                    "ownlens-ml init --dsn 'clickhouse://user:pw@host:8123/ownlens' --map my_tables.json")
def init(
    mapping: Optional[Path] = typer.Option(None, "--map", help="JSON file mapping contract input tables onto your own "
                                                                "tables (views, no copy): see `ownlens-ml contract`."),
    dsn: Dsn = dsn_option(),
):
    """Create (or migrate) every OwnLens table, then check that every table, yours included, has the columns and
    types OwnLens reads (extra columns are fine); safe to run again. With --map, the input tables it names become
    views over your tables first."""
    from ownlens.ml import schema
    from ownlens.ml.schema import inputs
    from ownlens.ml.warehouse import describe_dsn, resolve_dsn

    names = inputs.read_mapping(mapping) if mapping else None
    client = connect(dsn)
    applied = schema.apply(client)
    mapped = inputs.map_tables(client, names) if names else []
    if mapped:
        from ownlens.ml.data.loaders import reload_reference_dictionaries

        reload_reference_dictionaries(client)
    version = schema.current_version(client)
    problems = schema.mismatches(client)
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise InvalidInput(f"{len(problems)} difference(s) between the warehouse's tables and what OwnLens reads: {shown}. "
                           "Alter those tables (or map them with --map, or replace them with views that have these columns) "
                           "and run init again")
    msg = f"applied migrations {applied}" if applied else "already up to date"
    views = f"; {len(mapped)} input table(s) read through views: {', '.join(mapped)}" if mapped else ""
    out.print(f"warehouse {describe_dsn(resolve_dsn(dsn))}: schema version {version} ({msg}){views}; every table matches the contract")


@app.command(epilog="Examples: ownlens-ml contract\n\nownlens-ml contract --table customer_sessions --json")
def contract(
    table: Optional[str] = typer.Option(None, "--table", help="Only this input table."),
    dsn: Dsn = dsn_option(),
    as_json: bool = json_option(),
):
    """The input tables OwnLens reads from your warehouse: each column's type and meaning, and which models use the
    table. Map your own tables onto them with `init --map FILE` (see the README's "Your own data")."""
    from ownlens.ml.schema import inputs

    if table is not None and table not in inputs.BY_NAME:
        raise InvalidInput(f"{table!r} is not an input table: choose one of {', '.join(inputs.BY_NAME)}")
    rows = [r for r in inputs.describe(connect(dsn)) if table is None or r["table"] == table]
    if as_json:
        out.print_json(json.dumps({"inputs": rows}))
        return
    from rich.table import Table

    for name in dict.fromkeys(r["table"] for r in rows):
        part = [r for r in rows if r["table"] == name]
        shown = Table(title=f"{name}: {part[0]['table_meaning']} Used by: {part[0]['used_by']}.", title_justify="left")
        for column in ("column", "type", "meaning"):
            shown.add_column(column)
        for r in part:
            shown.add_row(r["column"], r["type"], r["meaning"])
        out.print(shown)


@app.command(epilog="Example: ownlens-ml simulate --users 20000 --days 90 --start 2026-01-05 --seed 7")
def simulate(
    users: int = typer.Option(20_000, help="Number of users."),
    days: int = typer.Option(90, help="Number of days of activity."),
    start: str = typer.Option("2026-01-05", help="First simulated day, YYYY-MM-DD."),
    seed: int = typer.Option(7, help="Random seed; the same seed gives the same data."),
    articles_per_day: int = typer.Option(120, help="Articles published per day across brands."),
    drift_at: Optional[str] = typer.Option(None, help="Inject drift from this day on (activity drops 40 %)."),
    dsn: Dsn = dsn_option(),
    as_json: bool = json_option(),
):
    """Fill the warehouse with a simulated publisher and the true answers it used (replaces earlier data)."""
    from ownlens.ml import schema
    from ownlens.ml.data.loaders import reload_reference_dictionaries
    from ownlens.ml.simulation import SimulationConfig
    from ownlens.ml.simulation import simulate as run

    cfg = SimulationConfig(users=users, days=days, start=parse_date(start, "--start"), seed=seed,
                           articles_per_day=articles_per_day, drift_at=parse_date(drift_at, "--drift-at"))
    cfg.validate()
    client = connect(dsn)
    schema.require(client)
    started = time.perf_counter()
    with progress() as bar:
        task = bar.add_task("simulating users", total=users)
        result = run(client, cfg, progress=lambda done, total: bar.update(task, completed=done))
    reload_reference_dictionaries(client)
    result["seconds"] = round(time.perf_counter() - started, 1)
    log.info("simulated", extra={"fields": result})
    emit(result, as_json, "simulation")


@features_app.command("build", epilog="Examples: ownlens-ml features build --date 2026-02-01\n\nownlens-ml features build --from 2026-02-01 --to 2026-02-28\n\nownlens-ml features build --date 2026-02-01 --from-history   (after correcting past sessions in place)")
def features_build(
    on: Optional[str] = typer.Option(None, "--date", help="Feature date D: features use data before D."),
    start: Optional[str] = typer.Option(None, "--from", help="First date of a range."),
    end: Optional[str] = typer.Option(None, "--to", help="Last date of a range (inclusive)."),
    dsn: Dsn = dsn_option(),
    as_json: bool = json_option("the rows written"),
    from_history: bool = typer.Option(
        False, "--from-history",
        help="Compute user features from all history, not from the stored per-user state of an earlier date. A state "
             "is reused only while it counts exactly the sessions stored before its date; use this after past sessions "
             "were changed in place (same count)."),
):
    """Compute customer_user_features, labels, daily summaries and editorial performance for dates, inside ClickHouse."""
    from rich.table import Table

    from ownlens.ml.features.build import build_features, date_range

    if on and (start or end):
        raise InvalidInput("give either --date or --from/--to, not both")
    if on:
        dates = [parse_date(on, "--date")]
    elif start and end:
        dates = date_range(parse_date(start, "--from"), parse_date(end, "--to"))
    else:
        raise InvalidInput("say which date to build: --date YYYY-MM-DD, or --from YYYY-MM-DD --to YYYY-MM-DD")
    client = connect(dsn)
    results = {}
    with progress() as bar:
        task = bar.add_task("building features", total=len(dates))
        for d in dates:
            results[str(d)] = build_features(client, d, from_history=from_history and d == dates[0])
            log.info("features built", extra={"fields": {"date": str(d), **results[str(d)]}})
            bar.advance(task)
    if as_json:
        out.print_json(json.dumps(results))
        return
    table = Table(title="rows written")
    table.add_column("date")
    tables = list(next(iter(results.values())))
    for name in tables:
        table.add_column(name.removeprefix("customer_").removeprefix("editorial_"), justify="right")
    for d, counts in results.items():
        table.add_row(d, *[str(counts[n]) for n in tables])
    out.print(table)


@features_app.command("quality", epilog="Example: ownlens-ml features quality --date 2026-02-01")
def features_quality(
    on: Optional[str] = typer.Option(None, "--date", help="Feature date to check (default: latest built)."),
    dsn: Dsn = dsn_option(),
    as_json: bool = json_option("the report"),
):
    """Check customer_user_features: row count, duplicates, missing values, ranges, freshness. Exits 1 on a failure."""
    from ownlens.ml.data.loaders import latest_feature_date
    from ownlens.ml.data.quality import check_user_features

    client = connect(dsn)
    d = parse_date(on, "--date") or latest_feature_date(client)
    report = check_user_features(client, d)
    if as_json:
        out.print_json(json.dumps({"table": report.table, "date": str(d), "rows": report.rows, "ok": report.ok,
                                   "checks": [c.__dict__ for c in report.checks]}))
    else:
        out.print(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@features_app.command("dbt", epilog="Example: ownlens-ml features dbt --out deploy/dbt")
def features_dbt(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the dbt project into (its files are replaced)."),
    as_json: bool = json_option("the files written"),
):
    """Write the customer feature SQL as a dbt-clickhouse project (the SELECTs `features build` runs, with the
    feature date as a dbt variable), for teams that build their tables with dbt."""
    from ownlens.ml.features import dbt

    written = [str(p) for p in dbt.write(out_dir)]
    if as_json:
        out.print_json(json.dumps({"project": str(out_dir), "files": written}))
    else:
        out.print(f"dbt project written to {out_dir} ({len(written)} files): cd {out_dir} && dbt run --vars '{{feature_date: 2026-03-09}}'")


@app.command(epilog="Example: ownlens-ml explore --date 2026-02-01 --out reports/exploration")
def explore(
    on: Optional[str] = typer.Option(None, "--date", help="Feature date to describe (default: latest built)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: $OWNLENS_HOME/reports/exploration)."),
    dsn: Dsn = dsn_option(),
):
    """Write the data-exploration report (HTML with plots, plus CSV tables)."""
    from ownlens.ml.data.exploration import explore as run
    from ownlens.ml.data.loaders import latest_feature_date
    from ownlens.ml.models.oracle import ensure_user_truth
    from ownlens.ml.settings import get_settings

    client = connect(dsn)
    target = out_dir or get_settings().reports_dir / "exploration"
    d = parse_date(on, "--date") or latest_feature_date(client)
    with console.status("writing exploration report"):
        ensure_user_truth(client, [d])  # on a simulation, the true rates beside the observed ones
        path = run(client, target, d)
    out.print(f"exploration report: {path}")


@app.command(epilog="Example: ownlens-ml status --json")
def status(dsn: Dsn = dsn_option(), as_json: bool = json_option()):
    """Show the warehouse: schema version, data range, rows per table, feature dates built; exits 1 when the data
    is incomplete (a simulation was killed before it finished)."""
    from ownlens.ml import schema
    from ownlens.ml.features.build import data_range
    from ownlens.ml.simulation.publisher import unfinished
    from ownlens.ml.warehouse import describe_dsn, resolve_dsn

    client = connect(dsn)
    schema.require(client)
    span = data_range(client)
    rows = dict(client.query(TABLE_ROWS).result_rows)
    dates = [str(d) for (d,) in client.query(FEATURE_DATES).result_rows]
    started = unfinished(client)
    incomplete = (f"a simulation started at {started} did not finish, so the data is partial: run `ownlens-ml simulate` "
                  "again" if started is not None else None)
    payload = {"dsn": describe_dsn(resolve_dsn(dsn)), "schema_version": schema.current_version(client),
               "complete": incomplete is None, "incomplete": incomplete,
               "data_from": str(span[0]) if span else None, "data_to": str(span[1]) if span else None,
               "feature_dates": dates, "rows": {k: int(v or 0) for k, v in rows.items()}}
    if as_json:
        out.print_json(json.dumps(payload))
    else:
        emit({k: v for k, v in payload.items() if k not in ("rows", "incomplete")}, False, "warehouse")
        emit({k: v for k, v in payload["rows"].items() if v}, False, "rows")
    if incomplete:
        console.print(f"incomplete: {incomplete}")
        raise typer.Exit(1)
