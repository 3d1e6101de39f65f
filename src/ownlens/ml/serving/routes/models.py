"""The registry: every registered version, and one version of a model."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends

from ownlens.ml.models import get
from ownlens.ml.registry import store
from ownlens.ml.serving import deps
from ownlens.ml.serving.schemas import Error, ModelInfo

router = APIRouter(tags=["models"])


@router.get("/models", response_model=list[ModelInfo], responses={401: {"model": Error}, 413: {"model": Error}, 503: {"model": Error}})
def list_models(client=Depends(deps.warehouse)) -> list[ModelInfo]:
    """Every registered version, newest first."""
    rows = store.versions(client)
    return [ModelInfo(model=r.model_name, version=r.model_version, stage=r.stage, algorithm=r.algorithm,
                      metrics=json.loads(r.metrics or "{}"), created_at=str(r.created_at)) for r in rows.itertuples()]


@router.get("/models/{name}", response_model=ModelInfo, responses={401: {"model": Error}, 404: {"model": Error}, 413: {"model": Error}, 422: {"model": Error},
                                                                           503: {"model": Error}})
def describe_model(name: str, version: str = "production", client=Depends(deps.warehouse)) -> ModelInfo:
    """One version (default: production) of a model."""
    get(name)
    r = store.get(client, name, version)
    return ModelInfo(model=name, version=r["model_version"], stage=r["stage"], algorithm=r["algorithm"],
                     metrics=json.loads(r["metrics"] or "{}"), created_at=str(r["created_at"]))
