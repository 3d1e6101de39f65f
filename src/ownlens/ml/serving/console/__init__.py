"""The web console at ``/ui``: the registry, training runs, predictions, monitoring, A/B tests and the data on
server-rendered pages (Jinja templates, inline SVG charts, one stylesheet served by the package: no build step,
no script, nothing from the internet).

Pages read the warehouse through :mod:`.queries`; the two actions (promote, roll back) go through the registry's
own functions after a confirmation page, so the console changes nothing the CLI could not. With API keys
configured, a browser signs in once at ``/ui/login`` (the key is kept in an HttpOnly, SameSite=Strict cookie the
guard accepts in place of the X-API-Key header).
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ownlens.ml import __version__
from ownlens.ml.errors import InvalidInput, NotFound, OwnLensError
from ownlens.ml.models import MODELS
from ownlens.ml.serving import deps
from ownlens.ml.serving.console import charts, queries
from ownlens.ml.serving.guard import KEY_COOKIE_NAME as KEY_COOKIE

HERE = Path(__file__).parent
PREFIX = "/ui"
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(charts=charts, version=__version__, prefix=PREFIX)
templates.env.filters["num"] = lambda v, digits=4: "" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:.{digits}f}")
templates.env.filters["size"] = lambda b: "" if b is None else next(
    f"{b / 1024 ** i:,.1f} {unit}" for i, unit in reversed(list(enumerate(("B", "KiB", "MiB", "GiB", "TiB")))) if b >= 1024 ** i or i == 0)



def drift_series(drift: dict, top: int) -> dict[str, list]:
    """The predictions and the ``top`` columns that drift most on the latest date, as chart series."""
    return {column: [(d, cell[1]) for d, cell in sorted(by_date.items())] for column, by_date in list(drift["columns"].items())[:top]}


def split_skipped(columns: dict) -> tuple[list, list]:
    """Columns compared on some monitored date, and columns skipped on every one (listed apart, with why)."""
    compared, skipped = [], []
    for column, by_date in columns.items():
        (skipped if all(cell[3] == "skipped" for cell in by_date.values()) else compared).append((column, by_date))
    return compared, skipped


def points_series(points: list[tuple]) -> list[tuple]:
    return [(d, value) for d, value, _ in points]


def arms_rows(arms: list[dict]) -> list[tuple]:
    return [(f"{a['arm']} {a['version']}", a["low"], a["accuracy"], a["high"]) for a in arms]


templates.env.globals.update(drift_series=drift_series, points_series=points_series, arms_rows=arms_rows,
                             split_skipped=split_skipped)
router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    context.update(request=request, message=request.query_params.get("done"))
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _error(request: Request, exc: OwnLensError) -> HTMLResponse:
    return _render(request, "error.html", status_code=exc.http_status, error=type(exc).__name__, detail=str(exc))


def _day(value: str | None, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what} {value!r} is not a date: use YYYY-MM-DD") from None


def _model(name: str):
    from ownlens.ml.models import get

    return get(name)


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form body (the console's only kind), without a multipart dependency."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(body).items()}


def _same_origin(request: Request) -> None:
    """Refuse a state-changing form posted from another site (the cookie is SameSite=Strict too)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        raise InvalidInput("the form was posted from another site: open the console itself and try again")


@router.get("", response_class=HTMLResponse)
def overview(request: Request, client=Depends(deps.warehouse)):
    """Every model: production version, primary metric next to the oracle and the seed target, latest run,
    predictions and monitoring."""
    return _render(request, "overview.html", rows=queries.overview(client))


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, name: str, day: str | None = None, client=Depends(deps.warehouse)):
    try:
        model = _model(name)
        versions = [v | {"rows": queries.metric_rows(name, v["metrics"])} for v in queries.registry(client) if v["model"] == name]
        dates = queries.prediction_counts(client).get(name, {})
        chosen = _day(day, "date") or (max(dates) if dates else None)
        if chosen is not None and dates and chosen not in dates:
            raise NotFound(f"{name} has no predictions stored for {chosen}: pick one of the dates listed")
        drift = queries.drift_history(client, name)
        return _render(request, "model.html", model=model, versions=versions, dates=dates, chosen=chosen,
                       distribution=queries.score_distribution(client, name, chosen) if chosen else None,
                       history=queries.stage_history(client, name), runs=queries.runs(client, name, 20), drift=drift,
                       performance=queries.performance_history(client, name), alerts=queries.alerts(client, name, 30))
    except OwnLensError as exc:
        return _error(request, exc)


