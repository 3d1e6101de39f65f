"""Every model OwnLens trains, by name: one declarative spec each.

``MODELS`` are the supervised ones (a :class:`~ownlens.ml.models.spec.ModelSpec`: a label per row, generic
training and scoring); ``TASK_MODELS`` bring their own training and batch functions
(:class:`~ownlens.ml.models.spec.TaskModel`: segments, recommendations, ad placement).
"""

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models.advertising.placement import AD_PLACEMENT
from ownlens.ml.models.content.click import CLICK
from ownlens.ml.models.content.recommendation import RECOMMENDATION
from ownlens.ml.models.customer.churn import CHURN
from ownlens.ml.models.customer.conversion import CONVERSION
from ownlens.ml.models.customer.engagement import ENGAGEMENT
from ownlens.ml.models.customer.segmentation import SEGMENTATION

MODELS = {spec.name: spec for spec in (CHURN, CONVERSION, ENGAGEMENT, CLICK)}
TASK_MODELS = {task.name: task for task in (SEGMENTATION, RECOMMENDATION, AD_PLACEMENT)}
ALL_MODELS = [*MODELS, *TASK_MODELS]


def get_spec(name: str):
    """The supervised spec of ``name``; a clear error for a task model or an unknown name."""
    try:
        return MODELS[name]
    except KeyError:
        if name in TASK_MODELS:
            raise InvalidInput(f"{name} is evaluated when trained (`ownlens-ml train {name}`); "
                               f"this works for the per-row models: {', '.join(MODELS)}") from None
        raise NotFound(f"unknown model {name!r}: choose one of {', '.join(ALL_MODELS)}") from None


def get_model(name: str):
    """The spec (supervised) or task model of ``name``."""
    if name in TASK_MODELS:
        return TASK_MODELS[name]
    return get_spec(name)
