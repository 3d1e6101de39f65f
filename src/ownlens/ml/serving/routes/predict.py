"""The prediction routes, the same two for every model in the registry: ``GET /predict/{name}/{user_id}`` (or
``{article_id}`` for models of articles) and
``POST /predict/{name}``, added per model so that OpenAPI documents each one's own ids, options, request and typed
response; ``/recommendations``, ``/segments`` and ``/ads/placement`` are aliases that return one user's record."""

from __future__ import annotations

import json
from datetime import date

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from ownlens.ml.data.loaders import as_date, as_uuid
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import get, names
from ownlens.ml.serving import deps
from ownlens.ml.serving.schemas import CODE_PATTERN, DATE_PATTERN, DATE_SCHEMA, MAX_BATCH, Error, predictions_type, request_type

router = APIRouter(tags=["predictions"])

# 413: a body over OWNLENS_MAX_BODY_BYTES (the guard); 500: an artifact failing its integrity check
ERRORS = {status: {"model": Error} for status in (401, 404, 413, 422, 500, 503)}
KEY_PARAM = {"name": "X-API-Key", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "One of OWNLENS_API_KEYS, when the server has keys."}
UUID = {"type": "string", "format": "uuid"}


def key_schema(key: str) -> dict:
    """An entity's id is a UUID (``user_id``, ``article_id``, ``brand_id``), or a code (``channel_code``)."""
    return UUID if key.endswith("_id") else {"type": "string", "pattern": CODE_PATTERN}


def query_parameters(model) -> list[dict]:
    """The OpenAPI parameters of ``GET /predict/{model}/{user_id}``: the path's user, the feature date, the pair's
    other ids (required), and the model's lookup options."""
    key = model.entity[0]
    out = [{"name": key, "in": "path", "required": True, "schema": key_schema(key),
            "description": f"The {key.removesuffix('_id')} the prediction is about."},
           {"name": "feature_date", "in": "query", "required": False, "schema": DATE_SCHEMA,
            "description": "Features of this date; default: the latest built."}]
    out += [{"name": e, "in": "query", "required": True, "schema": UUID, "description": f"The {e.removesuffix('_id')}."}
            for e in model.entity[1:]]
    if model.lookup_options is not None:
        schema = model.lookup_options.model_json_schema()
        for field, spec in schema["properties"].items():
            spec = {k: v for k, v in spec.items() if k not in ("title", "description")}
            if "anyOf" in spec:  # Optional[X]: the parameter is optional, its type X
                spec = next(s for s in spec["anyOf"] if s.get("type") != "null") | {k: v for k, v in spec.items() if k != "anyOf"}
            spec.pop("default", None) if spec.get("default") is None else None
            out.append({"name": field, "in": "query", "required": False, "schema": spec,
                        "description": model.lookup_options.model_fields[field].description or ""})
    return out + [KEY_PARAM]


def lookup_options(model, given: dict) -> dict:
    """``given`` (query parameters or a request's ``options``) checked against the model's lookup options."""
    schema = model.lookup_options
    if schema is None or not any(k in schema.model_fields for k in given):  # (the common case, on the hot path)
        return {}
    try:
        return schema(**{k: v for k, v in given.items() if k in schema.model_fields}).model_dump(exclude_unset=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"{first['loc'][0] if first['loc'] else 'options'}: {first['msg']}") from None


def _user_of(key) -> str:
    return as_uuid(key[0] if isinstance(key, tuple) else key)


