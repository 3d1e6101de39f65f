"""The placement bandit: Beta posteriors of click-through rates per (context, arm), and Thompson sampling (no I/O).

A scikit-learn classifier of clicks: each row of ``X`` is an impression's context (all columns but the last, e.g.
the device) and arm (the last column, the placement); ``y`` is 1 for a click; ``sample_weight`` counts rows that
stand for many impressions. Each context's click rate per arm is shrunk towards the arm's rate over all contexts
(``prior_strength`` pseudo-impressions), so sparse contexts borrow strength. The arms' prices (``cpm``: revenue
per 1,000 impressions, ``click_value``: per click) turn click rates into expected revenue; the training code
reads them from the warehouse.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ownlens.ml.models.estimators import JsonStateEstimator

ALL = "all"  # the context that pools every other one


class PlacementBandit(ClassifierMixin, JsonStateEstimator):
    """Thompson sampling over arms (placements) by context (device), with a revenue model.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([["mobile", "top"], ["mobile", "top"], ["mobile", "footer"], ["mobile", "footer"]])
    >>> bandit = PlacementBandit(prior_strength=1.0).fit(X, [1, 0, 0, 0], sample_weight=[30, 70, 5, 95])
    >>> bandit.decide(["mobile"], [1.0])[0].tolist()  # the arm with the highest expected value
    [1]
    """

    _parameter_constraints = {
        "prior_strength": [Interval(Real, 0, None, closed="left")],
        "user_prior_clicks": [Interval(Real, 0, None, closed="neither")],
        "cpm": [dict, None],
        "click_value": [dict, None],
        "random_state": ["random_state"],
    }
    fitted_attributes = ("n_features_in_", "classes_", "contexts_", "placements_", "alpha_", "beta_", "cpm_", "click_value_",
                         "base_ctr_")

    def __init__(self, *, prior_strength=200.0, user_prior_clicks=2.0, cpm=None, click_value=None, random_state=0):
        self.prior_strength = prior_strength
        self.user_prior_clicks = user_prior_clicks
        self.cpm = cpm
        self.click_value = click_value
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.poor_score = True  # a click-rate model, not meant to separate classes
        tags.input_tags.string = True
        return tags

    def fit(self, X, y, sample_weight=None):
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=None)
        check_classification_targets(y)
        if type_of_target(y) not in ("binary", "unary") and len(np.unique(y)) > 2:
            raise ValueError("Only binary classification is supported: y is a click (1) or not (0)")
        self.classes_, clicks = np.unique(y, return_inverse=True)
        if len(self.classes_) == 1:  # only clicks, or none: the positive class is the other one
            clicks = np.full(len(y), 1 if self.classes_[0] == 1 else 0)
            self.classes_ = np.array([0, 1]) if self.classes_[0] in (0, 1) else np.array([self.classes_[0], self.classes_[0]])
        weight = _check_sample_weight(sample_weight, X)
        keep = weight > 0  # a row of no weight is no row
        X, clicks, weight = X[keep], clicks[keep], weight[keep]
        if not len(X):
            raise ValueError("every sample weight is 0: nothing to learn from")
        contexts, arms = _contexts(X), X[:, -1].astype(str)
        self.placements_ = sorted(set(arms))
        self.contexts_ = [ALL, *sorted(set(contexts) - {ALL})]
        arm = np.searchsorted(self.placements_, arms)
        impressions = np.bincount(arm, weights=weight, minlength=len(self.placements_))
        clicked = np.bincount(arm, weights=weight * clicks, minlength=len(self.placements_))
        pooled = (clicked + 1) / (impressions + 2)
        alpha, beta = np.zeros((len(self.contexts_), len(self.placements_))), np.zeros((len(self.contexts_), len(self.placements_)))
        alpha[0], beta[0] = clicked + 2.0 * pooled, impressions - clicked + 2.0 * (1 - pooled)
        context = np.array([self.contexts_.index(c) for c in contexts])
        for i in range(1, len(self.contexts_)):  # each context shrunk towards the pooled rate
            rows = context == i
            n = np.bincount(arm[rows], weights=weight[rows], minlength=len(self.placements_))
            k = np.bincount(arm[rows], weights=(weight * clicks)[rows], minlength=len(self.placements_))
            alpha[i], beta[i] = k + self.prior_strength * pooled, n - k + self.prior_strength * (1 - pooled)
        self.alpha_, self.beta_ = alpha, beta
        self.cpm_ = np.array([float((self.cpm or {}).get(p, 0.0)) for p in self.placements_])
        self.click_value_ = np.array([float((self.click_value or {}).get(p, 1.0 if self.cpm is None else 0.0)) for p in self.placements_])
        self.base_ctr_ = float(clicked.sum() / max(impressions.sum(), 1))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Posterior mean click rate of each row's (context, arm); unknown contexts pool every context."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=None, reset=False)
        a, b = self._cells(_contexts(X), X[:, -1].astype(str))
        p = a / (a + b)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]

    def _cells(self, contexts, arms) -> tuple[np.ndarray, np.ndarray]:
        index = {c: i for i, c in enumerate(self.contexts_)}
        rows = np.array([index.get(c, 0) for c in contexts], dtype=int)
        known = {p: j for j, p in enumerate(self.placements_)}
        cols = np.array([known.get(a, -1) for a in arms], dtype=int)
        a = np.where(cols >= 0, self.alpha_[rows, np.maximum(cols, 0)], self.base_ctr_ * 2 + 1e-9)
        b = np.where(cols >= 0, self.beta_[rows, np.maximum(cols, 0)], (1 - self.base_ctr_) * 2 + 1e-9)
        return a, b

    def responsiveness(self, impressions, clicks) -> np.ndarray:
        """Each user's click rate relative to the average, shrunk to 1 for users with little history."""
        impressions, clicks = np.nan_to_num(np.asarray(impressions, float)), np.nan_to_num(np.asarray(clicks, float))
        prior = self.user_prior_clicks
        return (clicks + prior) / (impressions * self.base_ctr_ + prior)

    def expected_revenue(self, contexts, responsiveness, explore: bool = False, rng=None) -> np.ndarray:
        """Expected revenue per 1,000 impressions, users x arms (click rates sampled from the posteriors when ``explore``)."""
        check_is_fitted(self)
        index = {c: i for i, c in enumerate(self.contexts_)}
        rows = np.array([index.get(c, 0) for c in contexts], dtype=int)
        a, b = self.alpha_[rows], self.beta_[rows]
        ctr = (rng or np.random.default_rng(self.random_state)).beta(a, b) if explore else a / (a + b)
        return self.cpm_[None, :] + 1000 * ctr * np.asarray(responsiveness, float)[:, None] * self.click_value_[None, :]

    def decide(self, contexts, responsiveness, explore: bool = False, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """The arm (index) with the highest expected revenue per user, and all expected revenues."""
        revenue = self.expected_revenue(contexts, responsiveness, explore, rng)
        return revenue.argmax(1), revenue

    def feature_importances(self) -> np.ndarray:
        """How much each input column moves the expected revenue: context (spread across contexts) and arm."""
        ctr = self.alpha_ / (self.alpha_ + self.beta_)
        revenue = self.cpm_[None, :] + 1000 * ctr * self.click_value_[None, :]
        spread = np.array([revenue.std(0).mean(), revenue.std(1).mean()])
        values = np.concatenate([np.full(self.n_features_in_ - 1, spread[0] / max(self.n_features_in_ - 1, 1)), spread[1:]])
        return values / values.sum() if values.sum() > 0 else np.full(self.n_features_in_, 1 / self.n_features_in_)

    @classmethod
    def from_files(cls, files: dict[str, bytes]):
        est = super().from_files(files)
        est.n_features_in_ = int(getattr(est, "n_features_in_", 2))  # (files of earlier versions lack the last two)
        est.classes_ = np.asarray(getattr(est, "classes_", [0, 1]))
        for name in ("cpm_", "click_value_", "alpha_", "beta_"):
            setattr(est, name, np.asarray(getattr(est, name), dtype=float))
        return est


def _contexts(X: np.ndarray) -> list[str]:
    """Each row's context: its columns but the last, as text ("mobile"); a single-column X has one context."""
    if X.shape[1] == 1:
        return [ALL] * len(X)
    return ["|".join(str(v) for v in row) for row in X[:, :-1]]
