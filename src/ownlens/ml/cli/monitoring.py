"""Commands that watch models: ``monitor`` (drift and realised performance) and the ``abtest`` sub-app."""

from __future__ import annotations

import json
from typing import Optional

import typer

from ownlens.ml.cli.common import (
    MODEL_NAMES,
    Dsn,
    app,
    brief,
    connect,
    console,
    dsn_option,
    emit,
    json_option,
    model,
    out,
    parse_date,
    rounded,
)
from ownlens.ml.errors import NotFound

abtest_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="A/B tests between two versions of a model.")
app.add_typer(abtest_app, name="abtest")


@app.command(epilog="Examples: ownlens-ml monitor churn --date 2026-03-09\n\n"
                    "ownlens-ml monitor churn --date 2026-03-09 --reference 2026-02-09 --json\n\n"
                    "ownlens-ml monitor recommendation --date 2026-03-02\n\n"
                    "ownlens-ml monitor churn --report")
def monitor(
    name: str = typer.Argument(..., metavar="MODEL", help=f"Model name: {MODEL_NAMES}."),
    current: Optional[str] = typer.Option(None, "--date", help="Date to check (default: the latest feature date)."),
    reference: Optional[str] = typer.Option(None, help="Date to compare with (default: the production version's training dates)."),
    fail_on_alert: bool = typer.Option(False, help="Exit with code 1 when anything drifted past the alert threshold."),
    retrain_on_alert: bool = typer.Option(False, help="On alerts, train a challenger and promote it if it scores at least as "
                                                      "well as production on the same test rows."),
    html_report: bool = typer.Option(False, "--report", help="Also write the drift report (distributions, statistics, drift "
                                                             "over time) as an HTML page under OWNLENS_HOME/reports/drift/."),
    as_json: bool = json_option("the full report"),
    dsn: Dsn = dsn_option(),
):
    """Drift of a model's inputs and stored predictions against the production version's training data (Wasserstein
    distance in standard deviations for numbers, PSI for categories; JS and KS beside them; in ClickHouse) and the
    realised performance of its stored outputs once their outcomes are known, into ml_model_monitoring."""
    from rich.table import Table

    from ownlens.ml.data.loaders import latest_feature_date
    from ownlens.ml.monitoring.drift import INPUT_THRESHOLDS, PREDICTION_THRESHOLDS
    from ownlens.ml.monitoring.monitor import monitor as run_monitor

    definition = model(name)
    client = connect(dsn)
    d = parse_date(current, "--date") or latest_feature_date(client)
    report = run_monitor(client, definition, d, parse_date(reference, "--reference"))
    if not report.drift and report.prediction_drift is None and report.performance is None:
        raise NotFound(f"nothing to monitor for {name} on {d} yet: no earlier date to compare with, and the days that "
                       "judge its outputs of that date have not all passed (monitor an earlier date)")
    written = None
    if html_report:
        from ownlens.ml.monitoring.report import write_drift_report
        from ownlens.ml.settings import get_settings

        written = write_drift_report(client, definition, report, get_settings().reports_dir / "drift" / f"{name}-{d}.html")
    if as_json:
        out.print_json(json.dumps(rounded(report.to_dict() | ({"report": str(written)} if written else {})), default=str))
    else:
        rows = sorted(report.drift, key=lambda x: (bool(x.skipped), -(x.size if x.size == x.size else 0)))
        if report.prediction_drift:
            rows.insert(0, report.prediction_drift)
        if rows:
            since = ", ".join(str(r) for r in report.references) or "(no earlier features)"
            table = Table(title=f"{name} {report.version}: {since} → {report.current}")
            for column in ("input", "Wasserstein (sd)", "PSI", "JS", "KS", "status"):
                table.add_column(column, justify="right")
            for x in rows:
                table.add_row(x.name, "" if x.wasserstein is None else f"{x.wasserstein:.3f}", "" if x.skipped else f"{x.psi:.3f}",
                              "" if x.skipped else f"{x.js:.3f}", "" if x.ks_statistic is None else f"{x.ks_statistic:.3f}", x.status)
            out.print(table)
            skipped = [x.name for x in rows if x.skipped]
            if skipped:
                out.print(f"skipped {', '.join(skipped)}: {next(x.skipped for x in rows if x.skipped)}")
        for note in report.notes:
            out.print(note)
        if written:
            out.print(f"drift report: {written}")
        if report.performance:
            emit(report.performance, False, f"{name} {report.version} on {d}: realised performance (written to ml_model_monitoring)")
        if report.alerts:
            i = definition.input_thresholds or INPUT_THRESHOLDS
            p = definition.prediction_thresholds or PREDICTION_THRESHOLDS
            console.print(f"{len(report.alerts)} past the alert threshold (inputs: Wasserstein >= {i.wasserstein_alert} sd or "
                          f"PSI >= {i.psi_alert}; predictions: Wasserstein >= {p.wasserstein_alert} sd or PSI >= {p.psi_alert}); "
                          "rows written to ml_model_monitoring")
    if retrain_on_alert and report.alerts:
        from ownlens.ml.pipelines.monitoring import retrain_on_alert as retrain

        duel = retrain(client, definition, report)
        production = "none" if duel["production"] is None else f"{duel['production']:.4f} ({duel['production_version']})"
        console.print(f"retrained: {duel['version']} {duel['metric']} {duel['new']:.4f} vs production {production}: "
                      + ("promoted" if duel["promoted"] else "kept as a candidate"))
    if fail_on_alert and report.alerts:
        raise typer.Exit(1)


