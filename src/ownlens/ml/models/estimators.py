"""scikit-learn compatible estimators behind every OwnLens model, and their safe serialisation.

One classifier and one regressor class cover the seed 003 algorithms: XGBoost and LightGBM
boosters (saved in their native formats) and the baselines (logistic/linear regression, random
forest, MLP; saved with skops). Classifiers weight classes for imbalance and calibrate their
probabilities (Platt scaling on a held-out slice), so a churn probability of 0.3 means 30 %.
"""

from __future__ import annotations

import json
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ownlens.ml.errors import InvalidInput

BOOSTERS = ("xgboost", "lightgbm")
# types our baseline pipelines contain beyond skops' defaults; anything else in a file is refused
SKOPS_TRUSTED = {"numpy.dtype", "sklearn.tree._tree.Tree", "sklearn.neural_network._stochastic_optimizers.AdamOptimizer"}
CLASSIFIER_ALGORITHMS = (*BOOSTERS, "logistic", "random_forest", "mlp")
REGRESSOR_ALGORITHMS = (*BOOSTERS, "linear", "random_forest", "mlp")


def _baseline_pipeline(algorithm: str, task: str, p: dict, balanced: bool):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    weight = "balanced" if balanced else None
    seed = p["random_state"]
    if algorithm == "logistic":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1.0, class_weight=weight, max_iter=2000)
    elif algorithm == "linear":
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=1.0)
    elif algorithm == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        common = dict(n_estimators=min(p["n_estimators"], 200), min_samples_leaf=20, max_features="sqrt",
                      n_jobs=p["n_jobs"], random_state=seed)
        model = (RandomForestClassifier(class_weight=weight, **common) if task == "binary"
                 else RandomForestRegressor(**common))
    elif algorithm == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPClassifier if task == "binary" else MLPRegressor
        model = cls(hidden_layer_sizes=(64, 32), alpha=1e-3, early_stopping=True, max_iter=300, random_state=seed)
    else:  # pragma: no cover - guarded by parameter validation
        raise ValueError(algorithm)
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(), model)


def _booster(algorithm: str, task: str, p: dict, pos_weight: float):
    if algorithm == "xgboost":
        import xgboost as xgb

        common = dict(n_estimators=p["n_estimators"], learning_rate=p["learning_rate"], max_depth=p["max_depth"],
                      subsample=0.8, colsample_bytree=0.8, min_child_weight=5, tree_method="hist",
                      n_jobs=p["n_jobs"], random_state=p["random_state"])
        if task == "binary":
            return xgb.XGBClassifier(objective="binary:logistic", scale_pos_weight=pos_weight, **common)
        objective = "count:poisson" if p["objective"] == "poisson" else "reg:squarederror"
        return xgb.XGBRegressor(objective=objective, **common)
    import lightgbm as lgb

    common = dict(n_estimators=p["n_estimators"], learning_rate=p["learning_rate"], max_depth=p["max_depth"],
                  num_leaves=min(2 ** p["max_depth"], 63), subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
                  min_child_samples=20, n_jobs=p["n_jobs"] or -1, random_state=p["random_state"], verbose=-1)
    if task == "binary":
        return lgb.LGBMClassifier(objective="binary", scale_pos_weight=pos_weight, **common)
    return lgb.LGBMRegressor(objective="poisson" if p["objective"] == "poisson" else "regression", **common)


def _check_finite(X) -> None:
    if np.isinf(X).any():
        cols = np.where(np.isinf(X).any(axis=0))[0].tolist()
        raise InvalidInput(f"input has infinite values in column(s) {cols[:5]}: replace them with finite numbers or NaN")


