"""The drift report of a model and date, as one HTML page (what Evidently's data-drift report shows): for the
predictions and every input, the statistic that decides, its thresholds and status beside PSI, JS and KS; the
reference and current distributions side by side (ten bins at the reference's deciles, or the most common values,
counted in ClickHouse); and each column's drift over the dates monitored so far (ml_model_monitoring).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.monitoring.drift import Drift, column_values, distribution
from ownlens.ml.monitoring.monitor import PREDICTIONS, MonitoringReport

PER_FIGURE = 12
HISTORY = """
SELECT monitoring_date, if(monitor_type = 'prediction_drift', 'prediction', feature_name) AS column, metric_value, threshold
FROM ml_model_monitoring
WHERE model_name = {m:String} AND monitor_type IN ('feature_drift', 'prediction_drift') AND monitoring_date <= {d:Date}
  AND NOT isNaN(metric_value)
ORDER BY monitoring_date
"""


def summary(report: MonitoringReport) -> pd.DataFrame:
    """One row per compared column (the predictions first), largest drift first."""
    drifts = ([report.prediction_drift] if report.prediction_drift else []) + sorted(
        report.drift, key=lambda d: (bool(d.skipped), -(d.size if d.size == d.size else 0)))
    columns = ["column", "kind", "statistic", "value", "warn at", "alert at", "status", "PSI", "JS", "KS", "reference rows",
               "current rows", "note"]
    return pd.DataFrame([{
        "column": d.name, "kind": d.kind, "statistic": d.metric, "value": None if d.skipped else d.size,
        "warn at": d.limits[0], "alert at": d.limits[1], "status": d.status, "PSI": d.psi, "JS": d.js, "KS": d.ks_statistic,
        "reference rows": d.reference_rows, "current rows": d.current_rows, "note": d.skipped or ("grows with time" if d.trending else ""),
    } for d in drifts], columns=columns)


def _distributions(client: Client, model, report: MonitoringReport) -> list[tuple[Drift, list]]:
    out = []
    if report.prediction_drift:
        params = {"refs": report.references, "cur": report.current, "model": model.name,
                  "value": "prediction_value" if model.prediction_drift == "numeric" else "prediction_label"}
        out.append((report.prediction_drift, distribution(client, PREDICTIONS, params, report.prediction_drift.kind)))
    if report.drift:
        inputs = model.inputs
        expressions = {name: expression for name, expression, _ in inputs.drift_columns("uf")}
        where = getattr(model, "population", "1")
        for d in sorted((d for d in report.drift if not d.skipped), key=lambda d: -d.size):
            params = {"refs": list(d.references or report.references), "cur": report.current, "table": inputs.table,
                      "date_column": "feature_date"}
            out.append((d, distribution(client, column_values(expressions[d.name], d.kind, where), params, d.kind)))
    return out


def _distribution_figures(plt, shown: list[tuple[Drift, list]]) -> list[str]:
    from ownlens.ml.data.exploration import _figure_html

    figures = []
    for start in range(0, len(shown), PER_FIGURE):
        part = shown[start:start + PER_FIGURE]
        rows = math.ceil(len(part) / 3)
        fig, axes = plt.subplots(rows, 3, figsize=(13, 3.1 * rows), squeeze=False)
        for ax, (d, bins) in zip(axes.flat, part):
            x = range(len(bins))
            ax.bar([i - 0.2 for i in x], [b[1] for b in bins], 0.4, label="reference", color="#9aa7b8")
            ax.bar([i + 0.2 for i in x], [b[2] for b in bins], 0.4, label="current", color="#d9534f" if d.status == "alert" else
                   "#f0ad4e" if d.status == "warning" else "#4a7fb5")
            ax.set_xticks(list(x), [b[0] for b in bins], rotation=40, ha="right", fontsize=6)
            value = "skipped" if d.skipped else f"{d.metric} {d.size:.3f}"
            ax.set_title(f"{d.name}: {value} ({d.status})", fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
        for ax in list(axes.flat)[len(part):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        figures.append(_figure_html(fig))
    return figures


def _history_figure(client: Client, model, report: MonitoringReport, plt) -> str | None:
    from ownlens.ml.data.exploration import _figure_html

    history = pd.DataFrame(client.query(HISTORY, parameters={"m": model.name, "d": report.current}).result_rows,
                           columns=["date", "column", "value", "threshold"])
    if history.empty:
        return None
    latest = history[history["date"] == history["date"].max()].sort_values("value", ascending=False)
    columns = list(dict.fromkeys(["prediction", *latest["column"].head(8)]))
    predicted = (history["column"] == "prediction").any()
    fig, axes = plt.subplots(1, 2 if predicted else 1, figsize=(13 if predicted else 7, 3.8), squeeze=False)
    ax_in, ax_pred = axes[0][0], axes[0][-1]
    for column in columns:
        rows = history[history["column"] == column]
        if rows.empty:
            continue
        ax = ax_pred if column == "prediction" else ax_in
        ax.plot(pd.to_datetime(rows["date"]), rows["value"], marker="o", ms=3, label=column)
        ax.axhline(rows["threshold"].iloc[-1], ls="--", lw=0.8, color="grey")
    ax_in.set_title("inputs (the 8 largest on the latest date; dashed: alert)", fontsize=9)
    if predicted:
        ax_pred.set_title("predictions (dashed: alert)", fontsize=9)
    for ax in axes[0]:
        ax.tick_params(labelsize=7)
        ax.set_ylabel("Wasserstein (sd) or PSI", fontsize=8)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return _figure_html(fig)


def write_drift_report(client: Client, model, report: MonitoringReport, path: Path) -> Path:
    """Write the report of ``report`` (``monitor.monitor``'s result, already in ml_model_monitoring) to ``path``."""
    from ownlens.ml.data.exploration import _table_html, no_figures_note, pyplot

    plt = pyplot()

    path.parent.mkdir(parents=True, exist_ok=True)
    references = ", ".join(str(d) for d in report.references) or "none"
    alerts = report.alerts
    table = summary(report)
    sections = [("Summary", f"<p>{len(alerts)} past the alert threshold" + (": " + html.escape("; ".join(alerts)) if alerts else "")
                 + ". Numbers are judged by the Wasserstein distance in standard deviations of the reference, categories by "
                 "PSI; JS and KS beside them for reference; no p-values (with enough rows every shift is significant).</p>"
                 + (_table_html(table.set_index("column"), "{:,.3f}") if len(table) else
                    "<p>No inputs or predictions to compare for this model and date (see the notes and its realised performance).</p>"))]
    figures = _distribution_figures(plt, _distributions(client, model, report)) if plt is not None else []
    if figures:
        sections.append(("Reference and current distributions, largest drift first", "".join(figures)))
    history = _history_figure(client, model, report, plt) if plt is not None else None
    if history:
        sections.append(("Drift over the dates monitored", history))
    if plt is None:
        sections.append(no_figures_note())
    sections += [("Notes", "".join(f"<p>{html.escape(n)}</p>" for n in report.notes))] if report.notes else []
    if report.performance:
        sections.append(("Realised performance", _table_html(pd.DataFrame([report.performance]), "{:,.4f}")))
    if plt is not None:
        plt.close("all")
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>OwnLens drift report</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px}table.t{border-collapse:collapse;font-size:12px}"
        "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}img{max-width:100%}</style></head>"
        f"<body><h1>Drift report: {html.escape(model.name)} {html.escape(report.version or '')}</h1>"
        f"<p>current {report.current} · reference {html.escape(references)}</p>{body}</body></html>")
    return path
