"""The seed API's named classes (seed 000/001), as thin wrappers over the generic spec-driven functions.

A model module declares its spec and subclasses these with one line each::

    class ChurnModel(BaseMLModel): spec = CHURN
    class ChurnTrainingPipeline(BaseTrainer): spec = CHURN
    class ChurnPredictor(BasePredictor): spec = CHURN
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput
from ownlens.ml.models.model import TrainedModel
from ownlens.ml.models.spec import ModelSpec


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from ownlens.ml.warehouse import connect

    return connect()


class BaseMLModel:
    """A trained model of one spec: load it from an artifact or the registry, predict on frames."""

    spec: ModelSpec

    def __init__(self, trained: TrainedModel | None = None):
        self.trained = trained

    def load(self, path: str, expected_sha256: str | None = None) -> "BaseMLModel":
        """Load an artifact file (checksum verified when ``expected_sha256`` is given)."""
        trained = TrainedModel.load(str(path), expected_sha256)
        if trained.spec_name != self.spec.name:
            raise InvalidInput(f"{path} holds a {trained.spec_name} model, not {self.spec.name}")
        self.trained = trained
        return self

    @classmethod
    def from_registry(cls, version: str = "production", client: Client | None = None) -> "BaseMLModel":
        from ownlens.ml.registry import store

        return cls(store.load(_client(client), cls.spec.name, version))

    def save(self, path: str) -> str:
        return self._require().save(str(path))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities (classifiers) or values (regressors) for the rows of a feature frame."""
        return self._require().predict_values(frame)

    @property
    def version(self) -> str | None:
        return self._require().version

    @property
    def features(self) -> list[str]:
        return self._require().features

    def _require(self) -> TrainedModel:
        if self.trained is None:
            raise InvalidInput(f"the {self.spec.name} model is not trained or loaded yet: call load(path) or train it")
        return self.trained


class BaseTrainer:
    """``run(...)`` trains from the warehouse and returns the held-out metrics (oracle included)."""

    spec: ModelSpec
    model_class: type[BaseMLModel] = BaseMLModel

    def __init__(self, client: Client | None = None, register: bool = True):
        self.client = _client(client)
        self.register = register
        self.result = None
        self.model: BaseMLModel | None = None

    def run(self, feature_date: date | str | None = None, brand_id: str | None = None, limit: int | None = None,
            test_size: float = 0.25, **options) -> dict:
        from ownlens.ml.models.training import train

        self.result = train(self.spec, self.client, feature_date=feature_date, brand_id=brand_id, limit=limit,
                            test_size=test_size, register=self.register, **options)
        self.model = self.model_class(self.result.model)
        return {**self.result.metrics, "oracle": self.result.oracle_metrics, "model_version": self.result.model.version,
                "split": self.result.split}


class BasePredictor:
    """Predictions for users, features read from the warehouse (default model: the production version)."""

    spec: ModelSpec

    def __init__(self, model: BaseMLModel | TrainedModel | None = None, client: Client | None = None):
        from ownlens.ml.models.prediction import Scorer
        from ownlens.ml.registry import store

        self.client = _client(client)
        if model is None:
            trained = store.load(self.client, self.spec.name, "production")
        else:
            trained = model._require() if isinstance(model, BaseMLModel) else model
        self.model = trained
        self._scorer = Scorer(self.spec, self.client, trained)

    def predict(self, user_id: str | list[str], return_proba: bool = True, feature_date=None,
                article_id: str | list[str] | None = None) -> pd.DataFrame:
        """Predictions for one or more users (pair models such as click also take ``article_id``)."""
        ids = [user_id] if isinstance(user_id, str) else list(user_id)
        if self.spec.source is not None:
            if article_id is None:
                raise InvalidInput(f"{self.spec.name} scores user x article pairs: pass article_id (one id or a list)")
            articles = [article_id] if isinstance(article_id, str) else list(article_id)
            return self._scorer.score([(u, a) for u in ids for a in articles], feature_date, return_proba)
        return self._scorer.score(ids, feature_date, return_proba)

    def predict_batch(self, feature_date=None, brand_id: str | None = None) -> dict:
        from ownlens.ml.models.prediction import predict_batch

        d = self._scorer.feature_date(feature_date)
        return predict_batch(self.spec, self.client, self.model, d, brand_id)


class BaseEvaluator:
    """Writes the evaluation report of a training result (or of a registered version on new labels)."""

    spec: ModelSpec

    def __init__(self, client: Client | None = None):
        self.client = _client(client)

    def evaluate(self, version: str = "production", test_date=None, output_dir=None) -> dict:
        from ownlens.ml.models.evaluation import evaluate_registered

        return evaluate_registered(self.spec, self.client, version, test_date, output_dir)


class BaseFeatureEngineer:
    """The spec's model inputs for a date, as a frame (what training and prediction read)."""

    spec: ModelSpec

    def __init__(self, client: Client | None = None):
        self.client = _client(client)

    def transform(self, feature_date, brand_id: str | None = None) -> pd.DataFrame:
        from ownlens.ml.data.loaders import as_date as _date
        from ownlens.ml.models.data import scoring_batches

        return pd.concat(list(scoring_batches(self.client, self.spec, _date(feature_date), brand_id)), ignore_index=True)


class BaseTaskTrainer(BaseTrainer):
    """``run(...)`` trains a task model (segmentation, recommendation, ad placement) and returns its metrics."""

    task = None  # a TaskModel

    def run(self, feature_date=None, test_date=None, brand_id: str | None = None, limit: int | None = None, **options) -> dict:
        if limit is not None:
            options["limit"] = limit
        self.result = self.task.train(self.client, feature_date=feature_date, test_date=test_date, brand_id=brand_id,
                                      register=self.register, **options)
        self.model = self.model_class(self.result.model)
        return {**self.result.metrics, "oracle": self.result.oracle_metrics, "model_version": self.result.model.version,
                "split": self.result.split}


class BaseTaskPredictor:
    """A task model's answers for given users (``predict``) or every user of a date, stored (``predict_batch``)."""

    task = None  # a TaskModel

    def __init__(self, model: BaseMLModel | TrainedModel | None = None, client: Client | None = None):
        from ownlens.ml.registry import store

        self.client = _client(client)
        if model is None:
            model = store.load(self.client, self.task.name, "production")
        self.model = model._require() if isinstance(model, BaseMLModel) else model

    def _lookup(self, user_ids: list[str], d, **options) -> pd.DataFrame:
        raise NotImplementedError

    def predict(self, user_id: str | list[str], feature_date=None, **options) -> pd.DataFrame:
        """Answers for one or more users on ``feature_date`` (default: the latest built)."""
        from ownlens.ml.data.loaders import as_date, latest_feature_date

        d = as_date(feature_date, "feature_date") if feature_date else latest_feature_date(self.client)
        return self._lookup([user_id] if isinstance(user_id, str) else list(user_id), d, **options)

    def predict_batch(self, feature_date=None, brand_id: str | None = None) -> dict:
        return self.task.predict_batch(self.client, self.model, feature_date, brand_id)