def _logit_inverse(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


class _OwnLensEstimator(BaseEstimator):
    """Shared fitting, prediction and serialisation; subclasses set the task."""

    _task = "binary"
    _parameter_constraints = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, 1, closed="right")],
        "max_depth": [Interval(Integral, 1, 16, closed="both")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def _params(self) -> dict:
        return {k: getattr(self, k) for k in self.get_params()}

    def _fit_model(self, X, y, balanced_weight: float):
        self.__dict__.pop("compiled_", None)  # compiled from the previous fit
        algorithm = self.algorithm
        if algorithm in BOOSTERS:
            model = _booster(algorithm, self._task, self._params() | {"objective": getattr(self, "objective", None)},
                             balanced_weight)
            model.fit(X, y)
            return model
        model = _baseline_pipeline(algorithm, self._task, self._params(), balanced_weight != 1.0)
        if algorithm == "mlp" and self._task == "binary" and balanced_weight != 1.0:
            # MLPs take no class_weight: weight the rows instead, or rare positives get ignored
            model.fit(X, y, mlpclassifier__sample_weight=np.where(y == 1, balanced_weight, 1.0))
        else:
            model.fit(X, y)
        return model

    def _raw(self, X) -> np.ndarray:
        """Probability of the positive class (classifier) or the prediction (regressor), uncalibrated."""
        model = self.model_
        if self.algorithm == "xgboost":
            return np.asarray(model.get_booster().inplace_predict(X), dtype=float)
        if self.algorithm == "lightgbm":
            return np.asarray(model.booster_.predict(X, num_threads=self.n_jobs or 0), dtype=float)
        return model.predict_proba(X)[:, 1] if self._task == "binary" else model.predict(X)

    def _output(self, raw: np.ndarray) -> np.ndarray:
        return raw

    def predict_few(self, X: np.ndarray) -> np.ndarray:
        """``predict_proba(X)[:, 1]`` (classifier) or ``predict(X)`` for a few rows of an already checked
        float64 matrix: no input validation, and XGBoost's trees walked by numpy (~0.1 ms for one row
        against ~0.4 ms through the booster)."""
        if self.algorithm == "xgboost":
            if not hasattr(self, "compiled_"):
                from ownlens.ml.models.compiled import compile_xgboost

                self.compiled_ = compile_xgboost(self.model_.get_booster())
            if self.compiled_ is not None:
                return self._output(self.compiled_.predict(X))
        return self._output(self._raw(X))

    def _validated(self, X, reset: bool):
        X = validate_data(self, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan")
        _check_finite(X)
        return X

    def _validated_xy(self, X, y, **kw):
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", **kw)
        _check_finite(X)
        return X, y

    def set_threads(self, n: int) -> None:
        """Threads for prediction: 1 for single-row serving, where thread start-up costs more than it saves."""
        self.n_jobs = n
        if self.algorithm == "xgboost":
            self.model_.get_booster().set_param({"nthread": n})

    def feature_importances(self) -> np.ndarray:
        """Normalised importance per input column (gain for boosters, |coefficient| or impurity otherwise)."""
        check_is_fitted(self)
        model = self.model_
        if self.algorithm == "xgboost":
            scores = model.get_booster().get_score(importance_type="gain")
            values = np.array([scores.get(f"f{i}", 0.0) for i in range(self.n_features_in_)])
        elif self.algorithm == "lightgbm":
            values = model.booster_.feature_importance(importance_type="gain").astype(float)
        else:
            last = model[-1]
            if hasattr(last, "feature_importances_"):
                values = np.asarray(last.feature_importances_, dtype=float)
            elif hasattr(last, "coef_"):
                values = np.abs(np.ravel(last.coef_)).astype(float)
            else:
                values = np.abs(last.coefs_[0]).sum(axis=1)
        total = values.sum()
        return values / total if total > 0 else values

    def contributions(self, X) -> np.ndarray | None:
        """Each input's share of each row's raw prediction (log-odds for classifiers, before calibration), relative
        to the average row: SHAP values computed by the booster itself, or coefficient times standardised input for
        the linear baselines (their exact SHAP values); None for random forests and MLPs."""
        check_is_fitted(self)
        X = self._validated(X, reset=False)
        if self.algorithm == "xgboost":
            import xgboost as xgb

            return self.model_.get_booster().predict(xgb.DMatrix(X), pred_contribs=True)[:, :-1]
        if self.algorithm == "lightgbm":
            return np.asarray(self.model_.booster_.predict(X, pred_contrib=True))[:, :-1]
        if self.algorithm in ("logistic", "linear"):
            return self.model_[:-1].transform(X) * np.ravel(self.model_[-1].coef_)
        return None

    # -- serialisation: native booster formats or skops, never pickle --------------------------
    def to_files(self) -> dict[str, bytes]:
        """The fitted estimator as named files: ``estimator.json`` plus the model in a safe format."""
        check_is_fitted(self)
        state = {"class": type(self).__name__, "params": self.get_params(), "n_features_in": int(self.n_features_in_)}
        state.update(self._extra_state())
        files = {}
        if self.algorithm == "xgboost":
            files["model.ubj"] = bytes(self.model_.get_booster().save_raw("ubj"))
        elif self.algorithm == "lightgbm":
            files["model.txt"] = self.model_.booster_.model_to_string().encode()
        else:
            import skops.io as sio

            files["model.skops"] = sio.dumps(self.model_)
        files["estimator.json"] = json.dumps(state).encode()
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]):
        state = json.loads(files["estimator.json"])
        est = cls(**state["params"])
        est._validate_params()  # a file's parameters get the same checks as a caller's
        est.n_features_in_ = int(state["n_features_in"])
        est._load_extra_state(state)
        if est.algorithm == "xgboost":
            import xgboost as xgb

            wrapper = xgb.XGBClassifier() if cls._task == "binary" else xgb.XGBRegressor()
            wrapper.load_model(bytearray(files["model.ubj"]))
            est.model_ = wrapper
        elif est.algorithm == "lightgbm":
            import lightgbm as lgb

            est.model_ = _LoadedLightGBM(lgb.Booster(model_str=files["model.txt"].decode()))
        else:
            import skops.io as sio

            untrusted = set(sio.get_untrusted_types(data=files["model.skops"])) - SKOPS_TRUSTED
            if untrusted:
                raise InvalidInput(f"refusing to load a model with untrusted types {sorted(untrusted)[:3]}: it was not written by OwnLens")
            est.model_ = sio.loads(files["model.skops"], trusted=sorted(SKOPS_TRUSTED))
        return est


