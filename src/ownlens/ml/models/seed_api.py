"""The seed API's named classes (seeds 000/001), generic over the model protocol.

A model module gets its names in one line::

    ChurnModel, ChurnTrainingPipeline, ChurnPredictor, ChurnEvaluator = seed_classes(CHURN)

and every class works the same for every model: ``TrainingPipeline().run(...)`` trains and registers,
``Predictor(model).predict(key, ...)`` answers for given ids (as the API does), ``Model().load(path)`` reads an
artifact, ``Evaluator().evaluate(...)`` scores a registered version on labelled rows and writes its report.
"""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput
from ownlens.ml.models.trained import TrainedModel


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from ownlens.ml.warehouse import connect

    return connect()


class SavedModel:
    """A trained version of one model: load it from an artifact or the registry, predict on frames."""

    definition = None  # the model (protocol object)

    def __init__(self, trained: TrainedModel | None = None):
        self.trained = trained

    def load(self, path: str, expected_sha256: str | None = None) -> "SavedModel":
        """Load an artifact file (checksum verified when ``expected_sha256`` is given; pickles are never loaded)."""
        trained = TrainedModel.load(str(path), expected_sha256)
        if trained.spec_name != self.definition.name:
            raise InvalidInput(f"{path} holds a {trained.spec_name} model, not {self.definition.name}")
        self.trained = trained
        return self

    @classmethod
    def from_registry(cls, version: str = "production", client: Client | None = None) -> "SavedModel":
        from ownlens.ml.models.trained import load

        return cls(load(_client(client), cls.definition.name, version))

    def save(self, path: str) -> str:
        return self._require().save(str(path))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's output for each row of a frame of its inputs (probabilities, values, segments, scores)."""
        return self._require().predict_values(frame)

    @property
    def version(self) -> str | None:
        return self._require().version

    @property
    def features(self) -> list[str]:
        return self._require().features

    def _require(self) -> TrainedModel:
        if self.trained is None:
            raise InvalidInput(f"the {self.definition.name} model is not trained or loaded yet: call load(path) or train it")
        return self.trained


class TrainingPipeline:
    """``run(...)`` trains from the warehouse, registers a candidate version and returns the held-out metrics (the
    oracle's included). ``feature_date``: the date to train as of (see ``models.training.split`` for supervised
    models); other options are the model's own (``--help`` of ``ownlens-ml train`` lists them)."""

    definition = None
    model_class = SavedModel

    def __init__(self, client: Client | None = None, register: bool = True):
        self.client = _client(client)
        self.register = register
        self.result = None
        self.model: SavedModel | None = None

    def run(self, feature_date: date | str | None = None, brand_id: str | None = None, limit: int | None = None,
            test_size: float | None = None, **options) -> dict:
        from ownlens.ml.models.runs import train

        self.result = train(self.definition, self.client, register=self.register, feature_date=feature_date,
                            brand_id=brand_id, limit=limit, test_size=test_size, **options)
        self.model = self.model_class(self.result.model)
        return {**self.result.metrics, "oracle": self.result.oracle_metrics, "model_version": self.result.model.version,
                "split": self.result.split}


class Predictor:
    """Answers for given ids with a trained version (default: the production one), read from the warehouse:
    the same answers as ``GET /predict/{model}/{id}`` and ``ownlens-ml predict MODEL --user ID``."""

    definition = None

    def __init__(self, model: SavedModel | TrainedModel | None = None, client: Client | None = None):
        from ownlens.ml.models.trained import load

        self.client = _client(client)
        self.model = load(self.client, self.definition.name, "production") if model is None else (
            model._require() if isinstance(model, SavedModel) else model)
        self.server = self.definition.server(self.client, self.model)

    def predict(self, key: str | list[str], return_proba: bool = True, feature_date=None, **options) -> pd.DataFrame:
        """One row (or more) per known id; ``frame.attrs["message"]`` names unknown ones. A model whose predictions
        are about more than a user takes the other ids too (click: ``article_id=``, one id or a list)."""
        entity = self.definition.entity
        first = [key] if isinstance(key, str) else list(key)
        others = []
        for name in entity[1:]:
            if options.get(name) is None:
                what = " x ".join(e.removesuffix("_id") for e in entity)
                raise InvalidInput(f"{self.definition.name} scores {what} pairs: pass {name} (one id or a list)")
            value = options.pop(name)
            others.append([value] if isinstance(value, str) else list(value))
        keys = first if not others else [tuple(k) for k in itertools.product(first, *others)]
        return self.server.frame(keys, feature_date, return_proba=return_proba, **options)

    def predict_batch(self, feature_date=None, brand_id: str | None = None) -> dict:
        """Every entity of a date scored and stored (see ``ownlens-ml predict``)."""
        from ownlens.ml.data.loaders import as_date, latest_feature_date

        d = as_date(feature_date, "feature_date") if feature_date else latest_feature_date(self.client)
        return self.definition.predict_batch(self.client, self.model, d, brand_id=brand_id)


class Evaluator:
    """``evaluate(version, test_date)``: a registered version on labelled rows, next to the oracle, with a report."""

    definition = None

    def __init__(self, client: Client | None = None):
        self.client = _client(client)

    def evaluate(self, version: str = "production", test_date=None, output_dir=None, brand_id=None) -> dict:
        from ownlens.ml.models.evaluation import evaluate_registered

        return evaluate_registered(self.definition, self.client, version, test_date, output_dir, brand_id)


class FeatureEngineer:
    """``transform(feature_date)``: a supervised model's inputs for a date, as a frame (what scoring reads)."""

    definition = None

    def __init__(self, client: Client | None = None):
        self.client = _client(client)

    def transform(self, feature_date, brand_id: str | None = None) -> pd.DataFrame:
        from ownlens.ml.data.loaders import as_date
        from ownlens.ml.models.rows import scoring_batches

        return pd.concat(list(scoring_batches(self.client, self.definition, as_date(feature_date), brand_id)), ignore_index=True)


def seed_classes(model) -> tuple[type, type, type, type]:
    """``{Name}Model``, ``{Name}TrainingPipeline``, ``{Name}Predictor`` and ``{Name}Evaluator`` of ``model``."""
    title = "".join(part.title() for part in model.name.split("_"))
    saved = _named(f"{title}Model", SavedModel, model)
    pipeline = _named(f"{title}TrainingPipeline", TrainingPipeline, model, model_class=saved)
    return saved, pipeline, _named(f"{title}Predictor", Predictor, model), _named(f"{title}Evaluator", Evaluator, model)


def feature_engineer(spec) -> type:
    """``{Name}FeatureEngineer`` of a supervised model."""
    return _named("".join(p.title() for p in spec.name.split("_")) + "FeatureEngineer", FeatureEngineer, spec)


def _named(name: str, base: type, model, **attributes) -> type:
    import sys

    module = sys._getframe(2).f_globals.get("__name__", __name__)  # the declaring module, for repr and pickling
    return type(name, (base,), {"definition": model, "__module__": module, "__doc__": base.__doc__, **attributes})
