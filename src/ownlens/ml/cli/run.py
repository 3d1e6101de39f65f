"""The master run (``run``) and the whole loop on the embedded warehouse (``demo``)."""

from __future__ import annotations

import json
import time
from typing import Optional

import typer

from ownlens.ml.cli.common import Dsn, app, connect, console, dsn_option, json_option, model, out, progress, rounded
from ownlens.ml.errors import InvalidInput


def _print_summary(title: str, summary, extra_rows: list[tuple[str, str]] = ()) -> None:
    from rich.table import Table

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
        versus = f" (oracle {m['oracle']:.3f})" if isinstance(m.get("oracle"), (int, float)) else ""
        value = f"{m['value']:.3f}" if isinstance(m.get("value"), (int, float)) else "n/a"
        stage = "promoted" if m["promoted"] else f"kept production {m['production']}"
        drift = f" · {m['drift_alerts']} drift alerts" if "drift_alerts" in m else ""
        table.add_row(f"model {name} {m['version']}", f"{m['metric']} {value}{versus} · {stage} · "
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
    only: Optional[list[str]] = typer.Option(None, "--model", help="Only these models (repeatable); default: all."),
    rebuild_features: bool = typer.Option(False, help="Rebuild feature dates that already exist."),
    as_json: bool = json_option("the summary"),
    dsn: Dsn = dsn_option(),
):
    """The master run: features, exploration, every model (train, evaluate, promote if better, score), monitoring."""
    from ownlens.ml.pipelines.run import RunOptions

    for name in only or []:
        model(name)
    options = RunOptions(skip_exploration, skip_features, models_only, skip_prerequisites, list(only) if only else None,
                         rebuild_features)
    summary = _run_with_progress(connect(dsn), options)
    if as_json:
        out.print_json(json.dumps(rounded({"feature_dates": [str(d) for d in summary.feature_dates],
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
    dsn: Dsn = dsn_option(),
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
    client = connect(dsn)
    started = time.perf_counter()
    schema.apply(client)
    with progress() as bar:
        task = bar.add_task("simulating users", total=users)
        sim = run_simulation(client, cfg, progress=lambda done, total: bar.update(task, completed=done))
    reload_reference_dictionaries(client)
    summary = _run_with_progress(client, RunOptions(rebuild_features=True))
    _print_summary(f"OwnLens demo finished in {time.perf_counter() - started:.0f} s", summary, [
        ("warehouse", describe_dsn(resolve_dsn(dsn))),
        ("simulated", f"{sim['users']:,} users, {sim['sessions']:,} sessions, {sim['events']:,} events, {sim['from']} .. {sim['to']}"),
    ])
    out.print("next: ownlens-ml models list · ownlens-ml predict churn --user ID · ownlens-ml predict recommendation --user ID · "
              "ownlens-ml monitor churn · ownlens-ml serve (the console at /ui, REST API docs at /docs) · python: ChurnPredictor().predict(user_id)")
