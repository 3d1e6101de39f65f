"""Generic training for any :class:`ModelSpec`: split by time, fit, score against the oracle, register."""

from __future__ import annotations

import logging
import os
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml import __version__
from ownlens.ml.data.loaders import as_date as _date
from ownlens.ml.errors import InvalidInput, NotFound, OwnLensError
from ownlens.ml.models import metrics as M
from ownlens.ml.models.data import labelled_dates, training_frame
from ownlens.ml.models.model import TrainedModel
from ownlens.ml.models.spec import CategoryEncoder, ModelSpec

log = logging.getLogger(__name__)

MAX_TRAIN_DATES = 4


@dataclass
class TrainingResult:
    """A fitted model with its held-out metrics, the oracle's on the same rows, and the test rows."""

    model: TrainedModel
    metrics: dict
    oracle_metrics: dict | None
    split: dict
    test: pd.DataFrame = field(repr=False)
    run_id: str = ""
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"model": self.model.spec_name, "version": self.model.version, "algorithm": self.model.info.get("algorithm"),
                "split": self.split, "metrics": self.metrics, "oracle": self.oracle_metrics, **self.extra}


def _split(spec: ModelSpec, client: Client, feature_date, train_dates, test_date, brand_id, limit, test_size, seed):
    """Training and test rows: by date when labelled dates far enough apart exist, else a random split of one date.

    A time split trains only on dates whose labels were complete by the test date (``spec.label_days``
    before it), as a model trained on the test date could have been: a training label that reaches
    into the test window would let the model learn its own test users' futures (measured on 20k users:
    conversion ROC AUC 0.75 with overlapping windows, 0.61 without).
    """
    if feature_date is not None:
        frame = training_frame(client, spec, [_date(feature_date)], brand_id, limit)
        return _random_split(spec, frame, test_size, seed, f"random {1 - test_size:.0%}/{test_size:.0%} split of {feature_date}")
    available = labelled_dates(client)
    if test_date is None:
        if not available:
            training_frame(client, spec, [], brand_id, limit)  # raises the explanatory NotFound
        test_date = available[-1]
    test_date = _date(test_date)
    latest_train = test_date - timedelta(days=spec.label_days)
    if train_dates is None:
        train_dates = [d for d in available if d <= latest_train][-MAX_TRAIN_DATES:]
    train_dates = [_date(d) for d in train_dates]
    if any(d > latest_train for d in train_dates):
        raise InvalidInput(
            f"training dates must be at least {spec.label_days} days before the test date {test_date} (on or before "
            f"{latest_train}): a later date's {spec.name} label is not known by then and would leak the test period")
    if not train_dates:
        frame = training_frame(client, spec, [test_date], brand_id, limit)
        train_rows, test_rows, split = _random_split(
            spec, frame, test_size, seed, f"random split of {test_date} (no labelled date {spec.label_days} days before it)")
        return train_rows, test_rows, {**split, "test_date": str(test_date)}
    frame = training_frame(client, spec, [*train_dates, test_date], brand_id, limit)
    test_mask = frame["feature_date"] == pd.Timestamp(test_date).date()
    if not test_mask.any():
        raise NotFound(f"no labelled rows for {spec.name} on {test_date}: build features there "
                       f"(`ownlens-ml features build --date {test_date}`) and make sure 30 days of data follow it")
    if test_mask.all():
        return _random_split(spec, frame, test_size, seed, "random split (no training rows before the test date)")
    split = {"kind": "time", "train_dates": [str(d) for d in train_dates], "test_date": str(test_date)}
    return frame[~test_mask].reset_index(drop=True), frame[test_mask].reset_index(drop=True), split


def _random_split(spec, frame, test_size, seed, kind):
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise InvalidInput(f"test_size must be between 0 and 1 (got {test_size})")
    stratify = frame["label"] if spec.task == "binary" and frame["label"].nunique() == 2 and frame["label"].value_counts().min() >= 2 else None
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=stratify)
    dates = sorted({str(d) for d in frame["feature_date"]})
    return train.reset_index(drop=True), test.reset_index(drop=True), {"kind": kind, "dates": dates}


