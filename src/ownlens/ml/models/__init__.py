"""Every model OwnLens trains, by name: one declaration each, imported when first asked for.

A model is one module declaring an object of the model protocol (``models/protocol.py``) and one line below;
the CLI, the API, the pipelines and the common tests find it here, so nothing else changes when one is added.
Importing one model does not import the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ownlens.ml.errors import NotFound

if TYPE_CHECKING:  # annotations only
    from ownlens.ml.models.protocol import Model

MODELS = {
    "churn": "ownlens.ml.models.customer.churn:CHURN",
    "conversion": "ownlens.ml.models.customer.conversion:CONVERSION",
    "engagement": "ownlens.ml.models.customer.engagement:ENGAGEMENT",
    "click": "ownlens.ml.models.content.click:CLICK",
    "segmentation": "ownlens.ml.models.customer.segmentation:SEGMENTATION",
    "recommendation": "ownlens.ml.models.content.recommendation:RECOMMENDATION",
    "ad_placement": "ownlens.ml.models.advertising.placement:AD_PLACEMENT",
    "article_performance": "ownlens.ml.models.editorial.article_performance:ARTICLE_PERFORMANCE",
    "trending": "ownlens.ml.models.editorial.trending:TRENDING",
    "clv": "ownlens.ml.models.customer.lifetime_value:CLV",
    "health": "ownlens.ml.models.customer.health:HEALTH",
    "expansion": "ownlens.ml.models.customer.expansion:EXPANSION",
    "lead": "ownlens.ml.models.customer.lead:LEAD",
    "attribution": "ownlens.ml.models.marketing.channel_attribution:ATTRIBUTION",
}


def names() -> list[str]:
    """Every model's name, in the order the master run trains them."""
    return list(MODELS)


_loaded: dict[str, "Model"] = {}


def get(name: str) -> "Model":
    """The model called ``name``; :class:`NotFound` naming the known ones otherwise."""
    found = _loaded.get(name)
    if found is None:
        try:
            module, attribute = MODELS[name].split(":")
        except (KeyError, AttributeError, TypeError):
            raise NotFound(f"unknown model {name!r}: choose one of {', '.join(MODELS)}") from None
        found = _loaded[name] = getattr(import_module(module), attribute)
    return found


def every() -> list["Model"]:
    """Every model (imports them all)."""
    return [get(name) for name in MODELS]
