"""A trained model: spec name, input encoding and fitted estimator, saved as one safe artifact."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ownlens.ml.models.estimators import estimator_from_files
from ownlens.ml.models.spec import CategoryEncoder, matrix
from ownlens.ml.registry.artifacts import read_artifact, write_artifact


@dataclass
class TrainedModel:
    """What training produces and prediction needs; ``info`` carries registry metadata once registered."""

    spec_name: str
    task: str
    features: list[str]
    encoder: CategoryEncoder
    estimator: object
    info: dict = field(default_factory=dict)

    @property
    def version(self) -> str | None:
        return self.info.get("model_version")

    @property
    def model_id(self) -> str | None:
        return self.info.get("model_id")

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return matrix(frame, self.features, self.encoder)

    def predict_values(self, frame: pd.DataFrame) -> np.ndarray:
        """Positive-class probability (classifiers) or the predicted value (regressors), one per row."""
        if frame.empty:
            return np.array([], dtype=float)
        return self.predict_matrix(self.matrix(frame))

    def predict_matrix(self, X: np.ndarray) -> np.ndarray:
        """As :meth:`predict_values`, for an already encoded matrix in ``features`` order."""
        if self.task == "binary":
            return self.estimator.predict_proba(X)[:, 1]
        return np.asarray(self.estimator.predict(X), dtype=float)

    def predict_few(self, X: np.ndarray) -> np.ndarray:
        """As :meth:`predict_matrix` for the few rows of a single request, without input validation."""
        if X.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} feature columns, got {X.shape[1]}")
        return self.estimator.predict_few(X)

    def importances(self) -> pd.Series:
        return pd.Series(self.estimator.feature_importances(), index=self.features).sort_values(ascending=False)

    def to_files(self) -> dict[str, bytes]:
        meta = {"spec": self.spec_name, "task": self.task, "features": self.features,
                "vocabularies": self.encoder.vocabularies, "info": self.info}
        return {**self.estimator.to_files(), "model.json": json.dumps(meta, default=str).encode()}

    def save(self, uri: str) -> str:
        """Write the artifact; returns its sha256."""
        return write_artifact(uri, self.to_files())

    @classmethod
    def load(cls, uri: str, expected_sha256: str | None = None) -> "TrainedModel":
        files = read_artifact(uri, expected_sha256)
        meta = json.loads(files.pop("model.json"))
        return cls(meta["spec"], meta["task"], meta["features"], CategoryEncoder(meta["vocabularies"]),
                   estimator_from_files(files), meta.get("info", {}))
