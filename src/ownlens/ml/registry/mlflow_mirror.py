"""The registry mirrored to MLflow for teams that use it (``MLFLOW_TRACKING_URI`` set, ``pip install
'ownlens[mlflow]'``): each training run with its parameters, metrics and the oracle's (``oracle_*``) and its HTML
report; each registered version as a loadable pyfunc model (``models/mlflow_pyfunc.py``) in the MLflow model
``ownlens-NAME``, tagged with its OwnLens version; each stage change as the version's ``ownlens_stage`` tag and
the ``production`` alias. The warehouse registry stays the record: a failing mirror logs a warning and never
fails a run or a promotion."""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def configured() -> bool:
    return bool(os.environ.get("MLFLOW_TRACKING_URI"))


def _mlflow():
    try:
        import mlflow
    except ImportError:
        log.warning("MLFLOW_TRACKING_URI is set but mlflow is not installed: pip install 'ownlens[mlflow]'")
        return None
    return mlflow


def _failed(what: str, exc: Exception) -> None:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    log.warning("MLflow at %s: %s failed (the warehouse registry has it): %s", os.environ.get("MLFLOW_TRACKING_URI"), what, first[:300])


def model_name(name: str) -> str:
    return f"ownlens-{name}"


def _numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        out[f"{prefix}{key}"] = float(value)
    return out


def log_training(name: str, version: str, parameters: dict, metrics: dict, artifact_uri: str | None, sha256: str | None,
                 features: list[str], pyfunc_code: Path) -> str | None:
    """One MLflow run for a training run; with a local artifact, the version as a registered pyfunc model.
    Returns the MLflow run id (None when the mirror is off or failed)."""
    if not configured() or (mlflow := _mlflow()) is None:
        return None
    try:
        mlflow.set_experiment(model_name(name))
        with mlflow.start_run(run_name=f"{name}-{version}") as run:
            mlflow.set_tags({"ownlens_model": name, "ownlens_version": version})
            mlflow.log_params({k: str(v)[:500] for k, v in parameters.items()})
            mlflow.log_metrics({**_numbers(metrics), **_numbers(metrics.get("oracle") or {}, "oracle_")})
            if artifact_uri and sha256 and os.path.exists(artifact_uri):
                with tempfile.TemporaryDirectory() as tmp:
                    checksum = Path(tmp) / "checksum.json"
                    checksum.write_text(json.dumps({"sha256": sha256}))
                    where = "name" if "name" in inspect.signature(mlflow.pyfunc.log_model).parameters else "artifact_path"
                    info = mlflow.pyfunc.log_model(**{where: "model"}, python_model=str(pyfunc_code),
                                                   artifacts={"ownlens_model": artifact_uri, "checksum": str(checksum)},
                                                   registered_model_name=model_name(name),
                                                   metadata={"ownlens_model": name, "ownlens_version": version,
                                                             "feature_names": features},
                                                   pip_requirements=["ownlens"])
                registered = getattr(info, "registered_model_version", None)
                if registered is not None:
                    client = mlflow.MlflowClient()
                    client.set_model_version_tag(model_name(name), str(registered), "ownlens_version", version)
                    client.set_model_version_tag(model_name(name), str(registered), "ownlens_stage", "candidate")
            return run.info.run_id
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        _failed(f"logging {name} {version}", exc)
        return None


def log_report(run_id: str | None, path: Path) -> None:
    """Attach a version's HTML report to its MLflow run."""
    if not run_id or not configured() or (mlflow := _mlflow()) is None:
        return
    try:
        mlflow.MlflowClient().log_artifact(run_id, str(path), artifact_path="report")
    except Exception as exc:  # noqa: BLE001
        _failed(f"attaching the report {path}", exc)


def log_stage(name: str, version: str, stage: str) -> None:
    """A stage change: the version's ``ownlens_stage`` tag, and the ``production`` alias on promotion."""
    if not configured() or (mlflow := _mlflow()) is None:
        return
    try:
        client = mlflow.MlflowClient()
        found = client.search_model_versions(f"name='{model_name(name)}' and tag.ownlens_version='{version}'")
        for mv in found:
            client.set_model_version_tag(model_name(name), mv.version, "ownlens_stage", stage)
            if stage == "production":
                client.set_registered_model_alias(model_name(name), "production", mv.version)
    except Exception as exc:  # noqa: BLE001
        _failed(f"recording {name} {version} as {stage}", exc)