class _LoadedLightGBM:
    """A LightGBM booster read back from its text format, with the attribute the estimator uses."""

    def __init__(self, booster):
        self.booster_ = booster


class OwnLensClassifier(ClassifierMixin, _OwnLensEstimator):
    """Binary classifier with class weighting and calibrated probabilities.

    Parameters
    ----------
    algorithm : {"xgboost", "lightgbm", "logistic", "random_forest", "mlp"}
    n_estimators, learning_rate, max_depth : booster size (forest size for random_forest)
    class_weight : "balanced" weights the rarer class up (before calibration), a {class: weight} dict, or None
    calibration : "sigmoid" fits Platt scaling on ``calibration_fraction`` of the rows, or None; those rows'
        calibrated probabilities and labels stay in ``holdout_`` after ``fit`` (None without them), for choosing a
        decision threshold on rows the booster did not learn from
    random_state, n_jobs : reproducibility and threads

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(400, 3)); y = (X[:, 0] > 0).astype(int)
    >>> OwnLensClassifier(algorithm="logistic").fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    """

    _task = "binary"
    _parameter_constraints = {
        **_OwnLensEstimator._parameter_constraints,
        "algorithm": [StrOptions(set(CLASSIFIER_ALGORITHMS))],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "calibration": [StrOptions({"sigmoid"}), None],
        "calibration_fraction": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(self, algorithm="xgboost", *, n_estimators=150, learning_rate=0.1, max_depth=5,
                 class_weight="balanced", calibration="sigmoid", calibration_fraction=0.2, random_state=0, n_jobs=None):
        self.algorithm = algorithm
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.class_weight = class_weight
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y):
        self._validate_params()
        X, y = self._validated_xy(X, y)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {y_type}.")
        if len(np.unique(y)) < 2:
            raise ValueError("the target has only 1 class: a classifier needs examples of both classes")
        self.classes_, y01 = np.unique(y, return_inverse=True)
        rng = np.random.default_rng(self.random_state if isinstance(self.random_state, Integral) else None)
        fit_idx, cal_idx = np.arange(len(y01)), np.array([], dtype=int)
        if self.calibration and min(np.bincount(y01)) >= 20:
            cal_mask = np.zeros(len(y01), bool)
            for cls in (0, 1):  # stratified hold-out
                members = np.flatnonzero(y01 == cls)
                cal_mask[rng.choice(members, int(round(len(members) * self.calibration_fraction)), replace=False)] = True
            fit_idx, cal_idx = np.flatnonzero(~cal_mask), np.flatnonzero(cal_mask)
        pos = y01[fit_idx].sum()
        if self.class_weight == "balanced":
            weight = (len(fit_idx) - pos) / max(pos, 1)
        elif isinstance(self.class_weight, dict):
            weight = float(self.class_weight.get(self.classes_[1], 1.0)) / float(self.class_weight.get(self.classes_[0], 1.0))
        else:
            weight = 1.0
        self.model_ = self._fit_model(X[fit_idx], y01[fit_idx], weight)
        self.calibrator_ = (1.0, 0.0)
        self.holdout_ = None
        if len(cal_idx):
            from sklearn.linear_model import LogisticRegression

            z = _logit(self._raw(X[cal_idx])).reshape(-1, 1)
            platt = LogisticRegression(C=1e6, max_iter=1000).fit(z, y01[cal_idx])
            self.calibrator_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
            # rows the booster never saw (only the two-parameter, monotone calibration did): where a decision
            # threshold is chosen, not on the test rows (kept in memory, not in the artifact)
            self.holdout_ = (y01[cal_idx], self._output(_logit_inverse(z.ravel())))
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        p = self._output(self._raw(self._validated(X, reset=False)))
        return np.column_stack([1 - p, p])

    def _output(self, raw: np.ndarray) -> np.ndarray:
        a, b = self.calibrator_
        return 1 / (1 + np.exp(-(a * _logit(raw) + b)))

    def predict(self, X):
        check_is_fitted(self)
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def _extra_state(self):
        return {"classes": self.classes_.tolist(), "calibrator": list(self.calibrator_)}

    def _load_extra_state(self, state):
        self.classes_ = np.asarray(state["classes"])
        self.calibrator_ = tuple(state["calibrator"])


