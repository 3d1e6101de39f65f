"""What the server reports about itself: Prometheus metrics and one structured log line per request."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("ownlens.api")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


WAREHOUSE_GAUGES_TTL_S = 15.0  # a scrape every few seconds costs the warehouse at most one read per this long

LATEST_MONITORING = """
SELECT m.model_name, if(m.monitor_type = 'prediction_drift', 'prediction', m.feature_name) AS column, m.metric_name,
       m.metric_value, m.status, m.monitor_type, toUnixTimestamp(toDateTime(l.latest))
FROM ml_model_monitoring AS m
INNER JOIN (SELECT model_name, max(monitoring_date) AS latest FROM ml_model_monitoring GROUP BY model_name) AS l
    ON l.model_name = m.model_name AND l.latest = m.monitoring_date
WHERE isFinite(m.metric_value)
"""
WORKER_LAG = "SELECT worker, model_name, toFloat64(now64(3) - watermark) FROM ml_inference_watermarks FINAL"


class WarehouseGauges:
    """Gauges read from the warehouse when Prometheus scrapes (cached ``WAREHOUSE_GAUGES_TTL_S``): each model's drift
    and alerts on its latest monitored date, its realised performance, and each real-time worker's lag. Labels are
    bounded: models, their declared inputs, metric names and workers are all finite sets."""

    def __init__(self, client):
        self.client = client
        self._cached: tuple[float, list] = (0.0, [])
        self._lock = threading.Lock()

    def _read(self) -> list:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("ownlens_warehouse_up", "1 when the last read of the monitoring tables succeeded")
        drift = GaugeMetricFamily("ownlens_drift", "Drift on the latest monitored date (Wasserstein in sd, or PSI)",
                                  labels=["model", "column", "statistic"])
        alerts = GaugeMetricFamily("ownlens_drift_alerts", "Columns past their alert threshold on the latest monitored date",
                                   labels=["model"])
        monitored = GaugeMetricFamily("ownlens_monitoring_last_date_timestamp_seconds", "The latest monitored date",
                                      labels=["model"])
        realised = GaugeMetricFamily("ownlens_realised_performance", "Realised performance on the latest monitored date",
                                     labels=["model", "metric"])
        lag = GaugeMetricFamily("ownlens_realtime_worker_lag_seconds", "How far a real-time worker's watermark is behind now",
                                labels=["worker", "model"])
        try:
            counts: dict[str, int] = {}
            for model, column, metric, value, status, kind, day in self.client.query(LATEST_MONITORING).result_rows:
                counts[model] = counts.get(model, 0) + (status == "alert")
                monitored.add_metric([model], day)
                if kind == "performance":
                    realised.add_metric([model, metric if not column else f"{metric}:{column}"], value)
                else:
                    drift.add_metric([model, column, metric], value)
            for model, count in counts.items():
                alerts.add_metric([model], count)
            for worker, model, seconds in self.client.query(WORKER_LAG).result_rows:
                lag.add_metric([worker, model], seconds)
            up.add_metric([], 1)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even while the warehouse does not
            log.warning("metrics: reading the monitoring tables failed: %s", str(exc).splitlines()[0][:200] if str(exc) else exc)
            up.add_metric([], 0)
            return [up]
        return [up, drift, alerts, monitored, realised, lag]

    def collect(self):
        with self._lock:
            at, families = self._cached
            if time.monotonic() - at >= WAREHOUSE_GAUGES_TTL_S or not families:
                families = self._read()
                self._cached = (time.monotonic(), families)
        yield from families


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps in one process do not clash), named as
    Prometheus recommends: base units (``_seconds``), ``_total`` counters, ``_info`` for versions, bounded labels,
    and the standard process and Python metrics."""

    def __init__(self):
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            gc_collector,
            platform_collector,
            process_collector,
        )

        self.registry = CollectorRegistry()
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        self.latency = Histogram("ownlens_http_request_duration_seconds", "HTTP request latency", ["route", "method", "status"],
                                 buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=self.registry)
        self.predictions = Counter("ownlens_predictions_total", "Predictions served", ["model", "version"], registry=self.registry)
        self.model_version = Gauge("ownlens_model_version_info", "Model versions loaded for serving", ["model", "version"],
                                   registry=self.registry)
        self.warehouse: WarehouseGauges | None = None

    def watch(self, client) -> None:
        """Also export the drift, alert, realised-performance and worker-lag gauges of ``client``'s warehouse."""
        if self.warehouse is not None:
            self.registry.unregister(self.warehouse)
        self.warehouse = WarehouseGauges(client)
        self.registry.register(self.warehouse)

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
