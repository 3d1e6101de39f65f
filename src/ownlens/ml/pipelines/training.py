"""Training as a step of the platform: train and register, write the evaluation report, promote by the one policy.

Also where seed 000's Quick Start imports its pipelines from: ``from ownlens.ml.pipelines.training import
ChurnTrainingPipeline`` (and ``{Model}TrainingPipeline`` for every registered model, the same classes as in the
model's own module).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from clickhouse_connect.driver.client import Client

from ownlens.ml.models import MODELS
from ownlens.ml.models.protocol import TrainingResult
from ownlens.ml.models.reports import write_report
from ownlens.ml.models.runs import train
from ownlens.ml.pipelines.promotion import challenge
from ownlens.ml.registry import mlflow_mirror


def report_dir(model, version: str | None) -> Path:
    from ownlens.ml.settings import get_settings

    return get_settings().reports_dir / "models" / model.name / str(version)


def train_model(model, client: Client, *, promote: bool = False, report: bool = True, register: bool = True,
                description: str = "", **options) -> tuple[TrainingResult, dict]:
    """Train ``model``, register the version, write its report, and with ``promote`` put it in production when it
    does at least as well as production on the same test rows. Returns the result and a summary for people."""
    result = train(model, client, register=register, description=description, **options)
    summary = result.summary()
    if report:
        summary["report"] = str(write_report(model, result, report_dir(model, result.model.version)))
        mlflow_mirror.log_report(result.extra.get("mlflow_run_id"), Path(summary["report"]))
    if promote and register:
        duel = challenge(model, client, result)
        summary.update({"promotion": duel, "stage": "production" if duel["promoted"] else "candidate"})
    return result, summary


def _title(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def __getattr__(name: str):
    """``{Model}TrainingPipeline`` of any registered model, imported when first asked for."""
    for model, path in MODELS.items():
        if name == f"{_title(model)}TrainingPipeline":
            return getattr(import_module(path.split(":")[0]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *(f"{_title(m)}TrainingPipeline" for m in MODELS)])
