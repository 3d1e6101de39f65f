"""One prediction route for every model: ``GET /predict/{name}/{key}`` and ``POST /predict/{name}``, each model's
typed record documented in OpenAPI; ``/recommendations``, ``/segments`` and ``/ads/placement`` are aliases that
return one user's record of those models."""

from __future__ import annotations

import json

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from ownlens.ml.data.loaders import as_date, as_uuid
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import get, names
from ownlens.ml.serving import deps
from ownlens.ml.serving.schemas import MAX_BATCH, Error, PredictRequest, any_predictions

router = APIRouter(tags=["predictions"])

NAME = Path(description="The model.", json_schema_extra={"enum": names()})

# the query parameters a lookup may take, documented once (each model reads those it has)
QUERY = [
    {"name": "feature_date", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
     "description": "Features of this date; default: the latest built."},
    {"name": "article_id", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "The article, for models of user x article pairs (click)."},
    {"name": "k", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100},
     "description": "recommendation: how many articles (default 10)."},
    {"name": "device", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "ad_placement: the device context (default: the user's usual device)."},
    {"name": "explore", "in": "query", "required": False, "schema": {"type": "boolean"},
     "description": "ad_placement: sample click rates from their posteriors (default true)."},
    {"name": "seed", "in": "query", "required": False, "schema": {"type": "integer"},
     "description": "ad_placement: seed of the sampling."},
    {"name": "X-API-Key", "in": "header", "required": False, "schema": {"type": "string"}},
]


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
        raise InvalidInput("nothing to score: give user_ids (or pairs for click)")
    if len(keys) > MAX_BATCH:
        raise deps.TooLarge(f"{len(keys)} entities in one request; the limit is {MAX_BATCH}: split the batch")
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
    await deps.require_key(request)
    model = get(name)
    query = request.query_params
    value = query.get("feature_date")
    feature_date = as_date(value, "feature_date") if value else None
    options = lookup_options(model, dict(query))
    lookup = _key(model, key, query)
    if feature_date is None and len(model.entity) == 1:
        server = deps.resolved(request, deps.served).current(name, as_uuid(key))
        record = server.cached_record(as_uuid(key), **options) if server is not None else None
        if record is not None:  # warm: answered from memory with a current version
            deps.resolved(request, deps.metrics).predictions.labels(name, record["model_version"]).inc()
            production = deps.resolved(request, deps.served).current(name).model.version or "unregistered"
            return {"model": name, "model_version": production, "predictions": [record], "unknown": []}
    body = await run_in_threadpool(predictions, request, name, [lookup], feature_date, options)
    if not body["predictions"]:
        raise NotFound(f"{' '.join(str(k) for k in (lookup if isinstance(lookup, tuple) else (lookup,)))} has no features on that date: "
                       "unknown id, or not active in the 30 days before it")
    return body


@router.get("/predict/{name}/{key}", response_model=any_predictions(names()), openapi_extra={"parameters": QUERY},
            responses={401: {"model": Error}, 404: {"model": Error}, 422: {"model": Error}, 503: {"model": Error}})
async def predict_one(request: Request, name: str = NAME, key: str = Path(description="The id the prediction is about: a user's id "
                                                                                      "(click: the user, with article_id in the query).")):
    """One prediction of any model; 404 when the id has no features on that date. Query parameters: ``feature_date``,
    the other ids of pair models (``article_id``), and the model's lookup options (recommendation: ``k``; ad_placement:
    ``device``, ``explore``, ``seed``)."""
    # the hot path: FastAPI resolves every declared parameter and dependency per request at a cost several times
    # the prediction's, so the optional ones are read here (and documented above)
    return _json(await one(request, name, key))


@router.post("/predict/{name}", response_model=any_predictions(names()), dependencies=[Depends(deps.require_key)],
             responses={401: {"model": Error}, 404: {"model": Error}, 413: {"model": Error}, 422: {"model": Error},
                        503: {"model": Error}})
def predict_many(request: Request, name: str = NAME, body: PredictRequest = Body(...)):
    """Predictions of any model for up to 1,000 ids: ``user_ids`` for user models, ``pairs`` for models of user x
    article pairs (click); unknown ids are listed in ``unknown``."""
    model = get(name)
    if len(model.entity) > 1:
        if not body.pairs:
            raise InvalidInput(f"{name} scores {' x '.join(e.removesuffix('_id') for e in model.entity)} pairs: "
                               f"send pairs=[{{{', '.join(model.entity)}}}]")
        keys = [tuple(getattr(p, e) for e in model.entity) for p in body.pairs]
    else:
        if body.pairs:
            raise InvalidInput(f"{name} scores users: send user_ids, not pairs")
        keys = list(body.user_ids or [])
    if body.options and model.lookup_options is None:
        raise InvalidInput(f"{name} takes no options")
    return _json(predictions(request, name, keys, body.feature_date, lookup_options(model, body.options or {})))


def alias(path: str, name: str, summary: str, params: list[str]) -> None:
    """``path`` answers with one user's record of model ``name`` (what ``/predict/{name}/{user_id}`` holds)."""
    record = get(name).record
    documented = [q for q in QUERY if q["name"] in params + ["feature_date", "X-API-Key"]]

    async def endpoint(request: Request, user_id: str):
        return _json((await one(request, name, user_id))["predictions"][0])

    endpoint.__doc__ = summary
    router.add_api_route(path, endpoint, methods=["GET"], response_model=record, openapi_extra={"parameters": documented},
                         name=f"{name}_alias", responses={401: {"model": Error}, 404: {"model": Error}, 422: {"model": Error}})


alias("/recommendations/{user_id}", "recommendation", "A user's article recommendations: the newest batch's top-k, or "
      "computed now for users it did not cover, or more than it keeps (`source: live`; no reading history: popular and fresh "
      "articles, `cold_start: true`). The same as `/predict/recommendation/{user_id}`.", ["k"])
alias("/segments/{user_id}", "segmentation", "A user's segment (the production segmentation model, the user's features of "
      "that date); 404 for unknown users. The same as `/predict/segmentation/{user_id}`.", [])
alias("/ads/placement/{user_id}", "ad_placement", "Where to show this user's ad: the placement with the highest expected "
      "revenue; `explore` (default) samples click rates from their posteriors (Thompson sampling), false takes their means. "
      "Users without features get the average responsiveness. The same as `/predict/ad_placement/{user_id}`.",
      ["device", "explore", "seed"])