def predictions(request: Request, name: str, keys: list, feature_date, options: dict) -> dict:
    """Every key's prediction by the version serving it (production, or its arm's during an A/B test)."""
    if not keys:
        raise InvalidInput("nothing to score: give user_ids (article_ids or brand_ids for the editorial models, pairs for click)")
    feature_date = as_date(feature_date, "feature_date") if feature_date is not None else None
    served, metrics = deps.resolved(request, deps.served), deps.resolved(request, deps.metrics)
    production = served.server(name)
    groups = {production: keys}
    if served.test_of(name) is not None:  # an A/B test runs: each user to the arm it assigns
        groups = {}
        for key in keys:
            groups.setdefault(served.server(name, _user_of(key)), []).append(key)
    records, unknown = [], []
    for server, group in groups.items():
        found, missing = server.records(group, feature_date, **options)
        version = server.model.version or "unregistered"
        metrics.model_version.labels(name, version).set(1)
        metrics.predictions.labels(name, version).inc(len(found))
        records += found
        unknown += missing
    if len(groups) > 1:  # back in the order asked
        model = get(name)
        order = {tuple(as_uuid(k) for k in key) if isinstance(key, tuple) else as_uuid(key): i for i, key in enumerate(keys)}
        records.sort(key=lambda r: order.get(tuple(r[e] for e in model.entity) if len(model.entity) > 1 else r[model.entity[0]], len(order)))
    return {"model": name, "model_version": production.model.version or "unregistered", "predictions": records,
            "unknown": [list(k) if isinstance(k, tuple) else k for k in unknown]}


def _json(body: dict) -> Response:
    return Response(json.dumps(body, default=str).encode(), media_type="application/json")


def _key(model, key: str, query) -> str | tuple:
    """The lookup key of a GET: the path's id, and the model's other ids from the query."""
    extra = []
    for name in model.entity[1:]:
        value = query.get(name)
        if not value:
            what = " x ".join(e.removesuffix("_id") for e in model.entity)
            raise InvalidInput(f"{model.name} scores {what} pairs: add {name}=ID to the query")
        extra.append(value)
    return (key, *extra) if extra else key


async def one(request: Request, name: str, key: str) -> dict:
    """One key's prediction envelope: from memory when the server can (no I/O, on the event loop), else read."""
    model = get(name)
    query = request.query_params
    value = query.get("feature_date")
    feature_date = as_date(value, "feature_date") if value is not None else None  # (empty is no date: 422)
    options = lookup_options(model, dict(query))
    lookup = _key(model, key, query)
    if feature_date is None and len(model.entity) == 1 and model.entity[0].endswith("_id"):
        server = deps.resolved(request, deps.served).current(name, as_uuid(key))
        record = server.cached_record(as_uuid(key), **options) if server is not None else None
        if record is not None:  # warm: answered from memory with a current version
            deps.resolved(request, deps.metrics).predictions.labels(name, record["model_version"]).inc()
            current = deps.resolved(request, deps.served).current(name) or server  # (None while a promotion swaps it in)
            production = current.model.version or "unregistered"
            return {"model": name, "model_version": production, "predictions": [record], "unknown": []}
    body = await run_in_threadpool(predictions, request, name, [lookup], feature_date, options)
    if not body["predictions"]:
        why = {("article_id",): "unknown article, or not published by then",
               ("brand_id",): "unknown brand, or no article views in the hours before then",
               ("channel_code",): "unknown channel (see marketing_channels)"}.get(
            model.entity, "unknown id, or not active in the 30 days before it")
        raise NotFound(f"{' '.join(str(k) for k in (lookup if isinstance(lookup, tuple) else (lookup,)))} has no features on that date: {why}")
    return body


def add_model_routes(name: str) -> None:
    """``GET /predict/{name}/{user_id}`` and ``POST /predict/{name}`` for model ``name``: one implementation
    (:func:`one`, :func:`predictions`), documented with the model's own types."""
    model = get(name)
    response = predictions_type(name)
    body_type = request_type(name)

    async def predict_one(request: Request):
        # the hot path: FastAPI resolves every declared parameter and dependency per request at a cost several
        # times the prediction's, so the parameters are read here (and documented in openapi_extra)
        return _json(await one(request, name, request.path_params[model.entity[0]]))

    def predict_many(request: Request, body=Body(...)):
        keys = ([tuple(getattr(p, e) for e in model.entity) for p in body.pairs] if len(model.entity) > 1
                else list(getattr(body, f"{model.entity[0]}s")))
        options = getattr(body, "options", None)
        return _json(predictions(request, name, keys, body.feature_date,
                                 options.model_dump(exclude_unset=True) if options is not None else {}))

    predict_many.__annotations__["body"] = body_type  # the model's own request type (a closure's, so set here)
    pair = " x ".join(e.removesuffix("_id") for e in model.entity)
    predict_one.__doc__ = (f"One {name} prediction ({model.description}); 404 when the {pair} has no features on that date.")
    predict_many.__doc__ = (f"{name} predictions for up to {MAX_BATCH:,} "
                            + ("pairs" if len(model.entity) > 1 else model.entity[0].removesuffix("_id") + "s")
                            + "; ids without features on that date are listed in `unknown`.")
    router.add_api_route(f"/predict/{name}/{{{model.entity[0]}}}", predict_one, methods=["GET"], response_model=response,
                         name=f"predict_{name}", summary=f"One {name} prediction", responses=ERRORS,
                         openapi_extra={"parameters": query_parameters(model)})
    router.add_api_route(f"/predict/{name}", predict_many, methods=["POST"], response_model=response,
                         name=f"predict_{name}_batch", summary=f"{name} predictions for many", openapi_extra={"parameters": [KEY_PARAM]},
                         responses=ERRORS)


