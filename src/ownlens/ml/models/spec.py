"""What model declarations share, and :class:`TaskModel`, the declaration of a model with its own functions.

A model of the protocol (``models/protocol.py``) is declared either as a ``supervised.ModelSpec`` (a label per
row, declared as data; generic code trains, evaluates, scores and serves it) or as a :class:`TaskModel` (segments,
rankings, a bandit: not a per-row classifier or regressor), declared with its own functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from ownlens.ml.errors import InvalidInput
from ownlens.ml.features.sets import FeatureSet


@dataclass(frozen=True)
class Thresholds:
    """When a shift warns or alerts, judged by its size in statistics that neither grow nor shrink with the number
    of rows: numeric columns by the Wasserstein distance in standard deviations of the reference (Evidently's
    default above 1,000 rows; it calls 0.1 drift), categorical ones by PSI. No p-values: with enough rows every
    shift is significant, so the same shift would get another decision at another sample size."""

    wasserstein_warn: float = 0.1
    wasserstein_alert: float = 0.2
    psi_warn: float = 0.1
    psi_alert: float = 0.25


@dataclass(frozen=True)
class CategoryEncoder:
    """Maps each categorical column's values to integer codes learned at training (unknown -> NaN)."""

    vocabularies: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns, max_categories: int = 50) -> "CategoryEncoder":
        vocab = {}
        for c in columns:
            counts = frame[c].astype("string").value_counts()
            vocab[c] = sorted(counts.index[:max_categories].tolist())
        return cls(vocab)

    @cached_property
    def index(self) -> dict[str, dict[str, int]]:
        """value -> code per column, for coding single rows without pandas."""
        return {c: {v: i for i, v in enumerate(values)} for c, values in self.vocabularies.items()}

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for c, values in self.vocabularies.items():
            codes = pd.Categorical(frame[c].astype("string"), categories=values).codes.astype(float)
            codes[codes < 0] = np.nan
            out[c] = codes
        return out


def matrix(frame: pd.DataFrame, features: list[str], encoder: CategoryEncoder) -> np.ndarray:
    """The model's input matrix from a frame, checking every feature column is there and numeric."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise InvalidInput(f"input is missing feature column(s) {missing[:5]}: pass every column in the model's feature list")
    encoded = encoder.transform(frame[features])
    bad = [c for c in features if c not in encoder.vocabularies and not pd.api.types.is_numeric_dtype(encoded[c])]
    if bad:
        raise InvalidInput(f"feature column(s) {bad[:5]} are not numeric: convert them to numbers before predicting")
    X = encoded.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(X).any():
        cols = [features[i] for i in np.where(np.isinf(X).any(axis=0))[0]]
        raise InvalidInput(f"feature column(s) {cols[:5]} contain infinite values: replace them with finite numbers or NaN")
    return X


@dataclass(frozen=True)
class RowSource:
    """The SQL of a supervised model's rows. Every query returns the ``entity`` ids (as text), ``feature_date``,
    ``brand_id`` and the feature columns, and binds only parameters:

    ``training``: ``{dates:Array(Date)}``, ``{brand:Nullable(UUID)}`` (NULL: every brand); adds ``label``.
    ``scoring``: ``{d:Date}``, ``{dates:Array(Date)}`` (= ``[d]``), ``{brand:Nullable(UUID)}``.
    ``lookup``: ``{d:Date}``, ``{dates:Array(Date)}`` (= ``[d]``), ``{keys:Array(...)}`` (UUIDs, or tuples of them).
    ``oracle``: ``{dates:Array(Date)}``; the entity ids, ``feature_date`` and ``oracle``, from the simulator's truth
    (read only when a model is evaluated, see ``models/oracle.py``), or None.
    """

    training: str
    scoring: str
    lookup: str
    entity: tuple[str, ...]
    entity_type: str
    oracle: str | None = None


BRAND_FILTER = "({brand:Nullable(UUID)} IS NULL OR uf.brand_id = {brand:Nullable(UUID)})"


def user_rows(features: FeatureSet, label: str, population: str = "1", label_table: str = "customer_user_labels",
              oracle: str | None = None) -> RowSource:
    """One row per user of ``features.table`` (alias ``uf``) on each date; ``label`` is SQL over ``label_table``
    (alias ``l``, complete label windows only), ``oracle`` SQL over sim_user_truth (alias ``t``)."""
    select = features.select_sql("uf")
    return RowSource(
        training=f"""
SELECT {select}, {label} AS label
FROM {features.table} AS uf
INNER JOIN {label_table} AS l ON l.user_id = uf.user_id AND l.feature_date = uf.feature_date
WHERE uf.feature_date IN {{dates:Array(Date)}} AND l.label_window_complete = 1 AND ({population}) AND {BRAND_FILTER}
""",
        scoring=f"""
SELECT {select}
FROM {features.table} AS uf
WHERE uf.feature_date = {{d:Date}} AND ({population}) AND {BRAND_FILTER}
""",
        lookup=f"""
SELECT {select}
FROM {features.table} AS uf
WHERE uf.feature_date = {{d:Date}} AND ({population}) AND uf.user_id IN {{keys:Array(UUID)}}
""",
        entity=("user_id",),
        entity_type="user",
        oracle=None if oracle is None else f"""
SELECT toString(t.user_id) AS user_id, t.feature_date AS feature_date, {oracle} AS oracle
FROM sim_user_truth AS t
WHERE t.feature_date IN {{dates:Array(Date)}}
""",
    )


@dataclass(frozen=True)
class Bands:
    """Named bands of a prediction: ``Bands((0.3, 0.6), ("low", "medium", "high"))`` gives "medium" for 0.3 <= p < 0.6."""

    edges: tuple[float, ...]
    names: tuple[str, ...]

    def __post_init__(self):
        if len(self.names) != len(self.edges) + 1 or list(self.edges) != sorted(self.edges):
            raise ValueError("Bands needs ascending edges and one more name than edges")

    def codes(self, values: np.ndarray) -> np.ndarray:
        """The band of each value as its index in ``names``."""
        return np.searchsorted(self.edges, values, side="right").astype(np.uint8)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(self.names, dtype=object).take(self.codes(values))


@dataclass(frozen=True)
class TaskModel:
    """A model with its own functions of the protocol (see ``models/protocol.py`` for what each does)."""

    name: str
    task: str  # "clustering", "ranking" or "bandit"
    description: str
    algorithm: str
    primary_metric: str
    output_table: str
    record: type  # one prediction, a pydantic model
    prototype: Callable[[], object]
    input_names: tuple[str, ...]
    train: Callable[..., object]
    test_set: Callable[..., object]
    evaluate: Callable[..., object]
    predict_batch: Callable[..., dict]
    server: Callable[..., object]
    entity: tuple[str, ...] = ("user_id",)
    entity_type: str = "user"
    targets: Mapping[str, float] = field(default_factory=dict)
    label_days: int = 0  # a version is optimistic on test dates before the end of its training data + label_days
    options: Mapping[str, str] = field(default_factory=dict)
    lookup_options: type | None = None
    prediction_fields: tuple[str, str] | None = None
    prediction_drift: str | None = None  # "categorical": monitoring compares the stored labels' shares
    inputs: FeatureSet | None = None
    input_thresholds: Thresholds | None = None
    prediction_thresholds: Thresholds | None = None
    plots: Callable[..., list] | None = None
    realised: Callable[..., dict | None] | None = None
    stored_dates: Callable[..., list] | None = None
    ab_outcomes: Callable[..., dict] | None = None
    example_keys: Callable[..., list] | None = None  # (client, d) -> ids that have a prediction on d
