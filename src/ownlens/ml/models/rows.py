"""Reads a supervised model's rows from the warehouse: features of a date with the label from after it, the rows
to score (in bounded batches, already encoded for the model), and the rows of given entities."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import query_frame, resolve_brand
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.registry.abtests import variant_sql
from ownlens.ml.warehouse import query_columns

if TYPE_CHECKING:  # annotations only
    from ownlens.ml.models.supervised import ModelSpec

SCORING_BATCH_ROWS = 250_000

LABELLED_DATES = """
SELECT feature_date FROM {labels:Identifier} GROUP BY feature_date HAVING min(label_window_complete) = 1 ORDER BY feature_date
"""
FEATURE_ROWS = "SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}"


def labelled_dates(client: Client, labels: str = "customer_user_labels") -> list[date]:
    """Feature dates whose 30-day label window has fully passed in the table ``labels``, oldest first."""
    return [r[0] for r in client.query(LABELLED_DATES, parameters={"labels": labels}).result_rows]


def _ordered(spec: ModelSpec, limited: bool) -> str:
    """The training rows in a stable order (by date, then a hash of the entity), ``limited`` to the same share per date."""
    order = ", ".join(f"cityHash64({c})" for c in spec.entity)
    return (f"SELECT * FROM ({spec.rows.training}) ORDER BY feature_date, {order}"
            + (" LIMIT {limit:UInt64} BY feature_date" if limited else ""))


def training_frame(client: Client, spec: ModelSpec, dates: list[date], brand_id=None, limit: int | None = None) -> pd.DataFrame:
    """Feature rows of ``dates`` with ``label`` (from after each date).

    Only rows whose label window is complete are returned, so no label is a guess. ``limit``
    caps the rows, split evenly over the dates.
    """
    if not dates:
        raise NotFound("no feature dates with complete 30-day labels: build features for a date at least 30 days before the end of the data")
    params: dict = {"dates": list(dates), "brand": resolve_brand(client, brand_id)}
    if limit is not None:
        if int(limit) < 1:
            raise InvalidInput(f"limit must be a positive number of rows (got {limit})")
        params["limit"] = -(-int(limit) // len(dates))  # the same share from every date, so a time split keeps its test date
    frame = query_frame(client, _ordered(spec, limit is not None), params)
    if frame.empty:
        shown = ", ".join(str(d) for d in dates[:3])
        raise NotFound(
            f"no labelled rows for {spec.name} on {shown}: build features there (`ownlens-ml features build --date ...`) "
            "and make sure 30 days of data follow the date"
        )
    return frame


def _scoring(client: Client, spec: ModelSpec, d: date, brand_id, batch_rows: int) -> tuple[dict, int]:
    """The parameters of ``d``'s scoring SQL and how many hash-split batches it needs."""
    params: dict = {"d": d, "dates": [d], "brand": resolve_brand(client, brand_id)}
    total = int(client.command(f"SELECT count() FROM ({spec.rows.scoring})", parameters=params))
    if total == 0 and not int(client.command(FEATURE_ROWS, parameters={"d": d})):
        raise NotFound(f"no features for {d}: run `ownlens-ml features build --date {d}` first")
    return params, max(1, -(-total // batch_rows))


def _encoded_sql(spec: ModelSpec, keys: list[str], n_features: int, vocabularies: dict[int, str]) -> str:
    """The scoring rows of one hash part (and A/B arm) as raw key columns and one ``inputs`` array per row.

    Feature names come from a model artifact, so they are bound as identifiers (``{f0:Identifier}``), never pasted
    in; categoricals become their index in the model's vocabulary, exactly as CategoryEncoder codes them."""
    inputs = [f"ifNull(toFloat64(nullIf(indexOf({{vocab{i}:Array(String)}}, ifNull({{f{i}:Identifier}}, '')), 0) - 1), nan)"
              if i in vocabularies else f"ifNull(toFloat64({{f{i}:Identifier}}), nan)" for i in range(n_features)]
    select = ", ".join([*(f"toUUID({k[4:]}) AS {k}" for k in keys), f"[{', '.join(inputs)}] AS inputs"])
    return (f"SELECT {select} FROM ({spec.rows.scoring}) WHERE cityHash64(user_id) % {{parts:UInt64}} = {{part:UInt64}} "
            f"AND ({{test:String}} = '' OR {variant_sql('user_id')} = {{arm:String}})")


def key_columns(spec: ModelSpec) -> list[str]:
    """The raw id columns a batch carries: ``key_<entity id>`` and ``key_brand_id``."""
    return [f"key_{c}" for c in dict.fromkeys([*spec.entity, "brand_id"])]


def encoded_batches(
    client: Client, spec: ModelSpec, d: date, features: list[str], vocabularies: dict[str, list[str]], brand_id=None,
    batch_rows: int = SCORING_BATCH_ROWS, arm: tuple[str, float, str] | None = None,
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """The rows of ``d`` to score, encoded for the model, as numpy (the fast batch path).

    Yields ``(keys, X)``: ``keys`` maps ``key_<id>`` (the entity's ids and ``key_brand_id``) to UUIDs in
    ClickHouse's 16-byte layout, to be written back as they are; ``X`` is the float64 input matrix in
    ``features`` order, NaN where missing. The matrix leaves ClickHouse as one Array column in the Native
    format, so no value is converted in Python. ``arm`` = (A/B test id, split, "A" or "B") keeps that arm's users.
    """
    params, parts = _scoring(client, spec, d, brand_id, batch_rows)
    unknown = [f for f in features if f not in spec.input_names]
    if unknown:
        raise InvalidInput(f"the model's inputs {unknown[:3]} are not inputs of {spec.name}: it was not trained by OwnLens")
    coded = {i: name for i, name in enumerate(features) if name in vocabularies}
    params |= {f"f{i}": name for i, name in enumerate(features)}
    params |= {f"vocab{i}": vocabularies[name] for i, name in coded.items()}
    params |= {"test": arm[0], "split": arm[1], "arm": arm[2]} if arm else {"test": "", "split": 0.0, "arm": ""}
    keys = key_columns(spec)
    sql = _encoded_sql(spec, keys, len(features), coded)
    for part in range(parts):
        columns = query_columns(client, sql, params | {"parts": parts, "part": part})
        if columns:
            yield {k: columns[k] for k in keys}, columns["inputs"]


def scoring_batches(
    client: Client, spec: ModelSpec, d: date, brand_id=None, batch_rows: int = SCORING_BATCH_ROWS,
) -> Iterator[pd.DataFrame]:
    """The rows of ``d`` to score, as frames, in bounded batches (split by a hash of user_id)."""
    params, parts = _scoring(client, spec, d, brand_id, batch_rows)
    sql = f"SELECT * FROM ({spec.rows.scoring}) WHERE cityHash64(user_id) % {{parts:UInt64}} = {{part:UInt64}}"
    for part in range(parts):
        yield query_frame(client, sql, params | {"parts": parts, "part": part})


VECTOR_LOOKUP = """
SELECT toString(v.user_id), v.feature_date, v.numeric, v.categorical
FROM customer_user_feature_vectors AS v
WHERE v.feature_date = {d:Date} AND v.user_id IN {users:Array(UUID)} AND v.feature_set = {signature:String}
"""


# The newest date's vectors from the in-memory dictionary (schema 005); rows of any other date do not match, nor
# the default (empty) row an unknown user gets
VECTOR_DICT_LOOKUP = """
SELECT u, v.1, v.2, v.3
FROM (SELECT u, dictGet('dict_user_feature_vectors', ('feature_date', 'numeric', 'categorical'), (toUUID(u), {signature:String})) AS v
      FROM (SELECT arrayJoin({users:Array(String)}) AS u))
WHERE v.1 = {d:Date} AND notEmpty(v.2)
"""

HAS_VECTORS = """
SELECT count() > 0 FROM customer_user_feature_vectors WHERE feature_date = {d:Date} AND feature_set = {s:String}
"""


def _json_rows(client: Client, sql: str, parameters: dict) -> list:
    # JSONCompact parsed by json is ~1 ms faster per call than the driver's typed rows; denormals come quoted
    raw = client.raw_query(sql + " SETTINGS output_format_json_quote_denormals = 1", fmt="JSONCompact", parameters=parameters)
    return json.loads(raw)["data"]


def lookup_vectors(client: Client, spec: ModelSpec, d: date, users: list[str], index: dict[str, dict[str, int]]):
    """``(user ids, feature dates, X)`` from the packed serving vectors, categoricals coded with ``index``;
    None when the date has no vectors of this feature set (then read the feature table instead).

    Users of the newest date come from the in-memory dictionary; the rest (older dates, a dictionary not yet
    reloaded after a build, unknown users) from the table.
    """
    if spec.source or spec.population != "1":
        return None
    params = {"d": d, "users": list(dict.fromkeys(users)), "signature": spec.features.signature}
    rows = _json_rows(client, VECTOR_DICT_LOOKUP, params)
    if len(rows) < len(params["users"]):
        found = {r[0] for r in rows}
        rows += _json_rows(client, VECTOR_LOOKUP, params | {"users": [u for u in params["users"] if u not in found]})
    if len(rows) < len(params["users"]) and not _has_vectors(client, spec, d):
        return None
    nan = float("nan")
    categorical = spec.features.categorical
    X = [[float(v) for v in numeric] + [float(index[c].get(value, nan)) if c in index else nan for c, value in zip(categorical, cats)]
         for _, _, numeric, cats in rows]
    X = np.array(X, dtype=np.float64).reshape(len(rows), len(spec.features.columns))
    return [r[0] for r in rows], [date.fromisoformat(r[1]) for r in rows], X


def lookup_frame(client: Client, spec: ModelSpec, d: date, keys: list) -> pd.DataFrame:
    """The feature rows of given entities on ``d``: user ids, or (user, article) pairs for pair models."""
    return query_frame(client, spec.rows.lookup, {"d": d, "dates": [d], "keys": keys})


def _has_vectors(client: Client, spec: ModelSpec, d: date) -> bool:
    return bool(int(client.command(HAS_VECTORS, parameters={"d": d, "s": spec.features.signature})))