@abtest_app.command("create", epilog="Example: ownlens-ml abtest create churn-v2 --model churn --a 1.0.0 --b 1.1.0 --split 0.5 --start 2026-02-02")
def abtest_create(
    name: str = typer.Argument(..., help="A name for the test."),
    of: str = typer.Option(..., "--model", help="The model whose versions are compared (one with an outcome per user, e.g. churn, conversion, recommendation)."),
    a: str = typer.Option(..., "--a", help="Version of variant A (the control)."),
    b: str = typer.Option(..., "--b", help="Version of variant B (the challenger)."),
    split: float = typer.Option(0.5, help="Share of users assigned to B."),
    start: Optional[str] = typer.Option(None, help="First feature date in the test (default: the latest built)."),
    dsn: Dsn = dsn_option(),
):
    """Start an A/B test: users are split between the versions by a stable hash of the user id."""
    from ownlens.ml.monitoring import abtest

    test = abtest.create(connect(dsn), name, of, a, b, split, parse_date(start, "--start"))
    out.print(f"A/B test {test.name} running: {of} {a} (A) vs {b} (B, {split:.0%} of users) from {test.start}")


def _abtest_report(name: str, results: dict) -> None:
    """Each arm's outcomes (when there are any), the dates left out and why, and the verdict."""
    for d, why in results.get("excluded_dates", {}).items():
        out.print(f"left out {d}: {why}")
    t = results["test"]
    if results["arms"]:
        out.print(_abtest_table(name, results))
    if t["p_value"] is not None:
        out.print(f"lift B-A {t['lift']:+.4f}, z {t['z']:.2f}, p {t['p_value']:.4g}; P(A best) {t['prob_a_best']:.3f}, "
                  f"P(B best) {t['prob_b_best']:.3f}; smallest detectable difference {t['minimum_detectable_effect']:.4f}")
    out.print(t["verdict"])


def _abtest_table(name: str, results: dict):
    from rich.table import Table

    table = Table(title=f"A/B test {name}: users once each, dates {', '.join(results['dates'])}")
    columns = [k for k in next(iter(results["arms"].values())) if k != "version"]
    for column in ("variant", "version", *columns):
        table.add_column(column, justify="right")
    for arm, r in results["arms"].items():
        table.add_row(arm, r["version"], *[f"{r[c]:,}" if isinstance(r[c], int) else brief(r[c]) for c in columns])
    return table


@abtest_app.command("status", epilog="Example: ownlens-ml abtest status churn-v2 --json")
def abtest_status(name: str = typer.Argument(..., help="The test's name."), as_json: bool = json_option(), dsn: Dsn = dsn_option()):
    """Outcomes of each variant so far, the two-proportion test and the probability each is best."""
    from ownlens.ml.monitoring import abtest

    test, results = abtest.status(connect(dsn), name)
    if as_json:
        out.print_json(json.dumps(rounded({"test": name, "status": test.status, **results}), default=str))
        return
    _abtest_report(name, results)


@abtest_app.command("refresh", epilog="Example: ownlens-ml abtest refresh --json")
def abtest_refresh(as_json: bool = json_option(), dsn: Dsn = dsn_option()):
    """Recompute the stored readout of every running test whose data changed since it was computed (the daily job
    runs it, so the console shows current readouts at once)."""
    from ownlens.ml.monitoring import abtest

    done = abtest.refresh_running(connect(dsn))
    if as_json:
        out.print_json(json.dumps({"recomputed": done}))
    else:
        out.print(f"recomputed: {', '.join(done)}" if done else "every running test's readout is current")


@abtest_app.command("conclude", epilog="Example: ownlens-ml abtest conclude churn-v2")
def abtest_conclude(
    name: str = typer.Argument(..., help="The test's name."),
    alpha: float = typer.Option(0.05, help="Significance level for declaring a winner."),
    as_json: bool = json_option(),
    dsn: Dsn = dsn_option(),
):
    """Final analysis; records the winner (A, B or none) on the test."""
    from ownlens.ml.monitoring import abtest

    test = abtest.conclude(connect(dsn), name, alpha)
    if as_json:
        out.print_json(json.dumps(rounded({"test": name, "status": test.status, "winner": test.winner, **test.results}), default=str))
        return
    _abtest_report(name, test.results)
    out.print(f"winner: {test.winner}")
