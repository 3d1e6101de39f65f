"""The additive touch model behind incremental attribution (see ``incrementality``): a prospect's expected
conversions per day as a baseline by activity group plus what each channel's touches add, that day and over the
days after. A scikit-learn estimator over arrays; no I/O."""

from __future__ import annotations

import re
from numbers import Integral

import numpy as np
from scipy.optimize import minimize
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ownlens.ml.models.estimators import JsonStateEstimator

GROUPS = 5  # activity groups (quintiles of sessions per day)
CARRYOVER_DAYS = 7


class AdditiveTouchModel(JsonStateEstimator):
    """Expected conversions per prospect-day: ``baseline[group] + effect . touches + carryover . touches_before``.

    Rows of ``X`` are ``[activity group, touches per channel that day..., touches per channel in the days before...]``
    (so ``1 + 2k`` columns for ``k`` channels; an odd number of touch columns are all of the same day), ``y`` the
    conversions, ``exposure`` the prospect-days each row stands for (rows are usually aggregated; ``y`` is then their
    total) and ``sample_weight`` how many times a row counts. ``predict`` gives the expected conversions per
    prospect-day, ``contributions`` its parts (baseline, then each channel).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); n = 200_000
    >>> X = np.column_stack([rng.integers(0, 2, n), rng.poisson(0.3, n), np.zeros(n)])
    >>> y = rng.poisson(0.002 + 0.002 * X[:, 0] + 0.02 * X[:, 1])
    >>> m = AdditiveTouchModel(groups=2).fit(X, y)
    >>> bool(abs(m.effect_[0] - 0.02) < 0.004)
    True
    """

    _parameter_constraints = {"groups": [Interval(Integral, 1, None, closed="left")]}
    fitted_attributes = ("n_features_in_", "baseline_", "effect_", "carryover_", "converged_")

    def __init__(self, groups: int = GROUPS):
        self.groups = groups

    def _parts(self, X, reset: bool):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        rest = X.shape[1] - 1
        k = rest // 2 if rest % 2 == 0 else rest  # an odd count of touch columns: all of the same day, no carry-over
        group = np.clip(np.nan_to_num(X[:, 0]).astype(int), 0, self.groups - 1)
        same = np.maximum(X[:, 1:1 + k], 0)
        prior = np.maximum(X[:, 1 + k:], 0) if rest % 2 == 0 else np.zeros((len(X), k))
        return group, same, prior

    def fit(self, X, y, sample_weight=None, exposure=None):
        self._validate_params()
        group, same, prior = self._parts(X, reset=True)
        y = np.asarray(y, dtype=float)
        if y.shape != (len(group),) or (y < 0).any() or not np.isfinite(y).all():
            raise ValueError("y must hold one non-negative count of conversions per row")
        weight = _check_sample_weight(sample_weight, group.astype(float))
        days = np.ones(len(y)) if exposure is None else np.asarray(exposure, dtype=float)
        D = np.hstack([np.eye(self.groups)[group], same, prior]) * days[:, None]
        scale = D.max(0)
        scale[scale <= 0] = 1.0
        Ds = D / scale

        def nll(theta):
            mu = np.maximum(Ds @ theta, 1e-12)
            return float(weight @ mu - (weight * y) @ np.log(mu)), Ds.T @ (weight * (1 - y / mu))

        start = np.full(D.shape[1], 1e-3)
        start[:self.groups] = max(weight @ y, 1e-9) / max(weight @ days, 1e-9) * scale[:self.groups]
        res = minimize(nll, start, jac=True, method="L-BFGS-B", bounds=[(0, None)] * D.shape[1], options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-12})
        theta = res.x / scale
        k = same.shape[1]
        self.baseline_, self.effect_, self.carryover_ = theta[:self.groups], theta[self.groups:self.groups + k], theta[self.groups + k:]
        if len(self.carryover_) == 0:
            self.carryover_ = np.zeros(k)
        self.converged_ = bool(res.success)
        return self

    def contributions(self, X) -> np.ndarray:
        """Per row: the baseline's expected conversions per prospect-day, then each channel's (touches and carryover)."""
        check_is_fitted(self)
        group, same, prior = self._parts(X, reset=False)
        return np.hstack([self.baseline_[group][:, None], same * self.effect_ + prior * self.carryover_])

    def predict(self, X) -> np.ndarray:
        return self.contributions(X).sum(1)

    def per_touch(self) -> np.ndarray:
        """Conversions one more touch of each channel brings, that day and over the carry-over days after."""
        check_is_fitted(self)
        return self.effect_ + CARRYOVER_DAYS * self.carryover_

    def feature_importances(self) -> np.ndarray:
        check_is_fitted(self)
        return np.concatenate([[float(np.mean(self.baseline_))], self.effect_, self.carryover_])


def feature_names(channels) -> list[str]:
    return ["activity_group", *[f"touches:{c}" for c in channels], *[f"carryover:{c}" for c in channels]]


class ChannelInputs(tuple):
    """The inputs of the attribution model: ``activity_group`` and per channel ``touches:<code>`` and
    ``carryover:<code>``; channel codes are data (whatever marketing_channels holds), so names are checked by shape."""

    def __contains__(self, name) -> bool:
        return name == "activity_group" or bool(re.fullmatch(r"(touches|carryover):[A-Za-z0-9_.-]{1,64}", str(name)))
