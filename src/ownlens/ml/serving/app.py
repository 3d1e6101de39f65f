"""The OwnLens REST API: predictions of every model from its production version, the registry, health and metrics.

``create_app()`` builds the FastAPI app (routers per resource in ``routes/``, dependencies in ``deps``);
``ownlens-ml serve`` runs it with uvicorn. With the embedded warehouse the server is the one process that holds
it, and runs scheduled monitoring and real-time workers in background threads; with a ClickHouse server DSN any
number of replicas can run side by side.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ownlens.ml import __version__
from ownlens.ml.errors import OwnLensError
from ownlens.ml.serving.guard import Guard
from ownlens.ml.serving.metrics import Metrics, RequestLog
from ownlens.ml.serving.schemas import MAX_BATCH  # noqa: F401  (the request limit, part of the API)
from ownlens.ml.settings import Settings, get_settings
from ownlens.ml.warehouse import SHARED_PREFIX as WAREHOUSE_PREFIX
from ownlens.ml.warehouse import as_ownlens_error

log = logging.getLogger("ownlens.api")

SERVING_DICTIONARIES = ("dict_user_feature_vectors", "dict_user_recommendations")
RELOAD = "SYSTEM RELOAD DICTIONARY {name:Identifier}"


def _realtime_loop(app: FastAPI, name: str, stop, interval_s: float) -> None:
    """Score new activity for ``name`` until the server stops; errors are logged and retried."""
    from ownlens.ml.models import get
    from ownlens.ml.serving import worker

    model = get(name)
    while not stop.is_set():
        try:
            worker.run(app.state.client, model, lambda user: app.state.models.server(name, user), f"api-{name}", once=True)
        except Exception:  # the API stays up; the watermark makes the retry exact
            log.exception("real-time worker for %s failed; retrying in %s s", name, interval_s)
        stop.wait(interval_s)


def _refresh_loop(app: FastAPI, stop) -> None:
    """Keep the served models current with the registry, off the request path."""
    from ownlens.ml.serving import served

    while not stop.wait(served.REGISTRY_TTL_S):
        try:
            app.state.models.refresh()
        except Exception:
            log.exception("registry refresh failed; retrying")


def _warm_up(app: FastAPI) -> None:
    """Load every registered model and the in-memory serving dictionaries at start-up, so the first requests do
    not wait for them (and /ready knows at once about an artifact that does not load)."""
    try:
        app.state.models.preload()
    except Exception:  # the API stays up; requests load what they need
        log.exception("loading the registered models at start-up failed")
    for name in SERVING_DICTIONARIES:
        started = time.perf_counter()
        try:
            app.state.client.command(RELOAD, parameters={"name": name})
            log.info("dictionary loaded", extra={"fields": {"dictionary": name, "s": round(time.perf_counter() - started, 2)}})
        except Exception as exc:  # an empty or missing dictionary only means lookups go to the tables
            log.info("serving dictionary %s not loaded: %s", name, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)


def _monitoring_loop(app: FastAPI, stop, interval_s: float, retrain: bool) -> None:
    """Scheduled monitoring (drift on new feature dates, performance once outcomes are in) every ``interval_s``."""
    from ownlens.ml.pipelines.monitoring import scheduled_pass

    done: set = set()
    while not stop.is_set():
        try:
            for report in scheduled_pass(app.state.client, done, retrain=retrain):
                log.info("monitoring", extra={"fields": {"model": report.model, "date": str(report.current),
                                                         "alerts": len(report.alerts)}})
        except Exception:  # the API stays up; the next pass tries again
            log.exception("scheduled monitoring failed; retrying in %s s", interval_s)
        stop.wait(interval_s)


def create_app(settings: Settings | None = None, client: Client | None = None, realtime: list[str] | None = None,
               realtime_interval_s: float = 10.0, monitor_interval_s: float | None = None,
               retrain_on_alert: bool = False, share_warehouse_at: str | None = None) -> FastAPI:
    """The API over ``client`` (default: a client for the configured DSN, opened at start-up).

    ``realtime`` names models whose real-time worker runs in a background thread of this process, and
    ``monitor_interval_s`` turns on scheduled monitoring in another (the way to run both beside the API on
    an embedded warehouse, which one process holds); ``retrain_on_alert`` lets it train a challenger when
    drift alerts fire (promoted if at least as good as production).
    """
    from ownlens.ml.serving.routes import health, models, predict
    from ownlens.ml.serving.served import ServedModels

    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from ownlens.ml.warehouse import connect

        app.state.client = client or connect(settings.dsn)
        app.state.models = ServedModels(app.state.client, settings.feature_cache_ttl_s)
        metrics.watch(app.state.client)
        stop = threading.Event()
        threads = [threading.Thread(target=_realtime_loop, args=(app, name, stop, realtime_interval_s),
                                    name=f"ownlens-realtime-{name}", daemon=True) for name in realtime or []]
        threads.append(threading.Thread(target=_refresh_loop, args=(app, stop), name="ownlens-registry", daemon=True))
        threads.append(threading.Thread(target=_warm_up, args=(app,), name="ownlens-warm-up", daemon=True))
        shared = _share_warehouse(app, share_warehouse_at)
        if monitor_interval_s:
            threads.append(threading.Thread(target=_monitoring_loop, args=(app, stop, monitor_interval_s, retrain_on_alert),
                                            name="ownlens-monitoring", daemon=True))
        for thread in threads:
            thread.start()
        yield
        if shared is not None:
            from ownlens.ml.serving.warehouse_proxy import remove_handoff

            remove_handoff(*shared)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    app = FastAPI(title="OwnLens ML", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Predictions of every model from its production version in the OwnLens registry, read from the warehouse.")
    app.state.metrics = metrics
    app.state.settings = settings
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes)  # inside the request log: refusals are logged too
    app.add_middleware(RequestLog, metrics=metrics)
    app.add_middleware(SharedWarehouse, owner=app)  # outermost: warehouse traffic is neither API requests nor logged as them

    @app.exception_handler(OwnLensError)
    async def ownlens_error(request: Request, exc: OwnLensError):
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(ClickHouseError)
    async def warehouse_error(request: Request, exc: ClickHouseError):
        return await ownlens_error(request, as_ownlens_error(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # the one error shape for FastAPI's own validation too: where, and what is wrong, in one line
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
        detail = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            where, detail = "body", "is not valid JSON"
        return JSONResponse({"error": "InvalidInput", "detail": f"{where}: {detail}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # a body FastAPI could not decode (not UTF-8 JSON): invalid input, as any other
            return JSONResponse({"error": "InvalidInput", "detail": "body: is not valid JSON"}, status_code=422)
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        detail = f"no route {request.method} {request.url.path}: see /docs" if exc.status_code in (404, 405) else str(exc.detail)
        return JSONResponse({"error": kind, "detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    app.include_router(predict.router)  # first: Starlette tries routes in order, and the hot route is here
    app.include_router(models.router)
    app.include_router(health.router)
    add_offline_docs(app)
    from ownlens.ml.serving.console import add_console

    add_console(app)
    return app


class SharedWarehouse:
    """ASGI middleware: /warehouse (exactly, or below it; no slash redirect, which would lose a streamed insert's
    body) goes to the embedded warehouse's proxy while this server shares it, else 404; everything else to the app."""

    def __init__(self, app, owner: FastAPI):
        self.app, self.owner = app, owner

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == WAREHOUSE_PREFIX or path.startswith(WAREHOUSE_PREFIX + "/")):
            return await self.app(scope, receive, send)
        proxy = getattr(self.owner.state, "warehouse_proxy", None)
        if proxy is None:
            body = b'{"error": "NotFound", "detail": "this server does not share its warehouse (only serve on an embedded one does)"}'
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await proxy(scope, receive, send)


