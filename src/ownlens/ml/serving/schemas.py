"""The API's request and response models; each model's prediction record comes from the model itself
(``model.record``), so OpenAPI documents every model's typed response."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Annotated, Literal, Union

from pydantic import BaseModel, Field, create_model

from ownlens.ml import __version__

MAX_BATCH = 1000  # ids or pairs per prediction request


class Pair(BaseModel):
    user_id: str
    article_id: str


class PredictRequest(BaseModel):
    """The ids to predict for: ``user_ids`` for user models, ``pairs`` for models of user x article pairs (click);
    ``options`` are the model's lookup options (e.g. ``{"k": 20}`` for recommendation)."""

    user_ids: list[str] | None = Field(None, examples=[["3f2b8c1e-0000-4000-8000-000000000000"]])
    pairs: list[Pair] | None = None
    feature_date: date | None = Field(None, description="Features of this date; default: the latest built.")
    options: dict | None = Field(None, description="The model's lookup options, e.g. {\"k\": 20} for recommendation.")

    model_config = {"json_schema_extra": {"examples": [{"user_ids": ["3f2b8c1e-0000-4000-8000-000000000000"]}]}}


class Error(BaseModel):
    """Every error the API returns."""

    error: str = Field(description="The kind: NotFound, InvalidInput, Unauthorized, TooLarge, WarehouseUnavailable...")
    detail: str = Field(description="What is wrong and how to fix it.")


class ModelInfo(BaseModel):
    model: str
    version: str
    stage: str
    algorithm: str
    metrics: dict
    created_at: str


class Health(BaseModel):
    status: str
    version: str = __version__
    detail: dict = Field(default_factory=dict)


@lru_cache(maxsize=None)
def predictions_type(name: str):
    """The response of ``/predict/{name}``: the model's predictions (its own record type) with its version."""
    from ownlens.ml.models import get

    record = get(name).record
    title = "".join(part.title() for part in name.split("_"))
    return create_model(
        f"{title}Predictions",
        model=(Literal[name], ...),
        model_version=(str, Field(description="The production version; each prediction names the version that made it "
                                              "(they differ while an A/B test of the model runs).")),
        predictions=(list[record], ...),
        unknown=(list, Field(default_factory=list, description="Requested ids (or pairs) with no features on that date.")),
    )


def any_predictions(names: list[str]):
    """One response type for every model's predictions, told apart by ``model``."""
    return Annotated[Union[tuple(predictions_type(n) for n in names)], Field(discriminator="model")]