class OwnLensRegressor(RegressorMixin, _OwnLensEstimator):
    """Regressor on the same algorithms; ``objective="poisson"`` for counts such as sessions.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 2)); y = 2 * X[:, 0] + 1
    >>> round(OwnLensRegressor(algorithm="linear").fit(X, y).score(X, y), 2)
    1.0
    """

    _task = "regression"
    _parameter_constraints = {
        **_OwnLensEstimator._parameter_constraints,
        "algorithm": [StrOptions(set(REGRESSOR_ALGORITHMS))],
        "objective": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, algorithm="xgboost", *, objective="squared_error", n_estimators=150, learning_rate=0.1,
                 max_depth=5, random_state=0, n_jobs=None):
        self.algorithm = algorithm
        self.objective = objective
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.positive_only = self.objective == "poisson"  # counts: no negative targets
        return tags

    def fit(self, X, y):
        self._validate_params()
        X, y = self._validated_xy(X, y, y_numeric=True)
        if not np.isfinite(y).all():
            raise ValueError("the target has NaN or infinite values")
        if self.objective == "poisson" and (y < 0).any():
            raise ValueError("objective='poisson' needs a non-negative target")
        self.model_ = self._fit_model(X, y, 1.0)
        return self

    def predict(self, X):
        check_is_fitted(self)
        return self._raw(self._validated(X, reset=False))

    def _extra_state(self):
        return {}

    def _load_extra_state(self, state):
        pass


class JsonStateEstimator(BaseEstimator):
    """Base of estimators whose fitted state is a few arrays and numbers, saved as one JSON file (never a pickle).

    Subclasses name their fitted attributes in ``fitted_attributes`` (those not set are left out); numeric lists come
    back as numpy arrays, ``feature_names_in_`` as an array of names.
    """

    fitted_attributes: tuple[str, ...] = ()

    def to_files(self) -> dict[str, bytes]:
        check_is_fitted(self)
        fitted = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in
                  ((k, getattr(self, k)) for k in self.fitted_attributes if hasattr(self, k))}
        return {"estimator.json": json.dumps({"class": type(self).__name__, "params": self.get_params(), "fitted": fitted}).encode()}

    @classmethod
    def from_files(cls, files: dict[str, bytes]):
        state = json.loads(files["estimator.json"])
        est = cls(**state["params"])
        est._validate_params()  # a file's parameters get the same checks as a caller's
        unexpected = set(state["fitted"]) - set(cls.fitted_attributes)
        if unexpected:
            raise InvalidInput(f"refusing an artifact with unexpected {cls.__name__} state {sorted(unexpected)[:3]}: it was not written by OwnLens")
        for key, value in state["fitted"].items():
            if isinstance(value, list) and value and not any(isinstance(v, (str, dict)) for v in np.ravel(np.asarray(value, dtype=object))):
                value = np.asarray(value, dtype=float)
            if key == "feature_names_in_":
                value = np.asarray(value, dtype=object)
            setattr(est, key, value)
        return est

    def set_threads(self, n: int) -> None:
        pass


__all__ = ["OwnLensClassifier", "OwnLensRegressor", "JsonStateEstimator"]