@router.get("/models/{name}/promote", response_class=HTMLResponse)
def confirm_promote(request: Request, name: str, version: str, client=Depends(deps.warehouse)):
    from ownlens.ml.registry import store

    try:
        _model(name)
        row = store.get(client, name, version)
        current = store.versions(client, name)
        production = current[current["stage"] == "production"]["model_version"].tolist()
        return _render(request, "confirm.html", name=name, action="promote", version=row["model_version"],
                       question=f"Promote {name} {row['model_version']} to production?",
                       consequence=(f"{production[0]} is archived; " if production else "") +
                       "servers pick the new version up within seconds, without a restart.")
    except OwnLensError as exc:
        return _error(request, exc)


@router.get("/models/{name}/rollback", response_class=HTMLResponse)
def confirm_rollback(request: Request, name: str, client=Depends(deps.warehouse)):
    from ownlens.ml.registry import store

    try:
        _model(name)
        current = store.versions(client, name)
        production = current[current["stage"] == "production"]["model_version"].tolist()
        if not production:
            raise NotFound(f"{name} has no production version to roll back")
        return _render(request, "confirm.html", name=name, action="rollback", version=production[0],
                       question=f"Roll {name} back from {production[0]}?",
                       consequence="the version that was production before it is production again; this one is archived.")
    except OwnLensError as exc:
        return _error(request, exc)


@router.post("/models/{name}/{action}", response_class=HTMLResponse)
async def act(request: Request, name: str, action: str):
    """Promote or roll back (after the confirmation page): the registry's own functions, run off the event loop."""
    from starlette.concurrency import run_in_threadpool

    from ownlens.ml.registry import store

    client = deps.resolved(request, deps.warehouse)
    try:
        _same_origin(request)
        _model(name)
        form = await _form(request)
        if action == "promote":
            if not form.get("version"):
                raise InvalidInput("no version given: open the promotion from the model's page")
            row = await run_in_threadpool(store.promote, client, name, form["version"])
        elif action == "rollback":
            row = await run_in_threadpool(store.rollback, client, name)
        else:
            raise NotFound(f"no action {action!r}: the console can promote or roll back")
    except OwnLensError as exc:
        return _error(request, exc)
    done = quote(f"{name} {row['model_version']} is now production")
    return RedirectResponse(f"{PREFIX}/models/{quote(name)}?done={done}", status_code=303)


@router.get("/models/{name}/drift/{day}", response_class=HTMLResponse)
def drift_report(request: Request, name: str, day: str, client=Depends(deps.warehouse), settings=Depends(deps.settings)):
    """The drift report of a monitored date (rendered from what monitoring stored, written once per date)."""
    from ownlens.ml.monitoring.monitor import stored
    from ownlens.ml.monitoring.report import write_drift_report

    try:
        model = _model(name)
        d = _day(day, "date")
        report = stored(client, model, d)
        path = settings.reports_dir / "drift" / f"{name}-{d}.html"
        written = path.stat().st_mtime if path.is_file() else 0.0
        newest = client.command("SELECT toUnixTimestamp(max(created_at)) FROM ml_model_monitoring WHERE model_name = {m:String} "
                                "AND monitoring_date = {d:Date}", parameters={"m": name, "d": d})
        if written <= float(newest):
            write_drift_report(client, model, report, path)
        return FileResponse(path, media_type="text/html")
    except OwnLensError as exc:
        return _error(request, exc)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, model: str = "", client=Depends(deps.warehouse)):
    try:
        if model:
            _model(model)
        return _render(request, "runs.html", runs=queries.runs(client, model, 100), model=model)
    except OwnLensError as exc:
        return _error(request, exc)


@router.get("/predictions", response_class=HTMLResponse)
def predictions_page(request: Request, client=Depends(deps.warehouse)):
    counts = queries.prediction_counts(client)
    latest = {name: queries.score_distribution(client, name, max(counts[name])) for name in MODELS if counts.get(name)}
    return _render(request, "predictions.html", counts=counts, latest=latest, example=queries.example_user(client))


