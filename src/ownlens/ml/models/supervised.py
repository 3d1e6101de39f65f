"""Supervised models: :class:`ModelSpec`, a model declared as data, and the generic adapter that gives every spec
the model protocol (train, evaluate, score, serve, monitor, A/B): a supervised model is declared once and
implemented once, here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property, partial
from typing import Callable

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import as_date
from ownlens.ml.errors import InvalidInput
from ownlens.ml.features.customer import LABEL_HORIZON_DAYS
from ownlens.ml.features.sets import FeatureSet
from ownlens.ml.models import metrics as M
from ownlens.ml.models.oracle import attach
from ownlens.ml.models.protocol import Evaluation, TrainingResult
from ownlens.ml.models.rows import labelled_dates, training_frame
from ownlens.ml.models.spec import RowSource, Thresholds, user_rows
from ownlens.ml.models.trained import TrainedModel
from ownlens.ml.models.training import cross_validate, fit_model, split, tune


def record_type(spec: "ModelSpec"):
    """One prediction of ``spec`` as the API returns it (a pydantic model, so OpenAPI documents it)."""
    from pydantic import Field, create_model

    fields: dict = {c: (str, Field(description=f"the {c.removesuffix('_id')}'s id")) for c in spec.entity}
    fields["feature_date"] = (str, Field(description="date of the features the prediction used (YYYY-MM-DD)"))
    fields[spec.output] = (float, Field(description=spec.description))
    if spec.level_column:
        fields[spec.level_column] = (str, Field(description="the band of the prediction: " + ", ".join(spec.level.names)))
    if spec.decision_column:
        fields[spec.decision_column] = (int, Field(description="1 when the probability is at least the version's decision "
                                                                 "threshold (chosen on validation rows, in the registry), else 0"))
    for column in spec.context:
        fields[column] = (str, Field(description=f"the row's {column.replace('_', ' ')} (one of the model's inputs)"))
    if spec.score_column:
        fields[spec.score_column] = (int, Field(description="0-100, round(100 * (1 - probability)): 100 is no risk at all"))
    if spec.drivers:
        fields["top_drivers"] = (list[str], Field(description=f"up to {spec.drivers} inputs that raise this prediction most "
                                                               "above the average row's, most first (from the model's own "
                                                               "contributions; empty for models that cannot attribute)"))
    fields["model_version"] = (str, Field(description="the version that made the prediction"))
    title = "".join(part.title() for part in spec.name.split("_"))
    return create_model(f"{title}Prediction", **fields)


def train(spec: "ModelSpec", client: Client, *, feature_date=None, train_dates=None, test_date=None, brand_id=None,
          limit: int | None = None, test_size: float = 0.25, seed: int = 0, algorithm: str | None = None,
          params: dict | None = None, tune_trials: int = 0, cv_folds: int = 0) -> TrainingResult:
    """Fit on dates whose labels were known by the test date (or a random split of one date) and evaluate on the
    held-out rows next to the oracle; ``tune_trials`` searches hyper-parameters first, ``cv_folds`` adds k-fold
    cross-validation on the training rows."""
    check_training_options(spec, algorithm, params, tune_trials, cv_folds)
    t0 = time.perf_counter()
    train_rows, test_rows, how = split(spec, client, feature_date, train_dates, test_date, brand_id, limit, test_size, seed)
    how.update({"train_rows": len(train_rows), "test_rows": len(test_rows)})
    extra: dict = {}
    if tune_trials:
        params = {**(params or {}), **tune(spec, train_rows, tune_trials, algorithm=algorithm, seed=seed)}
        extra["tuned_params"] = params
    if cv_folds:
        extra["cross_validation"] = cross_validate(spec, train_rows, cv_folds, algorithm=algorithm, params=params, seed=seed)
    model = fit_model(spec, train_rows, algorithm=algorithm, params=params)
    if spec.task == "binary":
        choose_decision(spec, model)
    fit_s = time.perf_counter() - t0
    evaluation = evaluate(spec, client, model, attach(client, spec, test_rows))
    metrics = dict(evaluation.metrics)
    dates = pd.to_datetime(train_rows["feature_date"]).dt.date
    model.info.update({"split": how, "trained_at": datetime.now(timezone.utc).isoformat(), "params": params or {}})
    if spec.level is not None and spec.task == "binary":
        extra["bands"] = band_outcomes(spec, evaluation.scored)
    extra["timings"] = {"fit_s": round(fit_s, 3), "total_s": round(time.perf_counter() - t0, 3)}
    return TrainingResult(model, metrics, evaluation.oracle_metrics, how, evaluation.scored, (dates.min(), dates.max()), extra)


def band_outcomes(spec: "ModelSpec", scored: pd.DataFrame) -> dict:
    """Per band of the test rows' predictions: how many, the mean prediction and how often the label then came
    true (a band's name is a promise: "critical" should see far more cancellations than "healthy")."""
    bands = pd.Series(spec.level(scored["prediction"].to_numpy()), index=scored.index)
    out = {}
    for name in spec.level.names:
        rows = scored[bands == name]
        out[name] = {"rows": len(rows), "mean_prediction": round(float(rows["prediction"].mean()), 4) if len(rows) else None,
                     "observed_rate": round(float(rows["label"].mean()), 4) if len(rows) else None}
    return out


def check_training_options(spec: "ModelSpec", algorithm, params, tune_trials: int, cv_folds: int) -> None:
    """Refuse bad options before any data is read: the estimator's own validation names what it accepts."""
    from sklearn.utils._param_validation import InvalidParameterError

    if tune_trials < 0:
        raise InvalidInput(f"tune_trials must be 0 (off) or a positive number of trials (got {tune_trials})")
    if cv_folds < 0 or cv_folds == 1:
        raise InvalidInput(f"cv_folds must be 0 (off) or at least 2 (got {cv_folds})")
    try:
        spec.estimator(algorithm or spec.algorithm, **(params or {}))._validate_params()
    except (InvalidParameterError, TypeError) as exc:
        raise InvalidInput(f"{spec.name}: {str(exc).splitlines()[0]}") from None


def choose_decision(spec: "ModelSpec", model: TrainedModel) -> None:
    """The yes/no threshold of a classifier, chosen for ``spec.decision`` on rows the booster did not learn from
    (the estimator's calibration hold-out), never on test rows; kept with the version (``info["threshold"]``)."""
    holdout = getattr(model.estimator, "holdout_", None)
    if holdout is None:
        model.info.update({"threshold": 0.5, "decision": {"objective": spec.decision, "note": "too few rows to hold any out: 0.5"}})
        return
    threshold, how = M.choose_threshold(*holdout, spec.decision)
    model.info.update({"threshold": threshold, "decision": how})


def test_set(spec: "ModelSpec", client: Client, *, test_date=None, brand_id=None, limit: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The labelled rows of ``test_date`` (default: the latest date whose labels are complete), with the oracle."""
    if test_date is None:
        dates = labelled_dates(client, spec.label_table)
        if not dates:
            training_frame(client, spec, [], brand_id, limit)  # raises the explanatory NotFound
        test_date = dates[-1]
    return attach(client, spec, training_frame(client, spec, [as_date(test_date, "test_date")], brand_id, limit))


def evaluate(spec: "ModelSpec", client: Client, model: TrainedModel, test: pd.DataFrame) -> Evaluation:
    """``model``'s metrics on ``test`` and the oracle's on the same rows (None without simulator truth)."""
    scored = test.copy()
    scored["prediction"] = model.predict_values(test)
    metrics = M.compute(spec.task, scored["label"], scored["prediction"], model.threshold)
    truth = scored["oracle"] if "oracle" in scored else pd.Series(np.nan, index=scored.index)
    # the oracle's yes/no metrics at its own best threshold on these rows: what a perfect model could do
    oracle = None if truth.isna().any() else M.compute(
        spec.task, scored["label"], truth, M.choose_threshold(scored["label"], truth, spec.decision)[0] if spec.task == "binary" else 0.5)
    return Evaluation(metrics, oracle, scored)


def predict_batch(spec: "ModelSpec", client: Client, model: TrainedModel, d, **options) -> dict:
    from ownlens.ml.models.scoring import predict_batch as score_all

    return score_all(spec, client, model, as_date(d), **options)


def server(spec: "ModelSpec", client: Client, model: TrainedModel, cache_ttl_s: float = 0.0):
    from ownlens.ml.models.scoring import Scorer

    return Scorer(spec, client, model, cache_ttl_s=cache_ttl_s)


def plots(spec: "ModelSpec", result, plt) -> list[tuple[str, str]]:
    """ROC, precision-recall, calibration and confusion (classifiers) or predicted vs actual (regressors), each
    next to the oracle's, then feature importance and SHAP."""
    from ownlens.ml.models import reports

    test = result.test
    sections = reports.binary_plots(test, plt, result.model.threshold) if spec.task == "binary" else reports.regression_plots(test, plt)
    return sections + reports.importance_plots(result.model, test, plt)


REALISED_BINARY = """
SELECT count(), avg(p.prediction_value), avg({label}), arrayAUC(groupArray(p.prediction_value), groupArray({label} = 1)),
       avg(pow(p.prediction_value - {label}, 2))
FROM ml_model_predictions AS p
INNER JOIN {table} AS l ON l.user_id = toUUID(p.entity_id) AND l.feature_date = p.prediction_date
WHERE p.model_name = {{model:String}} AND p.prediction_date = {{d:Date}} AND l.label_window_complete = 1
"""

REALISED_REGRESSION = """
SELECT count(), avg(p.prediction_value), avg({label}), sqrt(avg(pow(p.prediction_value - {label}, 2))),
       avg(abs(p.prediction_value - {label}))
FROM ml_model_predictions AS p
INNER JOIN {table} AS l ON l.user_id = toUUID(p.entity_id) AND l.feature_date = p.prediction_date
WHERE p.model_name = {{model:String}} AND p.prediction_date = {{d:Date}} AND l.label_window_complete = 1
"""


def realised(spec: "ModelSpec", client: Client, d) -> dict | None:
    """How the predictions stored for ``d`` did once their labels are complete (computed in ClickHouse): AUC and
    Brier score (classifiers), RMSE and MAE (regressors); None until then."""
    template = REALISED_BINARY if spec.task == "binary" else REALISED_REGRESSION
    row = client.query(template.format(label=spec.label, table=spec.label_table),
                       parameters={"model": spec.name, "d": as_date(d)}).result_rows[0]
    if not row[0]:
        return None
    names = (("rows", "mean_prediction", "observed_rate", "roc_auc", "brier") if spec.task == "binary"
             else ("rows", "mean_prediction", "mean_label", "rmse", "mae"))
    return {name: (int(v) if name == "rows" else float(v)) for name, v in zip(names, row)}


STORED_DATES = "SELECT DISTINCT prediction_date FROM ml_model_predictions WHERE model_name = {m:String} ORDER BY prediction_date"


def stored_dates(spec: "ModelSpec", client: Client) -> list:
    return [r[0] for r in client.query(STORED_DATES, parameters={"m": spec.name}).result_rows]


def ab_outcomes(spec: "ModelSpec", client: Client, test, dates=None) -> dict:
    """Each arm's users, once each (on their first date), on the labelled dates since the test started that
    neither version learnt from, scored by the arm's version: how often it was right (its yes/no at its
    version's threshold matched the label), with its ROC AUC and Brier score."""
    from ownlens.ml.models.trained import load
    from ownlens.ml.registry.abtests import unseen_dates, variant

    versions = {"A": load(client, spec.name, test.version_a), "B": load(client, spec.name, test.version_b)}
    candidates = dates or [d for d in labelled_dates(client, spec.label_table) if d >= test.start and (test.end is None or d <= test.end)]
    dates, excluded = unseen_dates(candidates, versions, spec.label_days)
    out: dict = {"dates": [str(d) for d in dates], "excluded_dates": excluded, "arms": {}, "counts": {}}
    if not dates:
        return {**out, "reason": f"no feature date since {test.start} has complete {spec.label_days}-day labels and lies after "
                                 "what both versions learnt from yet"}
    frame = training_frame(client, spec, dates)
    frame = frame.sort_values("feature_date", kind="stable").drop_duplicates("user_id").reset_index(drop=True)
    arms = np.array([variant(test.test_id, u, test.split) for u in frame["user_id"]])
    for arm, trained in versions.items():
        rows = frame[arms == arm]
        if rows.empty:
            return {**out, "reason": f"variant {arm} has no users on {out['dates']}"}
        p = trained.predict_values(rows)
        correct = ((p >= trained.threshold).astype(int) == rows["label"].to_numpy()).astype(int)
        m = M.classification_metrics(rows["label"], p) if rows["label"].nunique() == 2 else {"roc_auc": None, "brier": None}
        out["counts"][arm] = (int(correct.sum()), len(rows))
        out["arms"][arm] = {"version": trained.version, "users": len(rows), "accuracy": correct.mean(), "roc_auc": m["roc_auc"],
                            "brier": m["brier"]}
    return out


SUPERVISED_OPTIONS = {
    "algorithm": "another algorithm than the model's (xgboost, lightgbm, logistic, random_forest, mlp, linear)",
    "params": "estimator parameters, e.g. {'n_estimators': 300}",
    "tune_trials": "Optuna trials of hyper-parameter search",
    "cv_folds": "also report k-fold cross-validation on the training rows",
}


@dataclass(frozen=True)
class ModelSpec:
    """A supervised model as data; see ``ownlens.ml.models.customer.churn`` for an example.

    ``label`` is SQL over the labels (``l``) joined to the feature rows, ``oracle`` SQL over the simulator's
    truth (``t``), ``population`` filters the feature rows (``uf``); ``source`` replaces all three for models
    whose rows are not one user of ``features.table`` (e.g. user x article pairs). ``output`` names the
    prediction column of the domain table and of each prediction record.
    """

    name: str
    task: str  # "binary" or "regression"
    description: str
    features: FeatureSet
    label: str
    estimator: Callable[..., object]
    algorithm: str
    predictions_table: str | None
    output: str
    oracle: str | None = None
    population: str = "1"
    label_table: str = "customer_user_labels"
    level: Callable[[np.ndarray], np.ndarray] | None = None  # prediction -> risk level / tier text, e.g. Bands
    level_column: str | None = None
    decision_column: str | None = None  # e.g. is_churned: 0/1 at the version's decision threshold
    # how that threshold is chosen, on validation rows: "f1" (the best F1) or "precision>=P" (the most recall at precision P)
    decision: str = "f1"
    targets: dict[str, float] = field(default_factory=dict)  # seed 003 targets, metric -> minimum
    primary_metric: str = "roc_auc"
    source: RowSource | None = None
    # days after the feature date that the label looks at: a training date's label is known only this long
    # after it, so a time split trains on dates at least this many days before the test date
    label_days: int = LABEL_HORIZON_DAYS
    # drift thresholds of this model; None: monitoring.drift's INPUT_THRESHOLDS and PREDICTION_THRESHOLDS
    input_thresholds: Thresholds | None = None
    prediction_thresholds: Thresholds | None = None
    # (client, d) -> ids with features on d, for models whose rows are not every active user (see models/protocol.py)
    example_keys: Callable[..., list] | None = None
    # a 0-100 score beside a classifier's probability, 100 where it is 0 (a health score: 100 is no risk at all)
    score_column: str | None = None
    # how many of the inputs that raise each prediction most to store and return with it, as top_drivers
    drivers: int = 0
    # categorical inputs returned and stored with each prediction as they are (lead scoring's funnel stage)
    context: tuple[str, ...] = ()
    # the stored inputs drift monitoring compares, for a model whose rows come from its own SQL (``source``)
    monitored: FeatureSet | None = None

    options = SUPERVISED_OPTIONS
    lookup_options = None
    prediction_drift = "numeric"

    @cached_property
    def rows(self) -> RowSource:
        return self.source or user_rows(self.features, self.label, self.population, self.label_table, self.oracle)

    @property
    def entity(self) -> tuple[str, ...]:
        return self.rows.entity

    @property
    def entity_type(self) -> str:
        return self.rows.entity_type

    @property
    def output_table(self) -> str:
        return self.predictions_table or "ml_model_predictions"

    @property
    def inputs(self) -> FeatureSet | None:
        """Stored inputs whose drift monitoring measures: the features, or what a model with its own rows names
        (pair features are computed per pair: none stored)."""
        return self.features if self.source is None else self.monitored

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.features.columns)

    @property
    def prediction_fields(self) -> tuple[str, str]:
        return self.output, self.level_column or ""

    @cached_property
    def record(self):
        return record_type(self)

    def prototype(self):
        return self.estimator(self.algorithm)

    def train(self, client, **options) -> TrainingResult:
        return train(self, client, **options)

    def test_set(self, client, **options) -> pd.DataFrame:
        return test_set(self, client, **options)

    def evaluate(self, client, model, test) -> Evaluation:
        return evaluate(self, client, model, test)

    def predict_batch(self, client, model, d, **options) -> dict:
        return predict_batch(self, client, model, d, **options)

    def server(self, client, model, cache_ttl_s: float = 0.0):
        return server(self, client, model, cache_ttl_s)

    def plots(self, result, plt) -> list:
        return plots(self, result, plt)

    @property
    def realised(self) -> Callable | None:
        """Realised performance of the stored predictions of a date (user models; pairs: None)."""
        return partial(realised, self) if self.source is None else None

    def stored_dates(self, client) -> list:
        return stored_dates(self, client)

    @property
    def ab_outcomes(self) -> Callable | None:
        """Per-arm outcomes of an A/B test: the user classifiers compare how often each arm was right."""
        return partial(ab_outcomes, self) if self.task == "binary" and self.source is None else None