def fit_model(spec: ModelSpec, frame: pd.DataFrame, *, algorithm: str | None = None, params: dict | None = None,
              label: str = "label") -> TrainedModel:
    """Fit ``spec``'s estimator on a plain DataFrame with the spec's feature columns and a label column."""
    if label not in frame.columns:
        raise InvalidInput(f"the training frame has no {label!r} column")
    if frame.empty:
        raise InvalidInput("the training frame is empty")
    y = frame[label].to_numpy()
    if spec.task == "binary" and len(np.unique(y)) < 2:
        raise InvalidInput(f"{spec.name}: the training rows hold only one label value ({y[0]}); use more rows or other dates")
    encoder = CategoryEncoder.fit(frame, [c for c in spec.features.categorical if c in frame.columns])
    features = [c for c in spec.features.columns if c in frame.columns]
    missing = [c for c in spec.features.columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the training frame is missing feature column(s) {missing[:5]}")
    model = TrainedModel(spec.name, spec.task, features, encoder, None)
    X = model.matrix(frame)
    estimator = spec.estimator(algorithm or spec.algorithm, **(params or {}))
    model.estimator = estimator.fit(X, y)
    return model


def cross_validate(spec: ModelSpec, frame: pd.DataFrame, folds: int = 5, *, algorithm: str | None = None,
                   params: dict | None = None, seed: int = 0) -> dict:
    """K-fold (stratified for classifiers) cross-validated primary metric on a plain DataFrame."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = (StratifiedKFold if spec.task == "binary" else KFold)(n_splits=folds, shuffle=True, random_state=seed)
    scores = []
    for train_idx, test_idx in splitter.split(frame, frame["label"]):
        model = fit_model(spec, frame.iloc[train_idx], algorithm=algorithm, params=params)
        test = frame.iloc[test_idx]
        scores.append(M.compute(spec.task, test["label"], model.predict_values(test))[spec.primary_metric])
    return {"metric": spec.primary_metric, "folds": folds, "mean": float(np.mean(scores)), "std": float(np.std(scores)),
            "scores": [float(s) for s in scores]}


def tune(spec: ModelSpec, frame: pd.DataFrame, trials: int, *, algorithm: str | None = None, seed: int = 0) -> dict:
    """Optuna search over booster size and learning rate on a validation split of the training rows."""
    try:
        import optuna
    except ImportError:
        raise InvalidInput("hyper-parameter search needs optuna: pip install 'ownlens[tune]'") from None
    from sklearn.model_selection import train_test_split

    fit_part, val_part = train_test_split(frame, test_size=0.25, random_state=seed)
    higher_better = spec.primary_metric in ("roc_auc", "pr_auc", "r2", "f1", "precision")

    def objective(trial):
        params = {"n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
                  "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
                  "max_depth": trial.suggest_int("max_depth", 3, 8)}
        model = fit_model(spec, fit_part, algorithm=algorithm, params=params)
        return M.compute(spec.task, val_part["label"], model.predict_values(val_part))[spec.primary_metric]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if higher_better else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return dict(study.best_params)


def train(
    spec: ModelSpec, client: Client, *, feature_date=None, train_dates=None, test_date=None, brand_id=None,
    limit: int | None = None, test_size: float = 0.25, algorithm: str | None = None, params: dict | None = None,
    tune_trials: int = 0, cv_folds: int = 0, register: bool = True, seed: int = 0, description: str = "",
) -> TrainingResult:
    """Train ``spec`` from the warehouse, evaluate on held-out (later) rows next to the oracle, register it.

    Every attempt is recorded in ml_model_training_runs, failures included.
    """
    from ownlens.ml.registry import store

    parameters = {"algorithm": algorithm or spec.algorithm, "params": params or {}, "feature_date": feature_date,
                  "train_dates": train_dates, "test_date": test_date, "brand_id": brand_id, "limit": limit,
                  "test_size": test_size, "tune_trials": tune_trials, "cv_folds": cv_folds, "seed": seed}
    with recorded_run(client, spec.name, parameters) as run:
        t0 = time.perf_counter()
        train_rows, test_rows, split = _split(spec, client, feature_date, train_dates, test_date, brand_id, limit, test_size, seed)
        split.update({"train_rows": len(train_rows), "test_rows": len(test_rows)})
        extra = {}
        if tune_trials:
            params = {**(params or {}), **tune(spec, train_rows, tune_trials, algorithm=algorithm, seed=seed)}
            extra["tuned_params"] = params
        if cv_folds:
            extra["cross_validation"] = cross_validate(spec, train_rows, cv_folds, algorithm=algorithm, params=params, seed=seed)
        model = fit_model(spec, train_rows, algorithm=algorithm, params=params)
        fit_s = time.perf_counter() - t0
        test = test_rows.copy()
        test["prediction"] = model.predict_values(test_rows)
        metrics = M.compute(spec.task, test["label"], test["prediction"])
        oracle = None if test["oracle"].isna().all() else M.compute(spec.task, test["label"], test["oracle"])
        if spec.task == "binary":
            metrics["f1_threshold"] = M.best_threshold(test["label"], test["prediction"])
        dates = [d for d in pd.to_datetime(train_rows["feature_date"]).dt.date]
        window = (min(dates), max(dates))
        model.info.update({"split": split, "trained_at": datetime.now(timezone.utc).isoformat()})
        all_metrics = {**metrics, "oracle": oracle, **({"cross_validation": extra["cross_validation"]} if cv_folds else {})}
        if register:
            store.register(client, model, algorithm=algorithm or spec.algorithm, metrics=all_metrics, window=window,
                           description=description or spec.description)
        else:
            model.info.update({"algorithm": algorithm or spec.algorithm})
        run.update({"model_id": model.model_id, "model_version": model.version,
                    "metrics": all_metrics, "data_snapshot": split, "parameters": {**run["parameters"], "params": params or {}}})
        extra["timings"] = {"fit_s": round(fit_s, 3), "total_s": round(time.perf_counter() - t0, 3)}
        _log_to_mlflow(spec.name, model, run, all_metrics)
        return TrainingResult(model, metrics, oracle, split, test, run["run_id"], extra)


@contextmanager
def recorded_run(client: Client, name: str, parameters: dict):
    """Record a training attempt in ml_model_training_runs: ``running`` now, then ``succeeded`` or ``failed``
    (with the error) when the block ends. The block fills the yielded dict (model_version, metrics...)."""
    from ownlens.ml.registry import store

    run = {"run_id": str(uuid.uuid4()), "model_name": name, "status": "running", "package_version": __version__,
           "started_at": datetime.now(timezone.utc), "parameters": parameters}
    t0 = time.perf_counter()
    store.record_run(client, run)
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


def _log_to_mlflow(name: str, model: TrainedModel, run: dict, metrics: dict) -> None:
    """Mirror the run to MLflow when MLFLOW_TRACKING_URI is set (optional extra)."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return
    try:
        import mlflow
    except ImportError:
        log.warning("MLFLOW_TRACKING_URI is set but mlflow is not installed: pip install 'ownlens[mlflow]'")
        return
    try:
        mlflow.set_experiment(f"ownlens-{name}")
        with mlflow.start_run(run_name=f"{name}-{model.version}"):
            mlflow.log_params({k: str(v) for k, v in run["parameters"].items()})
            mlflow.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and np.isfinite(v)})
            if model.info.get("artifact_uri") and os.path.exists(model.info["artifact_uri"]):
                mlflow.log_artifact(model.info["artifact_uri"])
    except Exception as exc:  # the warehouse registry is the record; a mirror's failure must not fail training
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("logging %s %s to MLflow at %s failed (the warehouse registry has it): %s", name,
                    model.version, os.environ["MLFLOW_TRACKING_URI"], first[:300])


