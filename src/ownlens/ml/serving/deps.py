"""The API's dependencies: the warehouse client, the served models and the settings (the API key is checked by
:mod:`ownlens.ml.serving.guard`, before a request's body is read).

Routes take them with ``Depends(...)``; tests can replace any of them through ``app.dependency_overrides``. The
hot prediction route resolves them with :func:`resolved` instead, which honours the same overrides without
FastAPI's per-request parameter solving.
"""

from __future__ import annotations

from fastapi import Request


def settings(request: Request):
    return request.app.state.settings


def warehouse(request: Request):
    return request.app.state.client


def served(request: Request):
    return request.app.state.models


def metrics(request: Request):
    return request.app.state.metrics


def resolved(request: Request, dependency):
    """``dependency(request)``, or its override in the app."""
    return request.app.dependency_overrides.get(dependency, dependency)(request)