def _share_warehouse(app: FastAPI, url: str | None) -> tuple[str, str] | None:
    """Open the /warehouse endpoint and write the hand-off file when this server holds an embedded warehouse."""
    path = getattr(app.state.client, "path", None)
    if not url or not path or path.startswith(":memory:"):
        return None
    from ownlens.ml.serving.warehouse_proxy import WarehouseProxy, write_handoff

    token = write_handoff(path, url)
    app.state.warehouse_proxy = WarehouseProxy(path, token)
    log.info("sharing the embedded warehouse", extra={"fields": {"url": f"{url}{WAREHOUSE_PREFIX}", "warehouse": path}})
    return path, token


DOCS_ASSETS = "/docs-assets"  # Swagger UI and ReDoc, served from the package: /docs works without the internet
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def add_offline_docs(app: FastAPI) -> None:
    """/docs and /redoc with their scripts served by this server (FastAPI's defaults load them from a CDN), from
    the assets the fastapi-offline package ships."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import Response
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).parent / "static"
    redoc_js: list[bytes] = []

    @app.get(f"{DOCS_ASSETS}/redoc.standalone.js", include_in_schema=False)
    async def redoc_script():
        # ReDoc's sidebar shows Redocly's logo from their CDN: point it at our own icon (relative to /redoc)
        if not redoc_js:
            redoc_js.append((assets / "redoc.standalone.js").read_bytes().replace(REDOC_CDN_LOGO, b"docs-assets/favicon.png"))
        return Response(redoc_js[0], media_type="application/javascript", headers={"cache-control": "max-age=3600"})

    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request):
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
                                   oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
                                   swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png")

    @app.get(app.swagger_ui_oauth2_redirect_url, include_in_schema=False)
    async def swagger_redirect():
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request):
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js", with_google_fonts=False,
                              redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png")
