"""The recommender's estimator: how to blend ranking signals into one score, learnt for precision at k (no I/O).

Rows of ``X`` are (user, candidate article) pairs and its columns the signals (``signals.py`` builds them for a
date); ``y`` says which candidates the user read afterwards; ``groups`` which user each row belongs to. ``fit``
learns one weight per signal by coordinate ascent on precision@k (the first signal's weight stays 1: a ranking
does not change when every weight is scaled); ``predict`` gives each row's blended score.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ownlens.ml.models.estimators import JsonStateEstimator

TOP_K = 10
GRID = (0.0, 0.25, 0.5, 1.0, 2.0)  # each signal's weight is picked from these, the others held


class HybridRecommender(JsonStateEstimator):
    """A weighted blend of ranking signals, its weights learnt for precision@k.

    ``collaborative``, ``n_components``, the ``*_weight``s of the content vectors and ``freshness`` (with
    ``freshness_hours``) say how ``signals.py`` computes the signals of a date: co-reading by item kNN or
    seed 003's NMF; the weights of brand, category, topic and section (brand x category) in the content
    vectors; recency ranked within the section or decaying with age. They are kept here so that a version
    is one artifact; ``fit`` and ``predict`` only see the signal matrix.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).random((200, 3)); y = (X[:, 1] > 0.8).astype(int)
    >>> HybridRecommender(k=5).fit(X, y, groups=np.repeat(np.arange(20), 10)).weights_[1] > 0
    True
    """

    _parameter_constraints = {
        "collaborative": [StrOptions({"item_knn", "nmf"})],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "brand_weight": [Interval(Real, 0, None, closed="left")],
        "category_weight": [Interval(Real, 0, None, closed="left")],
        "topic_weight": [Interval(Real, 0, None, closed="left")],
        "section_weight": [Interval(Real, 0, None, closed="left")],
        "freshness": [StrOptions({"section", "age"})],
        "freshness_hours": [Interval(Real, 0, None, closed="neither")],
        "k": [Interval(Integral, 1, None, closed="left")],
        "rounds": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    fitted_attributes = ("n_features_in_", "weights_", "grid_scores_")

    def __init__(self, *, collaborative="item_knn", n_components=16, brand_weight=0.6, category_weight=1.0, topic_weight=0.5,
                 section_weight=1.0, freshness="section", freshness_hours=36.0, k=TOP_K, rounds=2, random_state=0):
        self.collaborative = collaborative
        self.n_components = n_components
        self.brand_weight = brand_weight
        self.category_weight = category_weight
        self.topic_weight = topic_weight
        self.section_weight = section_weight
        self.freshness = freshness
        self.freshness_hours = freshness_hours
        self.k = k
        self.rounds = rounds
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        """Learn the weights: coordinate ascent, each weight but the first picked from a grid with the others held,
        ``rounds`` times over, for the mean precision@k over the groups (users) with any relevant row."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        groups = np.zeros(len(X), dtype=np.int64) if groups is None else np.asarray(groups)
        if len(groups) != len(X):
            raise ValueError(f"groups has {len(groups)} entries for {len(X)} rows")
        signals, relevant = _by_group(X, np.asarray(y) > 0, groups)
        scores: dict[tuple, float] = {}

        def score(weights: tuple) -> float:
            if weights not in scores:
                blended = np.where(np.isnan(signals[..., 0]), -np.inf, signals @ np.array(weights))
                scores[weights] = precision_at_k(blended, relevant, self.k)
            return scores[weights]

        anchored = tuple(1.0 if j == 0 else 0.0 for j in range(X.shape[1]))
        best = anchored
        for _ in range(self.rounds):
            for j in range(1, X.shape[1]):
                best = max((best[:j] + (g,) + best[j + 1:] for g in GRID), key=lambda w: (score(w), -sum(w)))
        self.weights_ = np.array(best)
        self.grid_scores_ = {"best": score(best), "first_signal_only": score(anchored), "evaluated": len(scores)}
        return self

    def predict(self, X) -> np.ndarray:
        """Each row's blended score."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.weights_

    def blend(self, signals: list[np.ndarray]) -> np.ndarray:
        """The blended scores of signal matrices (users x candidates each, in the order of ``X``'s columns):
        :meth:`predict` without stacking them into one design matrix first."""
        check_is_fitted(self)
        if len(signals) != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} signal matrices, got {len(signals)}")
        return sum(w * s for w, s in zip(self.weights_, signals) if w)

    def feature_importances(self) -> np.ndarray:
        w = np.asarray(self.weights_, dtype=float)
        return w / w.sum() if w.sum() else w

    @classmethod
    def from_files(cls, files: dict[str, bytes]):
        est = super().from_files(files)
        est.n_features_in_ = int(getattr(est, "n_features_in_", len(est.weights_)))  # (files of earlier versions lack it)
        return est


def _by_group(X: np.ndarray, relevant: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows as groups x (largest group) x signals, padded with NaN, and relevance padded with False."""
    _, group_of = np.unique(groups, return_inverse=True)
    order = np.argsort(group_of, kind="stable")
    sizes = np.bincount(group_of)
    position = np.arange(len(order)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    signals = np.full((len(sizes), sizes.max(), X.shape[1]), np.nan)
    signals[group_of[order], position] = X[order]
    padded = np.zeros(signals.shape[:2], dtype=bool)
    padded[group_of[order], position] = relevant[order]
    return signals, padded


def precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Mean precision@k over the rows (users) of a users x candidates score matrix with any relevant candidate."""
    keep = relevant.any(1)
    if not keep.any():
        return 0.0
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores[keep], k - 1, axis=1)[:, :k]
    hits = np.take_along_axis(relevant[keep], top, 1) & np.isfinite(np.take_along_axis(scores[keep], top, 1))
    return float(hits.sum(1).mean() / k)


def top_k(scores: np.ndarray, read: sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k candidate indexes and scores per user (row), articles already read (``read`` > 0) excluded."""
    k = min(k, scores.shape[1])
    scores = np.array(scores, dtype=float)
    coo = read.tocoo()
    scores[coo.row, coo.col] = -np.inf
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
    top = np.take_along_axis(top, order, 1)
    return top, np.take_along_axis(scores, top, 1)


def ranking_metrics(top: np.ndarray, truth: sparse.csr_matrix) -> dict:
    """precision@k, recall@k, hit rate@k and NDCG@k over users with at least one relevant item."""
    relevant = (truth > 0).toarray()
    has = relevant.sum(1)
    keep = has > 0
    if not keep.any():
        return {"precision_at_k": None, "recall_at_k": None, "hit_rate_at_k": None, "ndcg_at_k": None, "users": 0}
    hits = np.take_along_axis(relevant, top, 1).astype(float)[keep]
    k = top.shape[1]
    discounts = 1 / np.log2(np.arange(2, k + 2))
    ideal = np.array([discounts[:min(int(h), k)].sum() for h in has[keep]])
    return {"precision_at_k": float(hits.sum(1).mean() / k), "recall_at_k": float((hits.sum(1) / has[keep]).mean()),
            "hit_rate_at_k": float((hits.sum(1) > 0).mean()), "ndcg_at_k": float(((hits * discounts).sum(1) / ideal).mean()),
            "users": int(keep.sum())}
