"""Training runs of any model: recorded in ml_model_training_runs (failed ones too), registered as a candidate
version, mirrored to MLflow when it is configured (``registry/mlflow_mirror.py``)."""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from clickhouse_connect.driver.client import Client

from ownlens.ml import __version__
from ownlens.ml.errors import InvalidInput, OwnLensError
from ownlens.ml.models import trained
from ownlens.ml.models.protocol import TrainingResult
from ownlens.ml.registry import store

log = logging.getLogger(__name__)

# what every model's train() takes; anything else must be one of the model's own options
COMMON_OPTIONS = ("feature_date", "train_dates", "test_date", "brand_id", "limit", "test_size", "seed")


def check_options(model, options: dict) -> None:
    """Refuse options ``model`` does not take, naming the ones it does."""
    unknown = [k for k in options if k not in COMMON_OPTIONS and k not in model.options]
    if unknown:
        own = ", ".join(model.options) or "none of its own"
        raise InvalidInput(f"{model.name} does not take {', '.join(unknown)} (its options: {own})")


def train(model, client: Client, *, register: bool = True, description: str = "", **options) -> TrainingResult:
    """Train ``model`` (any model of the protocol) from the warehouse and register the result as a candidate version.

    ``options`` are the model's training options (see ``models/protocol.py``); options left at None are not passed.
    Every attempt is a row of ml_model_training_runs, failures included (with their error).
    """
    options = {k: v for k, v in options.items() if v is not None}
    check_options(model, options)
    with recorded_run(client, model.name, options) as run:
        result = model.train(client, **options)
        metrics = registered_metrics(result)
        if register:
            trained.register(client, result.model, algorithm=result.model.info.get("algorithm") or model.algorithm, metrics=metrics,
                     window=result.window or (None, None), description=description or model.description)
        else:
            result.model.info.setdefault("algorithm", model.algorithm)
        run.update({"model_id": result.model.model_id, "model_version": result.model.version, "metrics": metrics,
                    "data_snapshot": result.split, "parameters": {**run["parameters"], **result.model.info.get("params", {})}})
        result.run_id = run["run_id"]
        mirrored = _log_to_mlflow(model.name, result.model, run, metrics)
        if mirrored:
            result.extra["mlflow_run_id"] = mirrored
        return result


def registered_metrics(result: TrainingResult) -> dict:
    """What the registry keeps of a result: the metrics, the oracle's, the test date, cross-validation if any."""
    metrics = {**result.metrics, "oracle": result.oracle_metrics, "test_date": result.split.get("test_date")}
    if "cross_validation" in result.extra:
        metrics["cross_validation"] = result.extra["cross_validation"]
    return metrics


_live_runs: set[str] = set()  # this process's runs in progress


@contextmanager
def recorded_run(client: Client, name: str, parameters: dict):
    """Record a training attempt in ml_model_training_runs: ``running`` now, then ``succeeded`` or ``failed``
    (with the error) when the block ends. The block fills the yielded dict (model_version, metrics...). Runs a
    killed process left ``running`` are marked failed first (on a server: those over a day old)."""
    from ownlens.ml.warehouse import STALE_ON_A_SERVER_S, is_embedded

    store.fail_interrupted_runs(client, _live_runs, 0 if is_embedded(client) else STALE_ON_A_SERVER_S)
    run = {"run_id": str(uuid.uuid4()), "model_name": name, "status": "running", "package_version": __version__,
           "started_at": datetime.now(timezone.utc), "parameters": parameters}
    t0 = time.perf_counter()
    _live_runs.add(run["run_id"])
    store.record_run(client, run)
    log.info("training started", extra={"fields": {"model": name, "run_id": run["run_id"]}})
    try:
        yield run
        run["status"] = "succeeded"
    except Exception as exc:
        run.update({"status": "failed", "error_message": str(exc) if isinstance(exc, OwnLensError) else traceback.format_exc(limit=3)})
        raise
    finally:
        run["finished_at"] = datetime.now(timezone.utc)
        run["duration_sec"] = time.perf_counter() - t0
        store.record_run(client, run)
        _live_runs.discard(run["run_id"])


PYFUNC_CODE = Path(__file__).with_name("mlflow_pyfunc.py")  # MLflow loads it as code: nothing pickled


def _log_to_mlflow(name: str, model: "trained.TrainedModel", run: dict, metrics: dict) -> str | None:
    """Mirror the run and the version to MLflow when MLFLOW_TRACKING_URI is set (optional extra)."""
    from ownlens.ml.registry import mlflow_mirror

    if not mlflow_mirror.configured():
        return None
    return mlflow_mirror.log_training(name, model.version or "", run["parameters"], metrics, model.info.get("artifact_uri"),
                                      model.info.get("artifact_sha256"), list(model.features), PYFUNC_CODE)
