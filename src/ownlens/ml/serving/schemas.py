"""The API's request and response models; each model's prediction record comes from the model itself
(``model.record``), so OpenAPI documents every model's typed response."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from ownlens.ml import __version__

MAX_BATCH = 1000  # ids or pairs per prediction request


# ids are UUIDs and dates lie in the warehouse's Date range (1970-01-01 to 2149-06-06), as OpenAPI says
Id = Annotated[str, Field(json_schema_extra={"format": "uuid"}, examples=["3f2b8c1e-0000-4000-8000-000000000000"])]
CODE_PATTERN = "^[A-Za-z0-9_.-]{1,64}$"
Code = Annotated[str, Field(pattern=CODE_PATTERN, examples=["paid_search"])]
DATE_PATTERN = "^(19[7-9][0-9]|20[0-9]{2}|21[0-4][0-9])-"
DATE_SCHEMA = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
def _date_text(value):
    if value is not None and not isinstance(value, (str, date)):  # not a number of days: 0 is no date
        raise ValueError("must be a date as YYYY-MM-DD text")
    return value


FeatureDate = Annotated[date | None, BeforeValidator(_date_text),
                        Field(None, description="Features of this date; default: the latest built.",
                              json_schema_extra={"pattern": DATE_PATTERN})]


class Pair(BaseModel):
    user_id: Id
    article_id: Id


@lru_cache(maxsize=None)
def request_type(name: str):
    """The body of ``POST /predict/{name}``: the ids of the model's entity (``user_ids``; ``article_ids``, ``brand_ids``
    for the editorial models), ``pairs`` for models of user x article pairs, the feature date, and the model's lookup
    options (if it has any)."""
    from ownlens.ml.models import get

    model = get(name)
    title = "".join(part.title() for part in name.split("_"))
    limit = {"min_length": 1, "max_length": MAX_BATCH}
    key = model.entity[0]
    fields = ({"pairs": (list[Pair], Field(description=f"Up to {MAX_BATCH:,} (user, article) pairs.", **limit))}
              if len(model.entity) > 1 else
              {f"{key}s": (list[Id] if key.endswith("_id") else list[Code],
                           Field(description=f"Up to {MAX_BATCH:,} {key.replace('_', ' ')}s.", **limit))})
    fields["feature_date"] = (FeatureDate, None)
    if model.lookup_options is not None:  # strict in a JSON body (false is no seed, "yes" no boolean); lax in a query string
        strict = type(f"{title}Options", (model.lookup_options,), {"model_config": ConfigDict(strict=True, extra="forbid"),
                                                                  "__module__": __name__, "_integral": _integral})
        fields["options"] = (strict | None, Field(None, description="The model's lookup options."))
    return create_model(f"{title}Request", __config__={"extra": "forbid"}, **fields)


@model_validator(mode="before")
@classmethod
def _integral(cls, data):
    """JSON's 46.0 is the integer 46 (as JSON Schema says), also to a strict integer field."""
    if isinstance(data, dict):
        ints = {k for k, f in cls.model_fields.items() if int in (f.annotation, *getattr(f.annotation, "__args__", ()))}
        return {k: int(v) if k in ints and isinstance(v, float) and v.is_integer() else v for k, v in data.items()}
    return data


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