@router.get("/users", response_class=HTMLResponse)
def user_search(request: Request, user_id: str = ""):
    if not user_id.strip():
        return RedirectResponse(f"{PREFIX}/predictions", status_code=303)
    return RedirectResponse(f"{PREFIX}/users/{quote(user_id.strip())}", status_code=303)


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user_id: str, client=Depends(deps.warehouse), served=Depends(deps.served)):
    """One user: features, every model's stored prediction, the live one of the served user models, segment and
    recommendations."""
    try:
        try:
            canonical = str(uuid.UUID(user_id))
        except ValueError:
            raise InvalidInput(f"{user_id!r} is not a user id: user ids are UUIDs, e.g. from the predictions page") from None
        found = queries.user(client, canonical)
        if found["features"] is None and not found["predictions"]:
            raise NotFound(f"no user {canonical} in the warehouse: no features and no predictions for that id")
        live = []
        for name in ("churn", "conversion", "engagement"):
            try:
                records, unknown = served.server(name, canonical).records([canonical])
            except OwnLensError:
                continue  # not trained yet
            if records:
                live.append((name, records[0]))
        return _render(request, "user.html", user=found, live=live)
    except OwnLensError as exc:
        return _error(request, exc)


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring_page(request: Request, client=Depends(deps.warehouse)):
    return _render(request, "monitoring.html", rows=queries.monitoring_overview(client), alerts=queries.alerts(client, "", 50))


@router.get("/abtests", response_class=HTMLResponse)
def abtests_page(request: Request, client=Depends(deps.warehouse)):
    return _render(request, "abtests.html", tests=queries.ab_tests(client))


@router.get("/abtests/{name}", response_class=HTMLResponse)
def abtest_page(request: Request, name: str, refresh: bool = False, client=Depends(deps.warehouse)):
    """One test: a running test's readout, current with the data (recomputed and stored when anything it reads
    changed since it was last computed, or on ``refresh``), the stored one of a concluded test."""
    from ownlens.ml.monitoring import abtest

    try:
        test = next((t for t in queries.ab_tests(client) if t["name"] == name), None)
        if test is None:
            raise NotFound(f"no A/B test named {name!r}: the A/B tests page lists them")
        _, results, computed = abtest.readout(client, name, refresh=refresh)
        if computed:
            test["updated_at"] = None
        arms = []
        for arm, found in sorted((results.get("arms") or {}).items()):
            right = round(found["accuracy"] * found["users"])
            low, high = queries.wilson(right, found["users"])
            arms.append({"arm": arm, **found, "low": low, "high": high})
        return _render(request, "abtest.html", test=test, results=results, arms=arms, live=test["status"] == "running")
    except OwnLensError as exc:
        return _error(request, exc)


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, client=Depends(deps.warehouse), settings=Depends(deps.settings)):
    from ownlens.ml import schema
    from ownlens.ml.data.quality import check_user_features
    from ownlens.ml.warehouse import describe_dsn, resolve_dsn

    dates = queries.feature_dates(client)
    quality = check_user_features(client, dates[0]) if dates else None
    return _render(request, "data.html", tables=queries.tables(client), dates=dates, quality=quality,
                   schema_version=schema.current_version(client), dsn=describe_dsn(resolve_dsn(settings.dsn)))


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = PREFIX):
    return _render(request, "login.html", next=next if next.startswith(PREFIX) else PREFIX, failed=False)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    form = await _form(request)
    target = form.get("next", PREFIX)
    target = target if target.startswith(PREFIX) and "//" not in target else PREFIX
    keys = deps.resolved(request, deps.settings).api_key_set
    if keys and form.get("key") not in keys:
        return _render(request, "login.html", status_code=401, next=target, failed=True)
    response = RedirectResponse(target, status_code=303)
    if keys:
        response.set_cookie(KEY_COOKIE, quote(form["key"], safe=""), httponly=True, samesite="strict", path="/")
    return response


@router.post("/logout")
def logout():
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(KEY_COOKIE, path="/")
    return response


def add_console(app: FastAPI) -> None:
    """Mount the console, its stylesheet and the training reports on ``app``."""
    settings = app.state.settings
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.mount(f"{PREFIX}/reports", StaticFiles(directory=settings.reports_dir, check_dir=False), name="console-reports")
