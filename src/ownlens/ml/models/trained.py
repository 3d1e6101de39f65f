"""A trained model: the model's name, its input encoding and the fitted estimator, saved as one safe artifact.

``register`` adds a fitted model to the warehouse registry; ``load`` reads a registered version back (checksum
verified, never unpickled). An artifact names its model; the estimator class comes from that model's
declaration, and inputs the model does not have are refused, so a crafted file cannot smuggle names into SQL.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import CorruptArtifact, InvalidInput
from ownlens.ml.models.spec import CategoryEncoder, matrix
from ownlens.ml.registry import store
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

    @property
    def threshold(self) -> float:
        """A classifier's yes/no threshold, chosen on validation rows at training (0.5 in versions made before)."""
        return float(self.info.get("threshold", 0.5))

    def learned_until(self, horizon_days: int) -> date | None:
        """The last day whose outcomes this version learnt from: its last training date plus the label horizon,
        less a day (None when the version does not record its training dates). Later dates are unseen by it."""
        dates = training_dates_of(self.info)
        return dates[-1] + timedelta(days=horizon_days - 1) if dates else None

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

    def drivers(self, X: np.ndarray, k: int) -> np.ndarray:
        """Per row, the positions in ``features`` of the ``k`` inputs that raise its prediction most above the
        average row's (the estimator's own contributions), best first; -1 where fewer than ``k`` raise it, and
        everywhere when the estimator cannot attribute a prediction (random forest, MLP)."""
        out = np.full((len(X), k), -1, dtype=np.int64)
        parts = self.estimator.contributions(X) if len(X) else None
        if parts is None:
            return out
        top = np.argsort(-parts, axis=1, kind="stable")[:, :k]
        raises = np.take_along_axis(parts, top, axis=1) > 0
        return np.where(raises, top, -1)

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
    def from_files(cls, files: dict[str, bytes], where: str = "the artifact") -> "TrainedModel":
        from ownlens.ml.models import MODELS, get

        files = dict(files)
        try:
            meta = json.loads(files.pop("model.json"))
            kind = json.loads(files["estimator.json"]).get("class")
        except (KeyError, ValueError, AttributeError):
            raise CorruptArtifact(f"{where} is corrupt: its model.json or estimator.json is missing or not JSON") from None
        if meta.get("spec") not in MODELS:
            raise InvalidInput(f"{where} holds a model of unknown kind {meta.get('spec')!r}: it was not written by OwnLens")
        model = get(meta["spec"])
        unknown = [f for f in meta["features"] if f not in model.input_names]
        if unknown or set(meta["vocabularies"]) - set(meta["features"]):
            raise InvalidInput(f"{where} names inputs that {model.name} does not have ({(unknown or list(meta['vocabularies']))[:3]}): "
                               "it was not written by OwnLens")
        estimator_class = type(model.prototype())
        if kind != estimator_class.__name__:
            raise InvalidInput(f"{where} holds a {kind} estimator, not the {estimator_class.__name__} of {model.name}")
        try:
            estimator = estimator_class.from_files(files)
        except Exception as exc:  # parameters or state no OwnLens model has, a booster file its library refuses
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise CorruptArtifact(f"{where} is corrupt: its {model.name} estimator does not load ({first}): restore it, or retrain") from None
        return cls(meta["spec"], meta["task"], meta["features"], CategoryEncoder(meta["vocabularies"]), estimator,
                   meta.get("info", {}))

    @classmethod
    def load(cls, uri: str, expected_sha256: str | None = None) -> "TrainedModel":
        return cls.from_files(read_artifact(uri, expected_sha256), uri)


def training_dates_of(info: dict) -> list[date]:
    """The feature dates a version learnt from, as its ``info["split"]`` records them (a random split: its one date)."""
    split = info.get("split") or {}
    return sorted(date.fromisoformat(str(d)[:10]) for d in split.get("train_dates") or split.get("dates") or [])


def training_dates(client: Client, name: str, version: str = "production") -> list[date]:
    """:func:`training_dates_of` a registered version, read from its artifact's model.json (checksums verified)
    without loading the estimator."""
    row = store.get(client, name, version)
    try:
        meta = json.loads(store.read_files(row)["model.json"])
    except (KeyError, ValueError):
        raise CorruptArtifact(f"{row['artifact_uri']} is corrupt: its model.json is missing or not JSON") from None
    return training_dates_of(meta.get("info", {}))


def register(client: Client, model: TrainedModel, *, algorithm: str, metrics: dict, window: tuple, description: str,
             artifacts_uri: str | None = None) -> TrainedModel:
    """Save ``model``'s artifact and add it to the registry as a ``candidate``; fills ``model.info``."""
    version = store.next_version(client, model.spec_name, model.features)
    model.info.update({"model_id": str(uuid.uuid4()), "model_name": model.spec_name, "model_version": version,
                       "algorithm": algorithm})
    importances = model.importances()
    written = store.register(
        client, model_id=model.model_id, name=model.spec_name, version=version, task=model.task, algorithm=algorithm,
        features=model.features, input_schema={"numeric": [f for f in model.features if f not in model.encoder.vocabularies],
                                               "categorical": model.encoder.vocabularies},
        importances={k: float(v) for k, v in importances.items()}, files=model.to_files(), metrics=metrics, window=window,
        description=description, artifacts_uri=artifacts_uri)
    model.info.update(written)
    return model


def load(client: Client, name: str, version: str | None = "production") -> TrainedModel:
    """A registered version of ``name`` (a version, a stage, or None for the latest; ``production`` falls back to
    the latest version when none is in production), its checksum verified."""
    row = store.resolve(client, name, version)
    model = TrainedModel.from_files(store.read_files(row), row["artifact_uri"])
    model.info.update({"model_id": row["model_id"], "model_version": row["model_version"], "stage": row["stage"],
                       "algorithm": row["algorithm"]})
    return model
