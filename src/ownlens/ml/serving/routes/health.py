"""Liveness, readiness and Prometheus metrics (open even when API keys are required)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ownlens.ml.serving import deps
from ownlens.ml.serving.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": Health}})
def ready(request: Request, client=Depends(deps.warehouse), served=Depends(deps.served)):
    """Readiness: the warehouse answers, its schema is current, and every registered model's served version loads
    (503 with ``not_loadable`` naming each artifact that fails its integrity check)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from ownlens.ml import schema

    try:
        version = schema.current_version(client)
    except ClickHouseError as exc:
        return JSONResponse(Health(status="unavailable", detail={"warehouse": str(exc)[:200]}).model_dump(), status_code=503)
    if version < schema.latest_version():
        return JSONResponse(Health(status="schema-outdated", detail={"schema": version}).model_dump(), status_code=503)
    if served.unloadable:  # a production artifact failed its integrity check: restore it or retrain
        return JSONResponse(Health(status="model-not-loadable", detail={"schema": version, "not_loadable": dict(served.unloadable),
                                                                        "models_loaded": served.loaded()}).model_dump(), status_code=503)
    return Health(status="ready", detail={"schema": version, "models_loaded": served.loaded()})


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(metrics=Depends(deps.metrics)) -> PlainTextResponse:
    """Prometheus metrics: request latency, predictions served, model versions loaded."""
    return PlainTextResponse(metrics.render().decode(), media_type="text/plain; version=0.0.4")
