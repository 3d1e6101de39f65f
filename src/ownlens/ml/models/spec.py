"""Declarative model specs: what a model reads, what it predicts, how it is scored and where it writes.

Adding a model means adding one small module that declares a :class:`ModelSpec`; the generic
training, prediction and evaluation code in this package does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
import pandas as pd

from ownlens.ml.errors import InvalidInput
from ownlens.ml.features.customer import LABEL_HORIZON_DAYS


@dataclass(frozen=True)
class FeatureSet:
    """Named model inputs read from one table: numeric columns, categorical columns, JSON keys."""

    name: str
    table: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    json_column: str | None = None
    json_keys: tuple[str, ...] = ()
    trending: tuple[str, ...] = ()  # inputs that grow with time by construction: drift monitoring reports, never alerts

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.json_keys, *self.categorical]

    @property
    def signature(self) -> str:
        """Names the column layout of the packed serving vectors (changes whenever the columns do)."""
        import hashlib

        return f"{self.name}-" + hashlib.sha256(",".join(self.columns).encode()).hexdigest()[:12]

    def json_sql(self, alias: str, key: str) -> str:
        """One JSON key as Float64 (0 when absent). The document is parsed once per row for all keys: the
        same JSONExtract expression repeated is computed once by ClickHouse (5 JSONExtractFloats cost ~2x)."""
        keys = ", ".join(f"{k} Float64" for k in self.json_keys)
        return f"tupleElement(JSONExtract({alias}.{self.json_column}, 'Tuple({keys})'), '{key}')"

    def vector_sql(self, alias: str) -> str:
        """The inputs packed as ``numeric`` (numeric then JSON keys) and ``categorical`` (as text, '' for NULL)."""
        numeric = [f"toFloat64({alias}.{c})" for c in self.numeric]
        numeric += [self.json_sql(alias, k) for k in self.json_keys]
        categorical = [f"ifNull(toString({alias}.{c}), '')" for c in self.categorical]
        return f"[{', '.join(numeric)}] AS numeric, [{', '.join(categorical)}] AS categorical"

    def select_sql(self, alias: str) -> str:
        """SELECT list: user_id, feature_date, brand_id (as text) and every input column (JSON keys as Float64)."""
        parts = [f"toString({alias}.user_id) AS user_id", f"{alias}.feature_date AS feature_date"]
        parts += [f"toString({alias}.brand_id) AS brand_id"] if "brand_id" not in self.categorical else []
        parts += [f"{alias}.{c} AS {c}" for c in self.numeric]
        parts += [f"{self.json_sql(alias, k)} AS {k}" for k in self.json_keys]
        parts += [f"toString({alias}.{c}) AS {c}" for c in self.categorical]
        return ",\n    ".join(parts)


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
    """SQL for models whose rows are not one user of customer_user_features (e.g. user x article pairs).

    ``training`` takes ``{dates:Array(Date)}`` and returns the feature columns plus ``label`` and
    ``oracle``; ``scoring`` takes ``{d:Date}`` and returns the feature columns; ``lookup`` takes
    ``{d:Date}`` and ``{pairs:Array(Tuple(UUID, UUID))}``. Each has a ``{where}`` slot for filters on
    the user features (alias ``uf``) and exposes ``user_id``, ``feature_date`` and the ``entity`` columns.
    """

    training: str
    scoring: str
    lookup: str
    entity: tuple[str, ...]
    entity_type: str


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
class ModelSpec:
    """Everything model-specific; see ``ownlens.ml.models.customer.churn`` for an example.

    ``label`` and ``oracle`` are SQL expressions over the labels (``l``) and simulator truth
    (``t``) joined to the feature rows; ``population`` filters the feature rows (``uf``).
    ``output`` names the prediction column of the domain table and the seed API's frame.
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
    decision_column: str | None = None  # e.g. is_churned: 0/1 from the 0.5 threshold
    targets: dict[str, float] = field(default_factory=dict)  # seed 003 targets, metric -> minimum
    primary_metric: str = "roc_auc"
    source: RowSource | None = None  # None: one row per user of ``features.table``, labels from ``label_table``
    # days after the feature date that the label looks at: a training date's label is known only this long
    # after it, so a time split trains on dates at least this many days before the test date
    label_days: int = LABEL_HORIZON_DAYS
    # drift thresholds of this model (monitoring.drift.Thresholds); None: the defaults in monitoring/drift.py
    input_thresholds: object | None = None
    prediction_thresholds: object | None = None


@dataclass(frozen=True)
class TaskModel:
    """A model with its own training and batch functions (segments, recommendations, ad placement): not a
    label to predict per row, but registered, versioned, stored and served like the supervised ones.

    ``train(client, *, feature_date=None, test_date=None, brand_id=None, limit=None, register=True, **options)``
    returns a ``TrainingResult``; ``predict_batch(client, model, d, brand_id=None, progress=None)`` writes
    ``output_table`` for date ``d`` (replacing it) and returns a summary dict.
    """

    name: str
    task: str  # "clustering", "ranking" or "bandit"
    description: str
    algorithm: str
    output_table: str
    train: Callable[..., object]
    predict_batch: Callable[..., dict]
    primary_metric: str
    targets: dict[str, float] = field(default_factory=dict)
    plots: Callable[..., list] | None = None  # (TrainingResult, pyplot) -> [(title, html)] for the evaluation report
    # realised performance of stored outputs: (client, date) -> {"model_version", metric: value...}, None until it is known
    realised: Callable[..., dict | None] | None = None
    stored_dates: Callable[..., list] | None = None  # (client) -> dates with stored outputs, for scheduled monitoring