def challenge(spec: ModelSpec, client: Client, **train_kw) -> tuple[TrainingResult, dict]:
    """Train a new version and promote it when it scores at least as well as production on the same test rows.

    Returns the training result and the comparison: metric, new and production scores, promoted or not.
    """
    from ownlens.ml.registry import store

    result = train(spec, client, **train_kw)
    key = spec.primary_metric
    try:
        production = store.load(client, spec.name, "production")
        current = M.compute(spec.task, result.test["label"], production.predict_values(result.test))[key]
    except NotFound:
        production, current = None, None
    promoted = current is None or result.metrics[key] >= current
    if promoted:
        store.promote(client, spec.name, result.model.version)
    return result, {"metric": key, "new": result.metrics[key], "production": current, "promoted": promoted,
                    "production_version": production.version if production else None, "version": result.model.version}


BASELINES = {"binary": ("logistic", "random_forest", "mlp"), "regression": ("linear", "random_forest", "mlp")}


def compare_baselines(spec: ModelSpec, client: Client, *, feature_date=None, train_dates=None, test_date=None,
                      brand_id=None, limit: int | None = None, test_size: float = 0.25, seed: int = 0,
                      algorithms: tuple[str, ...] | None = None) -> dict:
    """The spec's algorithm next to the baselines (and the oracle), all on the same split and test rows."""
    train_rows, test_rows, split = _split(spec, client, feature_date, train_dates, test_date, brand_id, limit, test_size, seed)
    split.update({"train_rows": len(train_rows), "test_rows": len(test_rows)})
    results = {}
    for algorithm in algorithms or (spec.algorithm, *BASELINES[spec.task]):
        t = time.perf_counter()
        model = fit_model(spec, train_rows, algorithm=algorithm)
        results[algorithm] = {**M.compute(spec.task, test_rows["label"], model.predict_values(test_rows)),
                              "fit_s": round(time.perf_counter() - t, 3)}
    oracle = None if test_rows["oracle"].isna().all() else M.compute(spec.task, test_rows["label"], test_rows["oracle"])
    return {"model": spec.name, "split": split, "results": results, "oracle": oracle}


def finish_task_training(client: Client, task, estimator, features: list[str], metrics: dict, oracle: dict | None,
                         split: dict, window: tuple, run: dict, register: bool, test: pd.DataFrame | None = None,
                         extra: dict | None = None) -> TrainingResult:
    """Register a fitted :class:`~ownlens.ml.models.spec.TaskModel` estimator (when ``register``) and fill ``run``."""
    from ownlens.ml.registry import store

    model = TrainedModel(task.name, task.task, list(features), CategoryEncoder({}), estimator)
    model.info.update({"split": split, "trained_at": datetime.now(timezone.utc).isoformat()})
    all_metrics = {**metrics, "oracle": oracle, "test_date": split.get("test_date")}
    if register:
        store.register(client, model, algorithm=task.algorithm, metrics=all_metrics, window=window, description=task.description)
    else:
        model.info.update({"algorithm": task.algorithm})
    run.update({"model_id": model.model_id, "model_version": model.version, "metrics": all_metrics, "data_snapshot": split})
    _log_to_mlflow(task.name, model, run, all_metrics)
    return TrainingResult(model, metrics, oracle, split, test if test is not None else pd.DataFrame(), run["run_id"], extra or {})
