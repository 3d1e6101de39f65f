"""Evaluation of a registered version on labelled rows, for any model: metrics next to the oracle, a warning when
the rows overlap what the version was trained on, and the HTML report."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import as_date
from ownlens.ml.models.protocol import TrainingResult
from ownlens.ml.models.reports import write_report
from ownlens.ml.models.trained import load
from ownlens.ml.registry import store


def evaluate_registered(model, client: Client, version: str = "production", test_date=None, output_dir: Path | None = None,
                        brand_id=None) -> dict:
    """Score a registered ``version`` of ``model`` on ``test_date`` (default: the latest date it can be judged on)."""
    from ownlens.ml.settings import get_settings

    trained = load(client, model.name, version)
    test = model.test_set(client, test_date=as_date(test_date, "test_date") if test_date else None, brand_id=brand_id)
    evaluation = model.evaluate(client, trained, test)
    split = {"kind": "evaluation", **test_description(test)}
    row = store.get(client, model.name, trained.version) if trained.version else {}
    trained_to = row.get("training_data_end")
    if trained_to is not None and pd.notna(trained_to) and split.get("test_date"):
        clear = as_date(trained_to) + timedelta(days=model.label_days)
        if as_date(split["test_date"]) < clear:
            split["warning"] = (f"optimistic: the labels of {split['test_date']} overlap those the model trained on (dates to "
                                f"{as_date(trained_to)}, labels {model.label_days} days long); evaluate on {clear} or later")
    out_dir = output_dir or get_settings().reports_dir / "models" / model.name / str(trained.version)
    result = TrainingResult(trained, evaluation.metrics, evaluation.oracle_metrics, split, evaluation.scored)
    report = write_report(model, result, Path(out_dir))
    return {"model": model.name, "version": trained.version, "split": split, "metrics": evaluation.metrics,
            "oracle": evaluation.oracle_metrics, "report": str(report)}


def test_description(test) -> dict:
    """The test date and row count of a test set: a frame of rows (supervised), or an object that says them."""
    if isinstance(test, pd.DataFrame):
        dates = sorted({str(d) for d in test["feature_date"]}) if "feature_date" in test else []
        return {"test_date": dates[-1] if dates else None, "test_rows": len(test)}
    return {"test_date": str(getattr(test, "d", "")) or None, "test_rows": getattr(test, "rows", None)}
