"""Evaluation reports: metrics next to the oracle and the seed targets, with the plots a reviewer looks at."""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ownlens.ml.data.exploration import _figure_html, _table_html
from ownlens.ml.models import metrics as M
from ownlens.ml.models.trained import TrainedModel

SHAP_ROWS = 2000


def comparison(model, metrics: dict, oracle: dict | None, baselines: dict | None = None) -> pd.DataFrame:
    """One row per number the model reports: model, oracle, gap, seed target and whether the model meets it (plus baselines)."""
    rows = []
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        row = {"metric": key, "model": value}
        for name, values in (baselines or {}).items():
            row[name] = values.get(key)
        row["oracle"] = (oracle or {}).get(key)
        row["gap_to_oracle"] = row["oracle"] - value if isinstance(row["oracle"], (int, float)) and key != "threshold" else None
        target = model.targets.get(key)
        row["seed_target"] = target
        row["meets_target"] = None if target is None else M.meets(key, value, target)
        rows.append(row)
    return pd.DataFrame(rows).set_index("metric")


def binary_plots(test: pd.DataFrame, plt, threshold: float = 0.5) -> list[tuple[str, str]]:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    y = test["label"].astype(int).to_numpy()
    series = {"model": test["prediction"].to_numpy()}
    if test["oracle"].notna().all():
        series["oracle (true probability)"] = test["oracle"].to_numpy()
    out = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, p in series.items():
        fpr, tpr, _ = roc_curve(y, p)
        axes[0].plot(fpr, tpr, label=f"{name} (AUC {M.classification_metrics(y, p)['roc_auc']:.3f})")
        precision, recall, _ = precision_recall_curve(y, p)
        axes[1].plot(recall, precision, label=name)
        frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
        axes[2].plot(mean, frac, marker="o", label=name)
    axes[0].plot([0, 1], [0, 1], ls=":", color="grey"); axes[0].set_title("ROC"); axes[0].set_xlabel("false positive rate")
    axes[1].axhline(y.mean(), ls=":", color="grey"); axes[1].set_title("Precision-recall"); axes[1].set_xlabel("recall")
    axes[2].plot([0, 1], [0, 1], ls=":", color="grey"); axes[2].set_title("Calibration (quantile bins)")
    axes[2].set_xlabel("predicted probability"); axes[2].set_ylabel("observed rate")
    for ax in axes:
        ax.legend(fontsize=8); ax.grid(alpha=0.3)
    fig.tight_layout()
    out.append(("ROC, precision-recall and calibration", _figure_html(fig)))
    cm = confusion_matrix(y, (series["model"] >= threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v:,}", ha="center", va="center")
    ax.set_xticks([0, 1], ["0", "1"]); ax.set_yticks([0, 1], ["0", "1"])
    ax.set_xlabel(f"predicted (threshold {threshold:.3f})"); ax.set_ylabel("actual"); ax.set_title("Confusion matrix")
    out.append(("Confusion matrix", _figure_html(fig)))
    return out


def regression_plots(test: pd.DataFrame, plt) -> list[tuple[str, str]]:
    y, p = test["label"].to_numpy(float), test["prediction"].to_numpy(float)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    axes[0].scatter(y, p, s=4, alpha=0.3, label="model")
    if test["oracle"].notna().all():
        axes[0].scatter(y, test["oracle"], s=4, alpha=0.3, label="oracle (true expectation)")
    top = max(y.max(), p.max())
    axes[0].plot([0, top], [0, top], ls=":", color="grey"); axes[0].set_xlabel("actual"); axes[0].set_ylabel("predicted")
    axes[0].set_title("Predicted vs actual"); axes[0].legend(fontsize=8)
    axes[1].hist(y - p, bins=60, color="#3b6ea8"); axes[1].set_title("Residuals (actual - predicted)")
    fig.tight_layout()
    return [("Predicted vs actual, residuals", _figure_html(fig))]


def importance_plots(model: TrainedModel, test: pd.DataFrame, plt) -> list[tuple[str, str]]:
    importances = model.importances().head(20)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh(importances.index[::-1], importances.values[::-1], color="#3b6ea8")
    ax.set_title(f"Feature importance ({model.info.get('algorithm', '')})")
    out = [("Feature importance", _figure_html(fig))]
    sample = test.sample(min(SHAP_ROWS, len(test)), random_state=0)
    contributions = model.estimator.contributions(model.matrix(sample))
    if contributions is not None:
        order = np.argsort(-np.abs(contributions).mean(axis=0))[:12]
        X = model.matrix(sample)
        fig, ax = plt.subplots(figsize=(8, 5.5))
        for rank, j in enumerate(order[::-1]):
            values = X[:, j]
            finite = np.isfinite(values)
            scaled = np.zeros_like(values)
            if finite.any():
                lo, hi = np.nanpercentile(values[finite], [5, 95])
                scaled[finite] = np.clip((values[finite] - lo) / (hi - lo if hi > lo else 1), 0, 1)
            jitter = np.random.default_rng(j).uniform(-0.3, 0.3, len(values))
            ax.scatter(contributions[:, j], rank + jitter, c=scaled, cmap="coolwarm", s=3, alpha=0.6)
        ax.set_yticks(range(len(order)), [model.features[j] for j in order[::-1]], fontsize=8)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlabel("SHAP value (impact on the model output; colour: feature value low→high)")
        ax.set_title(f"SHAP summary ({len(sample):,} test rows)")
        out.append(("SHAP summary", _figure_html(fig)))
    return out


def write_report(model, result, out_dir: Path, baselines: dict | None = None) -> Path:
    """Write ``report.html``, ``metrics.json`` and ``comparison.csv`` for a model's evaluation (a TrainingResult, or
    a registered version's Evaluation wrapped in one); returns the report's path."""
    from ownlens.ml.data.exploration import no_figures_note, pyplot

    plt = pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    table = comparison(model, result.metrics, result.oracle_metrics, baselines)
    sections = [("Metrics against the oracle and the seed targets",
                 _table_html(table) + "<p>oracle: the same metric computed from the simulator's truth on exactly these "
                 "test rows: the best any model could reach.</p>")]
    if plt is None:
        sections.append(no_figures_note())
    else:
        sections += model.plots(result, plt) if model.plots else []
        plt.close("all")
    (out_dir / "metrics.json").write_text(json.dumps(
        {"model": model.name, "version": result.model.version, "split": result.split, "metrics": result.metrics,
         "oracle": result.oracle_metrics, "baselines": baselines}, indent=2, default=str))
    table.to_csv(out_dir / "comparison.csv")
    rows = result.split.get("test_rows")
    head = (f"{html.escape(model.name)} {html.escape(str(result.model.version or ''))} · {html.escape(model.description)} · "
            + (f"test rows: {rows:,} · " if isinstance(rows, int) else "")
            + f"split: {html.escape(json.dumps(result.split, default=str))}")
    return _page(out_dir / "report.html", model.name, head, sections)


def _page(path: Path, name: str, head: str, sections: list[tuple[str, str]]) -> Path:
    body = "".join(f"<h2>{html.escape(t)}</h2>{c}" for t, c in sections)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>OwnLens evaluation</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table.t{border-collapse:collapse;font-size:13px}"
        "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}img{max-width:100%}</style></head>"
        f"<body><h1>Model evaluation: {html.escape(name)}</h1><p>{head}</p>"
        f"<p>generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}</p>{body}</body></html>"
    )
    return path


def bars(plt, title: str, series: dict[str, dict[str, float]], ylabel: str) -> tuple[str, str]:
    """A grouped bar chart section: ``series`` maps a legend name to {category: value}."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    categories = list(dict.fromkeys(c for values in series.values() for c in values))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(np.arange(len(categories)) + i * width, [values.get(c) or 0 for c in categories], width, label=name)
    ax.set_xticks(np.arange(len(categories)) + width * (len(series) - 1) / 2, categories, rotation=15)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend()
    return title, _figure_html(fig)
