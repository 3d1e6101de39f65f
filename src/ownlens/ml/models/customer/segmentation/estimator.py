"""The segmenter: median imputation, scaling, PCA and K-Means as one scikit-learn estimator (no I/O), and the rules
that name its segments after the trait each stands out on (seed 003's segment types)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import ClusterMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ownlens.ml.models.estimators import JsonStateEstimator

# a segment is named after the trait it stands out on most (mean >= STANDS_OUT sd above or below all users)
NAMES = (
    ("is_subscriber", 1, "Paying subscribers"),
    ("has_newsletter", 1, "Newsletter subscribers"),
    ("video_share", 1, "Video consumers"),
    ("sessions_last_30d", 1, "High-engagement users"),
    ("avg_session_duration_sec", 1, "In-depth readers"),
    ("avg_session_duration_sec", -1, "Quick skimmers"),
    ("days_since_last_session", 1, "Lapsing readers"),
    ("mobile_first", 1, "Mobile-first users"),
    ("mobile_first", -1, "Desktop readers"),
    ("ad_click_rate", 1, "Ad clickers"),
    ("weekend_session_share", 1, "Weekend readers"),
    ("evening_session_share", 1, "Evening readers"),
)
STANDS_OUT = 0.4


class KMeansSegmenter(ClusterMixin, TransformerMixin, JsonStateEstimator):
    """Median imputation, standard scaling, PCA (``variance`` kept) and K-Means.

    ``n_clusters=None`` picks the number with the best silhouette between ``min_clusters`` and ``max_clusters``
    on a sample of ``selection_rows``. ``predict`` gives segment numbers, ``transform`` distances to the segment
    centres, ``confidence`` how much nearer the nearest centre is than the second (0..1). Fitted on a DataFrame
    whose columns are named like the segmentation inputs, segments are named after the trait they stand out on.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.vstack([np.zeros((50, 2)), np.full((50, 2), 5.0)]) + np.random.default_rng(0).normal(size=(100, 2))
    >>> KMeansSegmenter(min_clusters=2, max_clusters=3).fit(X).n_clusters_
    2
    """

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "min_clusters": [Interval(Integral, 2, None, closed="left")],
        "max_clusters": [Interval(Integral, 2, None, closed="left")],
        "variance": [Interval(Real, 0, 1, closed="right")],
        "selection_rows": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }
    fitted_attributes = ("n_features_in_", "feature_names_in_", "medians_", "mean_", "scale_", "pca_mean_", "components_",
                         "centers_", "n_clusters_", "silhouette_by_k_", "segment_names_", "sizes_")

    def __init__(self, n_clusters=None, *, min_clusters=3, max_clusters=8, variance=0.9, selection_rows=10_000,
                 random_state=0):
        self.n_clusters = n_clusters
        self.min_clusters = min_clusters
        self.max_clusters = max_clusters
        self.variance = variance
        self.selection_rows = selection_rows
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None):
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.metrics import silhouette_score

        self._validate_params()
        X = validate_data(self, X, ensure_all_finite="allow-nan", reset=True, dtype=np.float64)
        if len(X) < 2:
            raise ValueError(f"segmentation needs at least 2 rows, got {len(X)} sample")
        with np.errstate(all="ignore"):
            medians = np.nanmedian(X, axis=0) if np.isnan(X).any() else np.median(X, axis=0)
        self.medians_ = np.nan_to_num(medians)
        filled = np.where(np.isnan(X), self.medians_, X)
        self.mean_, scale = filled.mean(0), filled.std(0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (filled - self.mean_) / self.scale_
        n_components = self.variance if 0 < self.variance < 1 and min(Z.shape) > 1 else min(Z.shape)
        pca = PCA(n_components=n_components, svd_solver="full", random_state=self.random_state).fit(Z)
        self.pca_mean_, self.components_ = pca.mean_, pca.components_
        P = pca.transform(Z)
        rng = np.random.default_rng(self.random_state if isinstance(self.random_state, Integral) else None)
        sample = P[rng.choice(len(P), min(len(P), self.selection_rows), replace=False)]
        distinct = len(np.unique(P.round(12), axis=0))
        self.silhouette_by_k_ = {}
        if self.n_clusters is None:
            top = min(self.max_clusters, len(sample) - 1, distinct)
            for k in range(min(self.min_clusters, top), top + 1):
                labels = KMeans(k, n_init=3, random_state=self.random_state).fit_predict(sample)
                if 1 < len(np.unique(labels)) < len(sample):
                    self.silhouette_by_k_[str(k)] = float(silhouette_score(sample, labels))
            k = int(max(self.silhouette_by_k_, key=self.silhouette_by_k_.get)) if self.silhouette_by_k_ else 1
        else:
            k = int(self.n_clusters)
        km = KMeans(max(1, min(k, distinct)), n_init=5, random_state=self.random_state).fit(P)
        self.centers_, self.n_clusters_, self.labels_ = km.cluster_centers_, int(km.n_clusters), km.labels_
        self.sizes_ = np.bincount(self.labels_, minlength=self.n_clusters_) / len(P)
        names = [str(n) for n in getattr(self, "feature_names_in_", [f"x{i}" for i in range(X.shape[1])])]
        self.segment_names_ = name_segments(filled, self.labels_, self.n_clusters_, names)
        return self

    def _project(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, ensure_all_finite="allow-nan", reset=False, dtype=np.float64)
        filled = np.where(np.isnan(X), self.medians_, X)
        return ((filled - self.mean_) / self.scale_ - self.pca_mean_) @ self.components_.T

    def transform(self, X) -> np.ndarray:
        P = self._project(X)
        return np.sqrt(((P[:, None, :] - self.centers_[None, :, :]) ** 2).sum(-1))

    def predict(self, X) -> np.ndarray:
        return self.transform(X).argmin(1)

    def confidence(self, X) -> np.ndarray:
        return confidence(self.transform(X))

    def feature_importances(self) -> np.ndarray:
        """How far apart the segment centres lie along each input (standardised), as shares of the total."""
        centres = self.centers_ @ self.components_ + self.pca_mean_
        spread = (np.asarray(self.sizes_)[:, None] * (centres - centres.T @ np.asarray(self.sizes_)) ** 2).sum(0)
        return spread / spread.sum() if spread.sum() > 0 else np.full(len(spread), 1 / len(spread))

    @classmethod
    def from_files(cls, files: dict[str, bytes]):
        est = super().from_files(files)
        est.n_features_in_ = int(est.n_features_in_)
        est.n_clusters_ = int(est.n_clusters_)
        return est


def confidence(distances: np.ndarray) -> np.ndarray:
    """How much nearer each row's nearest centre is than its second nearest (0..1; 1 with one segment)."""
    if distances.shape[1] < 2:
        return np.ones(len(distances))
    ordered = np.sort(distances, axis=1)
    return np.clip(1 - ordered[:, 0] / np.maximum(ordered[:, 1], 1e-12), 0, 1)


def name_segments(X: np.ndarray, labels: np.ndarray, k: int, names: list[str]) -> list[str]:
    """Seed 003's segment types: each segment after the trait it stands out on most (unique names)."""
    mean, sd = X.mean(0), np.where(X.std(0) > 0, X.std(0), 1.0)
    z = np.array([(X[labels == c].mean(0) - mean) / sd if (labels == c).any() else np.zeros(X.shape[1]) for c in range(k)])
    out: list[str] = []
    for c in range(k):
        scored = sorted(((direction * z[c, names.index(col)], label) for col, direction, label in NAMES if col in names),
                        reverse=True)
        picks = [label for score, label in scored if score >= STANDS_OUT and label not in out]
        if picks:
            out.append(picks[0])
            continue
        base = "Casual browsers" if "sessions_last_30d" in names and z[c, names.index("sessions_last_30d")] < 0 else "Regular readers"
        label, n = base, 2
        while label in out:
            label, n = f"{base} {n}", n + 1
        out.append(label)
    return out
