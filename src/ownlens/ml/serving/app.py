"""The OwnLens REST API: predictions from the production models, registry views, health and metrics.

``create_app()`` builds the FastAPI app; ``ownlens-ml serve`` runs it with uvicorn. With the embedded
warehouse the server is the one process that holds it; with a ClickHouse server DSN any number of
replicas can run side by side.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from ownlens.ml import __version__
from ownlens.ml.data.loaders import as_date, as_uuid
from ownlens.ml.errors import InvalidInput, NotFound, OwnLensError
from ownlens.ml.settings import Settings, get_settings

log = logging.getLogger("ownlens.api")

MAX_BATCH = 1000  # users or pairs per prediction request


class TooLarge(OwnLensError):
    http_status = 413


class Unauthorized(OwnLensError):
    http_status = 401


# -- request and response models ------------------------------------------------------------------
class Pair(BaseModel):
    user_id: str
    article_id: str


class PredictRequest(BaseModel):
    """Users to score (churn, conversion, engagement) or user x article pairs (click)."""

    user_ids: list[str] | None = Field(None, examples=[["3f2b8c1e-0000-4000-8000-000000000000"]])
    pairs: list[Pair] | None = None
    feature_date: date | None = Field(None, description="Features of this date; default: the latest built.")

    model_config = {"json_schema_extra": {"examples": [{"user_ids": ["3f2b8c1e-0000-4000-8000-000000000000"]}]}}


class PredictResponse(BaseModel):
    model: str
    model_version: str = Field(description="The production version; each prediction names the version that made it "
                                           "(they differ while an A/B test of the model runs).")
    predictions: list[dict]
    unknown: list = Field(default_factory=list, description="Requested users (or pairs) with no features on that date.")


class Recommendation(BaseModel):
    article_id: str
    rank: int
    score: float


class RecommendationsResponse(BaseModel):
    user_id: str
    model_version: str
    recommendation_date: str
    source: str = Field(description="`batch`: stored by the latest batch run; `live`: computed now (users the batch did not cover).")
    cold_start: bool = Field(False, description="The user has no reading history: popular and fresh articles.")
    recommendations: list[Recommendation]


class SegmentResponse(BaseModel):
    user_id: str
    segment_id: str
    segment_name: str
    confidence: float = Field(description="How much nearer the user is to this segment's centre than to the next (0..1).")
    feature_date: str
    model_version: str


class PlacementResponse(BaseModel):
    user_id: str
    placement: str
    expected_revenue_per_1000: float = Field(description="Expected revenue per 1,000 impressions at the chosen placement (EUR).")
    alternatives: dict[str, float] = Field(description="Expected revenue per 1,000 impressions at every placement.")
    explored: bool = Field(description="True: click rates were sampled from their posteriors (Thompson sampling).")
    known_user: bool
    device: str
    feature_date: str
    model_version: str


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


# -- metrics ----------------------------------------------------------------------------------------
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
            path = getattr(scope.get("route"), "path", scope["path"])
            self.metrics.latency.labels(path, scope["method"], str(status)).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(json.dumps({"event": "request", "method": scope["method"], "path": scope["path"],
                                     "status": status, "ms": round(elapsed * 1000, 2)}))


# -- the app ----------------------------------------------------------------------------------------
def _realtime_loop(app: FastAPI, name: str, stop, interval_s: float) -> None:
    """Score new activity for ``name`` until the server stops; errors are logged and retried."""
    from ownlens.ml.models import get_spec
    from ownlens.ml.serving import worker

    spec = get_spec(name)
    while not stop.is_set():
        try:
            worker.run(app.state.client, spec, lambda user: app.state.models.scorer(name, user), f"api-{name}", once=True)
        except Exception:  # the API stays up; the watermark makes the retry exact
            log.exception("real-time worker for %s failed; retrying in %s s", name, interval_s)
        stop.wait(interval_s)



def _refresh_loop(app: FastAPI, stop) -> None:
    """Keep the served models current with the registry, off the request path."""
    from ownlens.ml.serving import models

    while not stop.wait(models.REGISTRY_TTL_S):
        try:
            app.state.models.refresh()
        except Exception:
            log.exception("registry refresh failed; retrying")


SERVING_DICTIONARIES = ("dict_user_feature_vectors", "dict_user_recommendations")


def _load_dictionaries(app: FastAPI) -> None:
    """Load the in-memory serving dictionaries at start-up, so the first requests do not wait for them."""
    for name in SERVING_DICTIONARIES:
        started = time.perf_counter()
        try:
            app.state.client.command(f"SYSTEM RELOAD DICTIONARY {name}")
            log.info(json.dumps({"event": "dictionary_loaded", "dictionary": name, "s": round(time.perf_counter() - started, 2)}))
        except Exception as exc:  # an empty or missing dictionary only means lookups go to the tables
            log.info("serving dictionary %s not loaded: %s", name, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)


def _monitoring_loop(app: FastAPI, stop, interval_s: float, retrain: bool) -> None:
    """Scheduled monitoring (drift on new feature dates, performance once labels are in) every ``interval_s``."""
    from ownlens.ml.monitoring.monitor import monitor_due

    done: set = set()
    while not stop.is_set():
        try:
            for report in monitor_due(app.state.client, done, retrain=retrain):
                log.info(json.dumps({"event": "monitoring", "model": report.model, "date": str(report.current),
                                     "alerts": len(report.alerts)}))
        except Exception:  # the API stays up; the next pass tries again
            log.exception("scheduled monitoring failed; retrying in %s s", interval_s)
        stop.wait(interval_s)


def create_app(settings: Settings | None = None, client: Client | None = None, realtime: list[str] | None = None,
               realtime_interval_s: float = 10.0, monitor_interval_s: float | None = None,
               retrain_on_alert: bool = False) -> FastAPI:
    """The API over ``client`` (default: a client for the configured DSN, opened at start-up).

    ``realtime`` names models whose real-time worker runs in a background thread of this process, and
    ``monitor_interval_s`` turns on scheduled monitoring in another (the way to run both beside the API on
    an embedded warehouse, which one process holds); ``retrain_on_alert`` lets it train a challenger when
    drift alerts fire (promoted if at least as good as production).
    """
    from ownlens.ml.serving.models import AnswerCache, ServedModels

    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import threading

        from ownlens.ml.warehouse import connect

        app.state.client = client or connect(settings.dsn)
        app.state.models = ServedModels(app.state.client, settings.feature_cache_ttl_s)
        stop = threading.Event()
        threads = [threading.Thread(target=_realtime_loop, args=(app, name, stop, realtime_interval_s),
                                    name=f"ownlens-realtime-{name}", daemon=True) for name in realtime or []]
        threads.append(threading.Thread(target=_refresh_loop, args=(app, stop), name="ownlens-registry", daemon=True))
        threads.append(threading.Thread(target=_load_dictionaries, args=(app,), name="ownlens-dictionaries", daemon=True))
        if monitor_interval_s:
            threads.append(threading.Thread(target=_monitoring_loop, args=(app, stop, monitor_interval_s, retrain_on_alert),
                                            name="ownlens-monitoring", daemon=True))
        for thread in threads:
            thread.start()
        yield
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    app = FastAPI(title="OwnLens ML", version=__version__, lifespan=lifespan,
                  description="Predictions from the production models in the OwnLens registry, read from the warehouse.")
    app.state.metrics = metrics

    app.add_middleware(RequestLog, metrics=metrics)

    @app.exception_handler(OwnLensError)
    async def ownlens_error(request: Request, exc: OwnLensError):
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(ClickHouseError)
    async def warehouse_error(request: Request, exc: ClickHouseError):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return JSONResponse({"error": "WarehouseUnavailable", "detail": f"warehouse error: {first[:300]}"}, status_code=503)

    async def require_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
        keys = settings.api_key_set
        if keys and x_api_key not in keys:
            raise Unauthorized("missing or unknown API key: send it in the X-API-Key header")

    async def served(request: Request):
        return request.app.state.models

    @app.get("/health", response_model=Health, tags=["health"])
    def health() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get("/ready", response_model=Health, tags=["health"])
    def ready(request: Request):
        """Readiness: the warehouse answers and its schema is current."""
        from ownlens.ml import schema

        try:
            version = schema.current_version(request.app.state.client)
        except ClickHouseError as exc:
            return JSONResponse(Health(status="unavailable", detail={"warehouse": str(exc)[:200]}).model_dump(), status_code=503)
        if version < schema.latest_version():
            return JSONResponse(Health(status="schema-outdated", detail={"schema": version}).model_dump(), status_code=503)
        return Health(status="ready", detail={"schema": version, "models_loaded": request.app.state.models.loaded()})

    @app.get("/metrics", response_class=PlainTextResponse, tags=["health"])
    def prometheus() -> PlainTextResponse:
        """Prometheus metrics: request latency, predictions served, model versions loaded."""
        return PlainTextResponse(metrics.render().decode(), media_type="text/plain; version=0.0.4")

    @app.get("/models", response_model=list[ModelInfo], tags=["models"], dependencies=[Depends(require_key)])
    def list_models(request: Request) -> list[ModelInfo]:
        """Every registered version, newest first."""
        from ownlens.ml.registry import store

        rows = store.versions(request.app.state.client)
        return [ModelInfo(model=r.model_name, version=r.model_version, stage=r.stage, algorithm=r.algorithm,
                          metrics=json.loads(r.metrics or "{}"), created_at=str(r.created_at)) for r in rows.itertuples()]

    @app.get("/models/{name}", response_model=ModelInfo, tags=["models"], dependencies=[Depends(require_key)])
    def describe_model(name: str, request: Request, version: str = "production") -> ModelInfo:
        """One version (default: production) of a model."""
        from ownlens.ml.models import get_spec
        from ownlens.ml.registry import store

        get_spec(name)
        r = store.get(request.app.state.client, name, version)
        return ModelInfo(model=name, version=r["model_version"], stage=r["stage"], algorithm=r["algorithm"],
                         metrics=json.loads(r["metrics"] or "{}"), created_at=str(r["created_at"]))

    def _predict(name: str, keys: list, feature_date, models) -> PredictResponse:
        if not keys:
            raise InvalidInput("nothing to score: give user_ids (or pairs for click)")
        if len(keys) > MAX_BATCH:
            raise TooLarge(f"{len(keys)} entities in one request; the limit is {MAX_BATCH}: split the batch")
        production = models.scorer(name)
        groups = {production: keys}
        if models.test_of(name) is not None:  # an A/B test runs: each user to the arm it assigns
            groups = {}
            for key in keys:
                user = as_uuid(key[0] if isinstance(key, tuple) else key)
                groups.setdefault(models.scorer(name, user), []).append(key)
        records, unknown = [], []
        for scorer, group in groups.items():
            scored, missing = scorer.records(group, feature_date)
            version = scorer.model.version or "unregistered"
            metrics.model_version.labels(name, version).set(1)
            metrics.predictions.labels(name, version).inc(len(scored))
            records += scored
            unknown += missing
        if len(groups) > 1:  # back in the order asked
            order = {(as_uuid(k[0]), as_uuid(k[1])) if isinstance(k, tuple) else as_uuid(k): i for i, k in enumerate(keys)}
            records.sort(key=lambda r: order.get((r["user_id"], r["article_id"]) if "article_id" in r else r["user_id"], len(order)))
        return PredictResponse(model=name, model_version=production.model.version or "unregistered", predictions=records,
                               unknown=[list(k) if isinstance(k, tuple) else k for k in unknown])

    @app.post("/predict/{name}", response_model=PredictResponse, tags=["predictions"], dependencies=[Depends(require_key)])
    def predict(name: str, body: PredictRequest, models=Depends(served)) -> PredictResponse:
        """Score users (or user x article pairs for click) with the production version of ``name``."""
        from ownlens.ml.models import get_spec

        spec = get_spec(name)
        if spec.source is not None:
            if not body.pairs:
                raise InvalidInput(f"{name} scores user x article pairs: send pairs=[{{user_id, article_id}}]")
            keys = [(p.user_id, p.article_id) for p in body.pairs]
        else:
            if body.pairs:
                raise InvalidInput(f"{name} scores users: send user_ids, not pairs")
            keys = list(body.user_ids or [])
        return _predict(name, keys, body.feature_date, models)

    @app.get("/predict/{name}/{user_id}", response_model=PredictResponse, tags=["predictions"],
             openapi_extra={"parameters": [
                 {"name": "feature_date", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
                  "description": "Features of this date; default: the latest built."},
                 {"name": "X-API-Key", "in": "header", "required": False, "schema": {"type": "string"}}]})
    async def predict_user(name: str, user_id: str, request: Request):
        """One user's prediction; 404 when the user has no features on that date."""
        # the hot path: FastAPI resolves every declared parameter and dependency per request at a cost several
        # times the prediction's, so the two optional ones are read here (and documented above)
        await require_key(request.headers.get("x-api-key"))
        feature_date = request.query_params.get("feature_date")
        feature_date = as_date(feature_date, "feature_date") if feature_date else None
        models = request.app.state.models
        scorer = models.current(name, as_uuid(user_id)) if feature_date is None else None
        record = scorer.cached_record(user_id) if scorer else None
        if record is not None:  # warm: features cached, model current; answered on the event loop, no I/O
            metrics.predictions.labels(name, record["model_version"]).inc()
            production = models.current(name).model.version or "unregistered"  # as _predict reports it
            body = {"model": name, "model_version": production, "predictions": [record], "unknown": []}
            return Response(json.dumps(body).encode(), media_type="application/json")
        result = await run_in_threadpool(_predict, name, [user_id], feature_date, models)
        if not result.predictions:
            raise NotFound(f"user {user_id} has no features on that date: unknown user or not active in the 30 days before it")
        return result

    answers = AnswerCache(settings.feature_cache_ttl_s)

    def _date(request: Request):
        value = request.query_params.get("feature_date")
        return as_date(value, "feature_date") if value else None

    def _recommend(user: str, d, k: int, models) -> dict:
        import pandas as pd

        from ownlens.ml.data.loaders import latest_feature_date
        from ownlens.ml.models.content import recommendation as rec

        client = models.client
        model = models.task("recommendation", user)
        if d is None:
            d = answers.get("latest-feature-date")
            if d is None:
                d = latest_feature_date(client)
                answers.put("latest-feature-date", d)
        rows, source, cold = (rec.stored(client, user, d, k) if k <= rec.TOP_K else pd.DataFrame()), "batch", False
        if rows.empty:  # not in the batch (new user, no batch yet, or more than it keeps): computed now, the date's context reused
            key = ("recommendation-context", model.version, d)
            ctx = answers.get(key)
            if ctx is None:
                ctx = rec._prepared(client, model, d)
                answers.put(key, ctx)
            rows = rec.recommend_users(client, model, [user], d, k, ctx)
            source, cold = "live", bool(rows["cold_start"].iloc[0]) if len(rows) else True
        version = str(rows["model_version"].iloc[0]) if len(rows) else (model.version or "unregistered")
        metrics.predictions.labels("recommendation", version).inc()
        return {"user_id": user, "model_version": version, "recommendation_date": str(rows["recommendation_date"].iloc[0]) if len(rows) else str(d),
                "source": source, "cold_start": cold,
                "recommendations": [{"article_id": a, "rank": int(r), "score": float(x)}
                                    for a, r, x in zip(rows["article_id"], rows["rank"], rows["score"])]}

    @app.get("/recommendations/{user_id}", response_model=RecommendationsResponse, tags=["predictions"],
             openapi_extra={"parameters": [
                 {"name": "k", "in": "query", "required": False, "schema": {"type": "integer", "default": 10, "minimum": 1, "maximum": 100}},
                 {"name": "feature_date", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
                  "description": "Recommendations of the newest batch on or before this date; default: the latest."},
                 {"name": "X-API-Key", "in": "header", "required": False, "schema": {"type": "string"}}]})
    async def recommendations(user_id: str, request: Request):
        """A user's article recommendations: the batch's top-k, or computed now for users it did not cover."""
        await require_key(request.headers.get("x-api-key"))
        user = as_uuid(user_id)
        k = request.query_params.get("k", "10")
        if not k.isdigit() or not 1 <= int(k) <= 100:
            raise InvalidInput(f"k must be a whole number from 1 to 100 (got {k!r})")
        d = _date(request)
        key = ("recommendation", user, int(k), d)
        body = answers.get(key)
        if body is None:
            body = await run_in_threadpool(_recommend, user, d, int(k), request.app.state.models)
            answers.put(key, body)
        else:
            metrics.predictions.labels("recommendation", body["model_version"]).inc()
        return Response(json.dumps(body).encode(), media_type="application/json")

    @app.get("/segments/{user_id}", response_model=SegmentResponse, tags=["predictions"], dependencies=[Depends(require_key)])
    def segment(user_id: str, request: Request, feature_date: date | None = None) -> SegmentResponse:
        """A user's segment (production segmentation model, the user's features of that date); 404 for unknown users."""
        from ownlens.ml.data.loaders import latest_feature_date
        from ownlens.ml.models.customer.segmentation import segment_of

        user = as_uuid(user_id)
        models = request.app.state.models
        model = models.task("segmentation", user)
        d = feature_date or latest_feature_date(models.client)
        rows = segment_of(models.client, model, [user], d)
        if rows.empty:
            raise NotFound(f"user {user} has no features on {d}: unknown user or not active in the 30 days before it")
        metrics.predictions.labels("segmentation", model.version or "unregistered").inc()
        return SegmentResponse(**{k: str(v) if k != "confidence" else float(v) for k, v in rows.iloc[0].items() if k != "brand_id"})

    @app.get("/ads/placement/{user_id}", response_model=PlacementResponse, tags=["predictions"], dependencies=[Depends(require_key)])
    def ad_placement(user_id: str, request: Request, device: str | None = None, explore: bool = True,
                     feature_date: date | None = None) -> PlacementResponse:
        """Where to show this user's ad: the placement with the highest expected revenue. ``explore`` (default)
        samples click rates from their posteriors (Thompson sampling); false takes their means. Users without
        features get the average responsiveness (``device`` picks the device context; default: theirs, or all)."""
        from ownlens.ml.data.loaders import latest_feature_date
        from ownlens.ml.models.advertising.placement import decide_users

        user = as_uuid(user_id)
        models = request.app.state.models
        model = models.task("ad_placement", user)
        if device is not None and device not in model.estimator.contexts_:
            raise InvalidInput(f"unknown device {device!r}: use one of {', '.join(model.estimator.contexts_)}")
        d = feature_date or latest_feature_date(models.client)
        row = decide_users(models.client, model, [user], d, device, explore).iloc[0]
        metrics.predictions.labels("ad_placement", model.version or "unregistered").inc()
        return PlacementResponse(user_id=user, placement=row["placement"], expected_revenue_per_1000=float(row["expected_revenue_per_1000"]),
                                 alternatives={k: float(v) for k, v in row["alternatives"].items()}, explored=bool(row["explored"]),
                                 known_user=bool(row["known_user"]), device=row["device"], feature_date=str(d),
                                 model_version=str(row["model_version"]))

    # the hot route first: Starlette tries routes in order, and every miss costs a regular-expression match
    hot = next(r for r in app.router.routes if getattr(r, "path", "") == "/predict/{name}/{user_id}")
    app.router.routes.remove(hot)
    app.router.routes.insert(0, hot)
    return app
