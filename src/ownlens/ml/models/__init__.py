"""Every model OwnLens trains, by name: one declarative spec each (see ``spec.ModelSpec``)."""

from ownlens.ml.errors import NotFound
from ownlens.ml.models.content.click import CLICK
from ownlens.ml.models.customer.churn import CHURN
from ownlens.ml.models.customer.conversion import CONVERSION
from ownlens.ml.models.customer.engagement import ENGAGEMENT

MODELS = {spec.name: spec for spec in (CHURN, CONVERSION, ENGAGEMENT, CLICK)}


def get_spec(name: str):
    try:
        return MODELS[name]
    except KeyError:
        raise NotFound(f"unknown model {name!r}: choose one of {', '.join(MODELS)}") from None
