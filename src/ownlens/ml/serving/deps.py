"""The API's dependencies: the warehouse client, the served models, the settings and the API key check.

Routes take them with ``Depends(...)``; tests can replace any of them through ``app.dependency_overrides``. The
hot prediction route resolves them with :func:`resolved` instead, which honours the same overrides without
FastAPI's per-request parameter solving.
"""

from __future__ import annotations

from fastapi import Request

from ownlens.ml.errors import OwnLensError


class Unauthorized(OwnLensError):
    http_status = 401


class TooLarge(OwnLensError):
    http_status = 413


def settings(request: Request):
    return request.app.state.settings


def warehouse(request: Request):
    return request.app.state.client


def served(request: Request):
    return request.app.state.models


def metrics(request: Request):
    return request.app.state.metrics


async def require_key(request: Request) -> None:
    """401 unless the request's X-API-Key is one of OWNLENS_API_KEYS (no keys configured: open)."""
    keys = resolved(request, settings).api_key_set
    if keys and request.headers.get("x-api-key") not in keys:
        raise Unauthorized("missing or unknown API key: send it in the X-API-Key header")


def resolved(request: Request, dependency):
    """``dependency(request)``, or its override in the app."""
    return request.app.dependency_overrides.get(dependency, dependency)(request)
