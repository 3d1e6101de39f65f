"""The burst detector: views of an hour against the item's own seasonal baseline (hour of day and weekday).

An item's expected views in an hour are its usual weekly volume times the share of a week's views that fall in that
hour of the week (the profile, learnt from history). The score is a z-score under a negative-binomial-shaped variance
learnt on the same history (upper quantiles of the squared Pearson residuals, since readers come in clumps: a new article
pulls its topic up for hours; and big counts vary in proportion to their size), so a category that always wobbles does not alarm. Expectations below ``min_expected``
views are raised to it: a topic that is almost never read must not alarm on its first handful of readers. A burst is
an hour whose score, views and ratio to expectation are all high; the score's bar is ``z_threshold``, raised when
more than ``alert_rate`` of the history's hours would have cleared it (an alert budget, learnt without labels).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ownlens.ml.models.estimators import JsonStateEstimator

HOURS_PER_WEEK = 168


class SeasonalBurstDetector(JsonStateEstimator):
    """Rows are ``[hour_of_week, views, weekly_volume, hour_index]`` (hour of week 0 = Monday 00:00 UTC; the hour's
    index, e.g. hours since the epoch, optional: it tells fit how many distinct hours each hour of the week had).
    ``fit`` learns the hour-of-week profile from the views and the overdispersion of views around
    ``weekly_volume x profile``;
    ``decision_function`` gives the z-score, ``predict`` 1 for a burst hour.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0); slot = np.tile(np.arange(168), 20)
    >>> X = np.column_stack([slot, rng.poisson(20, len(slot)), np.full(len(slot), 20 * 168)])
    >>> det = SeasonalBurstDetector().fit(X)
    >>> det.predict([[5, 20, 20 * 168], [5, 80, 20 * 168]]).tolist()
    [0, 1]
    """

    _parameter_constraints = {
        "z_threshold": [Interval(Real, 0, None, closed="neither")],
        "min_views": [Interval(Integral, 0, None, closed="left")],
        "min_ratio": [Interval(Real, 1, None, closed="left")],
        "min_expected": [Interval(Real, 0, None, closed="left")],
        "alert_rate": [Interval(Real, 0, 1, closed="right")],
    }
    fitted_attributes = ("n_features_in_", "profile_", "dispersion_", "relative_dispersion_", "threshold_", "weekly_default_")

    def __init__(self, z_threshold=5.0, *, min_views=5, min_ratio=2.5, min_expected=2.0, alert_rate=0.0025):
        self.z_threshold = z_threshold
        self.alert_rate = alert_rate
        self.min_views = min_views
        self.min_ratio = min_ratio
        self.min_expected = min_expected

    def _columns(self, X, reset: bool):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        slot = np.mod(np.floor(np.abs(X[:, 0])), HOURS_PER_WEEK).astype(int)
        views = np.maximum(X[:, min(1, X.shape[1] - 1)], 0)
        if X.shape[1] >= 3:
            return slot, views, np.maximum(X[:, 2], 0)
        # (no weekly volume given: the mean views seen, a week of them; scikit-learn's checks pass any shape)
        if reset:
            self.weekly_default_ = float(views.mean() * HOURS_PER_WEEK)
        return slot, views, np.full(len(views), getattr(self, "weekly_default_", 0.0))

    def fit(self, X, y=None):
        self._validate_params()
        slot, views, weekly = self._columns(X, reset=True)
        # the mean views in each hour of the week (a mean, not a sum: the history may hold more Mondays than Sundays),
        # over the distinct hours seen (the fourth column, when given: rows are items, and an item without views in
        # an hour has no row), else over rows; an hour never seen takes its hour of day's mean on the other days
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1] >= 4:
            seen = np.unique(np.column_stack([slot, np.floor(X[:, 3])]), axis=0)
            rows = np.bincount(seen[:, 0].astype(int), minlength=HOURS_PER_WEEK)
        else:
            rows = np.bincount(slot, minlength=HOURS_PER_WEEK)
        mean = np.bincount(slot, weights=views, minlength=HOURS_PER_WEEK) / np.maximum(rows, 1)
        by_day = (rows.reshape(7, 24) > 0)
        hourly = np.where(by_day.any(axis=0), (mean.reshape(7, 24) * by_day).sum(axis=0) / np.maximum(by_day.sum(axis=0), 1),
                          mean[rows > 0].mean() if (rows > 0).any() else 1.0)
        mean = np.where(rows > 0, mean, np.tile(hourly, 7)) + 1e-3 * (mean[rows > 0].mean() if (rows > 0).any() else 1.0) + 1e-12
        self.profile_ = mean / mean.sum()
        expected = weekly * self.profile_[slot]
        known = expected > 1
        mu = expected[known]
        r2 = (views[known] - mu) ** 2 / mu  # squared Pearson residuals: about 1 for a Poisson
        self.dispersion_, self.relative_dispersion_ = 1.0, 0.0
        if known.sum() >= 10:
            # variance = dispersion x mu + relative_dispersion x mu^2 (a negative binomial's shape: big counts vary in
            # proportion), fitted to the 90th percentile of r2 (over its Poisson value, 2.706) in ten bins of mu
            edges = np.quantile(mu, np.linspace(0, 1, 11)[1:-1])
            bins = np.searchsorted(edges, mu, side="right")
            used = [b for b in range(10) if (bins == b).sum() >= 5]
            level = np.array([np.quantile(r2[bins == b], 0.9) / 2.706 for b in used])
            centre = np.array([np.median(mu[bins == b]) for b in used])
            if len(used) >= 2 and np.ptp(centre) > 0:
                from scipy.optimize import nnls

                (phi, alpha), _ = nnls(np.column_stack([np.ones(len(used)), centre]), level)
                self.dispersion_, self.relative_dispersion_ = float(max(1.0, phi)), float(alpha)
            else:
                self.dispersion_ = float(max(1.0, np.quantile(r2, 0.9) / 2.706))
        # the alert budget: the threshold rises above z_threshold until at most alert_rate of the history's rows
        # would have alerted (with more readers, one appealing article lifts its topic by more z: the scale moves)
        z = self.decision_function(X)
        self.threshold_ = float(max(self.z_threshold, np.quantile(z, 1 - self.alert_rate))) if len(z) else float(self.z_threshold)
        return self

    def expected(self, X) -> np.ndarray:
        """The item's usual views in that hour of the week."""
        check_is_fitted(self)
        slot, _, weekly = self._columns(X, reset=False)
        return weekly * self.profile_[slot]

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        slot, views, weekly = self._columns(X, reset=False)
        expected = np.maximum(weekly * self.profile_[slot], self.min_expected)
        relative = getattr(self, "relative_dispersion_", 0.0)  # (0 in versions saved before it was learnt)
        return (views - expected) / np.sqrt(self.dispersion_ * expected + relative * expected ** 2 + 1.0)

    def predict(self, X) -> np.ndarray:
        slot, views, weekly = self._columns(X, reset=False)
        z = self.decision_function(X)
        expected = np.maximum(weekly * self.profile_[slot], self.min_expected)
        threshold = getattr(self, "threshold_", self.z_threshold)  # (versions saved before the budget: z_threshold)
        return ((z >= threshold) & (views >= self.min_views) & (views >= self.min_ratio * expected)).astype(int)

    def predict_few(self, X) -> np.ndarray:
        return self.decision_function(X)

    def feature_importances(self) -> np.ndarray:
        """Views and their usual volume decide; the hour of the week only places them."""
        check_is_fitted(self)
        return np.array([0.0, 1.0, 1.0, 0.0][: self.n_features_in_] + [0.0] * max(0, self.n_features_in_ - 4))
