"""The lifetime-value estimator: BG/NBD for how many purchases a customer makes and whether they are still "alive"
(Fader, Hardie & Lee 2005), Gamma-Gamma for their spend per purchase (Fader & Hardie 2013), in closed form over numpy
and scipy so that the fitted state is six numbers in JSON. ``clv.fit_bgnbd`` (the ``lifetimes`` library) is the
reference it is checked against on CDNOW. A scikit-learn estimator; no I/O.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ownlens.ml.models.estimators import JsonStateEstimator


def bgnbd_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Each customer's BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def gamma_gamma_log_likelihood(params, x, m) -> np.ndarray:
    """Each repeat customer's Gamma-Gamma log-likelihood of their mean spend ``m`` over ``x`` purchases."""
    p, q, v = params
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v) + (p * x - 1) * np.log(m)
            + p * x * np.log(x) - (p * x + q) * np.log(v + m * x))


def _fit(nll, start) -> np.ndarray:
    """Minimise over log-parameters: quasi-Newton first (few evaluations, what a million customers need), then
    Nelder-Mead from there to polish (the literature's fits to 3 digits)."""
    z = minimize(lambda z: nll(np.exp(z)), np.log(start), method="L-BFGS-B", options={"maxiter": 500}).x
    res = minimize(lambda z: nll(np.exp(z)), z, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 2_000})
    return np.exp(res.x)


class BuyTillYouDie(JsonStateEstimator):
    """Rows of ``X`` are customers ``[frequency, recency, T, monetary_value]`` as ``lifetimes`` summarises them
    (repeat purchases, the ages at the last purchase and now, in periods, and the mean spend of the repeat purchases).

    ``fit`` learns BG/NBD's ``r, alpha, a, b`` and Gamma-Gamma's ``p, q, v`` (from the customers with repeat purchases;
    fewer than ``min_repeat`` of them: the spend model is left out and everyone gets the mean spend seen);
    ``predict(X)`` the expected purchases in the next ``horizon`` periods, ``probability_alive(X)``,
    ``expected_spend(X)`` per purchase, and ``expected_value(X)`` their product.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1); n = 4000; T = np.full(n, 52.0)
    >>> lam, p = rng.gamma(0.5, 1 / 5.0, n), rng.beta(1.0, 4.0, n)
    >>> x = np.minimum(rng.poisson(lam * 26), 20).astype(float); t_x = np.where(x > 0, rng.uniform(0, 52, n), 0)
    >>> m = BuyTillYouDie(horizon=13).fit(np.column_stack([x, t_x, T, np.where(x > 0, 30.0, 0)]))
    >>> bool(m.predict(np.array([[5.0, 50.0, 52.0, 30.0]]))[0] > m.predict(np.array([[5.0, 5.0, 52.0, 30.0]]))[0])
    True
    """

    _parameter_constraints = {"horizon": [Interval(Real, 0, None, closed="neither")],
                              "penalizer": [Interval(Real, 0, None, closed="left")],
                              "min_repeat": [Interval(Real, 1, None, closed="left")]}
    fitted_attributes = ("n_features_in_", "bgnbd_", "gamma_gamma_", "mean_spend_")

    def __init__(self, horizon: float = 13.0, penalizer: float = 0.0, min_repeat: int = 10):
        self.horizon = horizon
        self.penalizer = penalizer
        self.min_repeat = min_repeat

    def _columns(self, X, reset: bool):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        X = np.abs(X)  # ages and counts are non-negative (scikit-learn's checks pass any sign)
        cols = [X[:, min(i, X.shape[1] - 1)] for i in range(4)]
        x, t_x, T, m = np.floor(cols[0]), cols[1], cols[2], cols[3]
        T = np.maximum(T, t_x)  # the last purchase cannot come after now
        return x, np.where(x > 0, t_x, 0.0), T, m

    def fit(self, X, y=None):
        self._validate_params()
        x, t_x, T, m = self._columns(X, reset=True)
        pen = self.penalizer
        # customers with the same (frequency, recency, age) have the same likelihood: a warehouse's day-resolution ages
        # make a million customers a few hundred thousand distinct rows
        rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
        ux, ut_x, uT, weight = rows[:, 0], rows[:, 1], rows[:, 2], counts / counts.sum()

        def bg_nll(params):
            return -(weight @ bgnbd_log_likelihood(params, ux, ut_x, uT)) + pen * np.sum(params ** 2)

        self.bgnbd_ = _fit(bg_nll, [1.0, max(float(T.mean()), 1e-3), 1.0, 1.0])
        repeat = (x > 0) & (m > 0)
        self.mean_spend_ = float(m[repeat].mean()) if repeat.any() else float(m.mean())
        if repeat.sum() >= self.min_repeat:
            def gg_nll(params):
                return -gamma_gamma_log_likelihood(params, x[repeat], m[repeat]).mean() + pen * np.sum(params ** 2)

            self.gamma_gamma_ = _fit(gg_nll, [1.0, 2.0, max(self.mean_spend_, 1e-3)])
        else:
            self.gamma_gamma_ = np.array([])
        return self

    def probability_alive(self, X) -> np.ndarray:
        check_is_fitted(self)
        x, t_x, T, _ = self._columns(X, reset=False)
        r, alpha, a, b = self.bgnbd_
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x))), 0.0)
        return 1.0 / (1.0 + odds)

    def predict(self, X, horizon: float | None = None) -> np.ndarray:
        """Expected purchases in the next ``horizon`` periods (default: the estimator's)."""
        check_is_fitted(self)
        x, t_x, T, _ = self._columns(X, reset=False)
        t = float(self.horizon if horizon is None else horizon)
        r, alpha, a, b = self.bgnbd_
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1 if abs(a - 1) > 1e-9 else 1e-9)  # (a < 1: both factors negative)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
        return np.maximum(head * body / (1 + odds), 0.0)

    def expected_spend(self, X) -> np.ndarray:
        """Expected spend per future purchase: the customer's mean shrunk to the population's (Gamma-Gamma)."""
        check_is_fitted(self)
        x, _, _, m = self._columns(X, reset=False)
        if len(self.gamma_gamma_) == 0:
            return np.full(len(x), self.mean_spend_)
        p, q, v = self.gamma_gamma_
        return np.where(x > 0, p * (v + x * m) / (p * x + q - 1), p * v / (q - 1) if q > 1 else self.mean_spend_)

    def expected_value(self, X, horizon: float | None = None) -> np.ndarray:
        return self.predict(X, horizon) * self.expected_spend(X)

    def feature_importances(self) -> np.ndarray:
        return np.full(self.n_features_in_, 1.0 / max(self.n_features_in_, 1))
