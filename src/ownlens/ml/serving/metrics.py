"""What the server reports about itself: Prometheus metrics and one structured log line per request."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("ownlens.api")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps in one process do not clash)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.latency = Histogram("ownlens_request_seconds", "Request latency", ["route", "method", "status"],
                                 buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=self.registry)
        self.predictions = Counter("ownlens_predictions_total", "Predictions served", ["model", "version"], registry=self.registry)
        self.model_version = Gauge("ownlens_model_version_info", "Model versions loaded for serving", ["model", "version"],
                                   registry=self.registry)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class RequestLog:
    """ASGI middleware: one structured log line and one latency observation per request.

    Plain ASGI rather than ``@app.middleware("http")``, which costs a task and a stream per request."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_with_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            # bounded labels: a route's template, else one label for every unrouted request (refused by the guard
            # before routing, or matching no route), and the standard methods
            route = getattr(scope.get("route"), "path", None) or ("(unmatched)" if status in (404, 405) else "(refused)")
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            self.metrics.latency.labels(route, method, str(status)).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={"fields": {"method": scope["method"], "path": scope["path"][:200],
                                                      "status": status, "ms": round(elapsed * 1000, 2)}})
