"""The model protocol: what every OwnLens model provides, whatever it predicts.

The CLI, the API, the pipelines and the common tests use models only through this protocol, so a new model is
one module that declares an object of this shape (and one line in ``ownlens.ml.models.MODELS``). Supervised
models declare a :class:`~ownlens.ml.models.supervised.ModelSpec` (a label per row; generic code does the rest);
models that are not per-row classifiers or regressors declare a :class:`~ownlens.ml.models.spec.TaskModel`
with their own functions. Both have these members:

identity
    ``name``, ``task`` (binary, regression, clustering, ranking, bandit), ``description``, ``algorithm``,
    ``primary_metric`` (with :func:`~ownlens.ml.models.metrics.higher_is_better`) and ``targets`` (the seeds'
    targets, metric -> minimum).
what a prediction is about
    ``entity``: the ids that name one prediction, e.g. ``("user_id",)`` or ``("user_id", "article_id")``;
    ``entity_type`` as stored in ml_model_predictions; ``record``: one prediction as the API returns it (a
    pydantic model, documented in OpenAPI); ``lookup_options``: the options a single lookup takes (a pydantic
    model, or None); ``prediction_fields``: (value, label) fields of a record, for real-time scoring, or None.
learning
    ``prototype()``: an unfitted scikit-learn estimator; ``options``: training options beyond the common
    ones (name -> help); ``label_days``: days after a date before its outcome is known; ``input_names``: the
    inputs a fitted model may use (an artifact naming others is refused); ``inputs``: the feature set whose
    drift monitoring measures, or None.
``train(client, *, feature_date, train_dates, test_date, brand_id, limit, test_size, seed, **options)``
    fits on data before a held-out test set and evaluates there; returns a :class:`TrainingResult`. Writes
    nothing: recording the run and registering the version is ``models.runs.train``.
``test_set(client, *, test_date, brand_id, limit, seed)`` and ``evaluate(client, model, test)``
    the labelled rows of a date (in the model's own form) and the metrics of any fitted version on them, next to
    the oracle's: how a version is evaluated, and how two versions are compared on the same rows.
``predict_batch(client, model, d, *, brand_id, progress, ab_test)``
    scores every entity of a date and replaces that date's rows in ``output_table`` (and ml_model_predictions);
    returns a summary. With a running A/B test each user gets their arm's version.
``server(client, model, cache_ttl_s)``
    a :class:`Server` that answers single lookups (the API, the CLI's ``predict --user``, the Python predictors).
optional hooks (None when a model has none)
    ``plots(result, plt)``: report sections; ``realised(client, d)``: realised performance of the outputs
    stored for ``d`` once it is known; ``stored_dates(client)``: dates with stored outputs;
    ``ab_outcomes(client, test, dates)``: per-arm outcomes of an A/B test; ``example_keys(client, d)``: ids that
    have a prediction on ``d`` (for models whose entities are not simply the users with features).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only
    import pandas as pd

    from ownlens.ml.models.trained import TrainedModel


@dataclass
class TrainingResult:
    """A fitted (not yet registered) model with its held-out metrics, the oracle's on the same rows, and those rows.

    ``test`` is the held-out set in the model's own form, scored; ``evaluate`` takes it again to score another
    version on exactly these rows. ``window`` is the span of the training data, for the registry.
    """

    model: "TrainedModel"
    metrics: dict
    oracle_metrics: dict | None
    split: dict
    test: Any = field(repr=False)
    window: tuple[date, date] | None = None
    extra: dict = field(default_factory=dict)
    run_id: str = ""

    def summary(self) -> dict:
        return {"model": self.model.spec_name, "version": self.model.version, "algorithm": self.model.info.get("algorithm"),
                "split": self.split, "metrics": self.metrics, "oracle": self.oracle_metrics, **self.extra}


@dataclass
class Evaluation:
    """A version's metrics on a test set, the oracle's on the same rows (None without simulator truth), and the
    test set with that version's outputs (for plots)."""

    metrics: dict
    oracle_metrics: dict | None
    scored: Any = field(repr=False)


@runtime_checkable
class Server(Protocol):
    """Answers single lookups with one fitted version: the API, the CLI's ``predict --user`` and the Python
    predictors all go through one of these, so they give the same answers."""

    model: "TrainedModel"

    def records(self, keys: list, feature_date=None, **options) -> tuple[list[dict], list]:
        """JSON-ready records (the model's ``record``) for the known keys, and the unknown keys."""

    def frame(self, keys: list, feature_date=None, **options) -> "pd.DataFrame":
        """The same as a DataFrame (``attrs["unknown"]`` and ``attrs["message"]`` name unknown keys)."""

    def cached_record(self, key, **options) -> dict | None:
        """One key's record from memory alone, without touching the warehouse; None when that is not possible."""


@runtime_checkable
class Model(Protocol):
    name: str
    task: str
    description: str
    algorithm: str
    primary_metric: str
    entity: tuple[str, ...]
    entity_type: str
    output_table: str
    label_days: int

    def prototype(self): ...

    def train(self, client, **options) -> TrainingResult: ...

    def test_set(self, client, **options): ...

    def evaluate(self, client, model, test) -> Evaluation: ...

    def predict_batch(self, client, model, d, **options) -> dict: ...

    def server(self, client, model, cache_ttl_s: float = 0.0) -> Server: ...