for _name in names():
    add_model_routes(_name)


def alias(path: str, name: str, summary: str) -> None:
    """``path`` answers with one user's record of model ``name`` (what ``/predict/{name}/{user_id}`` holds)."""
    record = get(name).record

    async def endpoint(request: Request):
        return _json((await one(request, name, request.path_params["user_id"]))["predictions"][0])

    endpoint.__doc__ = summary
    router.add_api_route(path, endpoint, methods=["GET"], response_model=record, name=f"{name}_alias", responses=ERRORS,
                         openapi_extra={"parameters": query_parameters(get(name))})


alias("/recommendations/{user_id}", "recommendation", "A user's article recommendations: the newest batch's top-k, or "
      "computed now for users it did not cover, or more than it keeps (`source: live`; no reading history: popular and fresh "
      "articles, `cold_start: true`). The same as `/predict/recommendation/{user_id}`.")
alias("/segments/{user_id}", "segmentation", "A user's segment (the production segmentation model, the user's features of "
      "that date); 404 for unknown users. The same as `/predict/segmentation/{user_id}`.")
alias("/ads/placement/{user_id}", "ad_placement", "Where to show this user's ad: the placement with the highest expected "
      "revenue; `explore` (default) samples click rates from their posteriors (Thompson sampling), false takes their means. "
      "Users without features get the average responsiveness. The same as `/predict/ad_placement/{user_id}`.")


def _trending(request: Request, brand: str | None, hours: int, k: int, at: str | None) -> dict:
    from ownlens.ml.data.loaders import brand_ids

    client = deps.resolved(request, deps.warehouse)
    brands = brand_ids(client, brand or None)
    body = predictions(request, "trending", brands, at, lookup_options(get("trending"), {"hours": hours, "k": k}))
    if not body["predictions"]:
        when = f"the start of {at}" if at else "now (or the latest hour with views)"
        raise NotFound(f"no article views in the {hours} hours before {when}" + (f" in brand {brand}" if brand else "")
                       + ": pass at=DATE within the editorial events, or a longer hours=")
    return body


@router.get("/trending", response_model=predictions_type("trending"), name="trending", summary="What is trending",
            responses=ERRORS, openapi_extra={"parameters": [KEY_PARAM]})
def trending(request: Request,
             brand: str | None = Query(None, min_length=1, description="A brand id, code or name (default: every brand)."),
             hours: int = Query(24, ge=1, le=168, description="The window: the hours before `at` looked at."),
             k: int = Query(10, ge=1, le=20, description="Items per level."),
             at: date | None = Query(None, description="A date: the window ends at its start (default: now, or the end of "
                                                         "the latest hour with views when that is earlier).",
                                     json_schema_extra={"pattern": DATE_PATTERN})):
    """Per brand (one, by id, code or name, or every brand), the categories, topics and articles trending in the latest
    hour with article views in the ``hours`` before ``at`` (or now), against their own seasonal baseline, and the bursts
    of that window (the production trending model). The same as ``/predict/trending/{brand_id}``, for every brand."""
    return _json(_trending(request, brand, hours, k, at))
