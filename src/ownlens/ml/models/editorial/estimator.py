"""The article performance estimator: two boosted regressors on the same inputs, one for an article's 7-day views
(on the log scale, where an editor's "how big" lives) and one for its completion rate."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ownlens.ml.models.estimators import OwnLensRegressor


class ArticlePerformanceRegressor(RegressorMixin, BaseEstimator):
    """``fit(X, y, completion=None)``: ``y`` is log1p(views at 7 days); ``completion`` (optional, NaN where unknown)
    the completion rate. ``predict`` gives log1p(views), ``predict_completion`` the rate (NaN without that model).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 3)); y = 2 + X[:, 0]
    >>> est = ArticlePerformanceRegressor(n_estimators=50).fit(X, y, completion=0.3 + 0.1 * np.tanh(X[:, 1]))
    >>> bool(est.score(X, y) > 0.8), bool(abs(est.predict_completion(X).mean() - 0.3) < 0.05)
    (True, True)
    """

    def __init__(self, algorithm="xgboost", *, n_estimators=300, learning_rate=0.05, max_depth=4, random_state=0, n_jobs=None):
        self.algorithm = algorithm
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _regressor(self) -> OwnLensRegressor:
        return OwnLensRegressor(self.algorithm, n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                                max_depth=self.max_depth, random_state=self.random_state, n_jobs=self.n_jobs)

    def fit(self, X, y, completion=None):
        self.views_ = self._regressor().fit(X, y)
        self.n_features_in_ = self.views_.n_features_in_
        self.completion_ = None
        if completion is not None:
            completion = np.asarray(completion, dtype=float)
            known = np.isfinite(completion)
            if known.sum() >= 20:
                self.completion_ = self._regressor().fit(np.asarray(X, dtype=float)[known], completion[known])
        return self

    def predict(self, X):
        check_is_fitted(self)
        return self.views_.predict(X)

    def predict_completion(self, X) -> np.ndarray:
        check_is_fitted(self)
        if self.completion_ is None:
            return np.full(len(X), np.nan)
        return np.clip(self.completion_.predict(X), 0, 1)

    def predict_few(self, X: np.ndarray) -> np.ndarray:
        return self.predict(X)

    def feature_importances(self) -> np.ndarray:
        return self.views_.feature_importances()

    def set_threads(self, n: int) -> None:
        for part in (self.views_, self.completion_):
            if part is not None:
                part.set_threads(n)

    def to_files(self) -> dict[str, bytes]:
        import json

        check_is_fitted(self)
        files = {f"primary/{k}": v for k, v in self.views_.to_files().items()}
        if self.completion_ is not None:
            files |= {f"secondary/{k}": v for k, v in self.completion_.to_files().items()}
        state = {"class": type(self).__name__, "params": self.get_params(), "n_features_in": int(self.n_features_in_)}
        return files | {"estimator.json": json.dumps(state).encode()}

    @classmethod
    def from_files(cls, files: dict[str, bytes]):
        import json

        state = json.loads(files["estimator.json"])
        est = cls(**state["params"])
        est.n_features_in_ = int(state["n_features_in"])

        def part(prefix: str):
            inner = {k.removeprefix(prefix): v for k, v in files.items() if k.startswith(prefix)}
            return OwnLensRegressor.from_files(inner) if inner else None

        est.views_, est.completion_ = part("primary/"), part("secondary/")
        if est.views_ is None:
            raise ValueError("the artifact has no views model")
        return est
