"""Reads a model's rows from the warehouse: features of a date joined to later labels and the oracle."""

from __future__ import annotations

import json
from datetime import date
from typing import Iterator

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import query_frame, resolve_brand
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models.spec import ModelSpec
from ownlens.ml.warehouse import query_columns

SCORING_BATCH_ROWS = 250_000


def brand_filter(client: Client, brand_id, params: dict, alias: str = "uf") -> str:
    """`` AND <alias>.brand_id = {brand:UUID}`` (and the parameter) for a brand id, code or name; '' for None."""
    brand = resolve_brand(client, brand_id)
    if not brand:
        return ""
    params["brand"] = brand
    return f" AND {alias}.brand_id = {{brand:UUID}}"


def labelled_dates(client: Client) -> list[date]:
    """Feature dates whose 30-day label window has fully passed, oldest first."""
    rows = client.query(
        "SELECT feature_date FROM customer_user_labels GROUP BY feature_date "
        "HAVING min(label_window_complete) = 1 ORDER BY feature_date"
    ).result_rows
    return [r[0] for r in rows]


def _user_training_sql(spec: ModelSpec) -> str:
    return f"""
SELECT
    {spec.features.select_sql('uf')},
    {spec.label} AS label,
    {spec.oracle or "NULL"} AS oracle
FROM {spec.features.table} AS uf
INNER JOIN {spec.label_table} AS l ON l.user_id = uf.user_id AND l.feature_date = uf.feature_date
LEFT JOIN sim_user_truth AS t ON t.user_id = uf.user_id AND t.feature_date = uf.feature_date
WHERE uf.feature_date IN {{dates:Array(Date)}} AND l.label_window_complete = 1 AND ({spec.population}){{where}}
SETTINGS join_use_nulls = 1
"""


def _user_scoring_sql(spec: ModelSpec) -> str:
    return f"""
SELECT {spec.features.select_sql('uf')}
FROM {spec.features.table} AS uf
WHERE uf.feature_date = {{d:Date}} AND ({spec.population}){{where}}
"""


def entity_columns(spec: ModelSpec) -> tuple[str, ...]:
    return spec.source.entity if spec.source else ("user_id",)


def training_frame(client: Client, spec: ModelSpec, dates: list[date], brand_id=None, limit: int | None = None) -> pd.DataFrame:
    """Feature rows of ``dates`` with ``label`` (from after each date) and ``oracle`` (simulator truth, if any).

    Only rows whose label window is complete are returned, so no label is a guess. ``limit``
    caps the rows, split evenly over the dates.
    """
    if not dates:
        raise NotFound("no feature dates with complete 30-day labels: build features for a date at least 30 days before the end of the data")
    params: dict = {"dates": list(dates)}
    where = brand_filter(client, brand_id, params)
    source = spec.source.training if spec.source else _user_training_sql(spec)
    order = ", ".join(f"cityHash64({c})" for c in entity_columns(spec))
    sql = f"SELECT * FROM ({source.replace('{where}', where)}) ORDER BY feature_date, {order}"
    if limit is not None:
        if int(limit) < 1:
            raise InvalidInput(f"limit must be a positive number of rows (got {limit})")
        params["limit"] = -(-int(limit) // len(dates))  # the same share from every date, so a time split keeps its test date
        sql += " LIMIT {limit:UInt64} BY feature_date"
    frame = query_frame(client, sql, params)
    if frame.empty:
        shown = ", ".join(str(d) for d in dates[:3])
        raise NotFound(
            f"no labelled rows for {spec.name} on {shown}: build features there (`ownlens-ml features build --date ...`) "
            "and make sure 30 days of data follow the date"
        )
    if frame["oracle"].isna().any():
        frame["oracle"] = float("nan")  # a partial oracle is no oracle
    return frame


def _scoring_source(client: Client, spec: ModelSpec, d: date, brand_id, batch_rows: int) -> tuple[str, dict, int]:
    """The scoring SQL of ``d`` (and brand), its parameters, and how many hash-split batches it needs."""
    params: dict = {"d": d}
    where = brand_filter(client, brand_id, params)
    source = (spec.source.scoring if spec.source else _user_scoring_sql(spec)).replace("{where}", where)
    total = int(client.command(f"SELECT count() FROM ({source})", parameters=params))
    if total == 0:
        exists = int(client.command("SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}", parameters={"d": d}))
        if not exists:
            raise NotFound(f"no features for {d}: run `ownlens-ml features build --date {d}` first")
    return source, params, max(1, -(-total // batch_rows))


def encoded_batches(
    client: Client, spec: ModelSpec, d: date, features: list[str], vocabularies: dict[str, list[str]], brand_id=None,
    batch_rows: int = SCORING_BATCH_ROWS, arm: tuple[str, float, str] | None = None,
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Like :func:`scoring_batches`, but already encoded for the model, as numpy (the fast batch path).

    Yields ``(keys, X)``: ``keys`` maps ``key_<id>`` (the entity's ids and ``key_brand_id``) to UUIDs in
    ClickHouse's 16-byte layout, to be written back as they are; ``X`` is the float64 input matrix in
    ``features`` order, NaN where missing. Categoricals become their index in the model's vocabulary
    (NaN when unseen) in SQL, exactly as :class:`CategoryEncoder` codes them, and the matrix leaves
    ClickHouse as one Array column in the Native format, so no value is converted in Python.
    ``arm`` = (A/B test id, split, "A" or "B") keeps that arm's users.
    """
    source, params, parts = _scoring_source(client, spec, d, brand_id, batch_rows)
    arm_sql = ""
    if arm:
        from ownlens.ml.monitoring.abtest import VARIANT_SQL

        params |= {"test": arm[0], "split": arm[1], "arm": arm[2]}
        arm_sql = f" AND {VARIANT_SQL} = {{arm:String}}"
    keys = [f"key_{c}" for c in dict.fromkeys([*entity_columns(spec), "brand_id"])]
    inputs = []
    for i, name in enumerate(features):
        if name in vocabularies:
            params[f"vocab{i}"] = vocabularies[name]
            inputs.append(f"ifNull(toFloat64(nullIf(indexOf({{vocab{i}:Array(String)}}, ifNull({name}, '')), 0) - 1), nan)")
        else:
            inputs.append(f"ifNull(toFloat64({name}), nan)")
    select = ", ".join([*(f"toUUID({k[4:]}) AS {k}" for k in keys), f"[{', '.join(inputs)}] AS inputs"])
    for part in range(parts):
        columns = query_columns(
            client,
            f"SELECT {select} FROM ({source}) WHERE cityHash64(user_id) % {{parts:UInt64}} = {{part:UInt64}}{arm_sql}",
            params | {"parts": parts, "part": part},
        )
        if columns:
            yield {k: columns[k] for k in keys}, columns["inputs"]


def scoring_batches(
    client: Client, spec: ModelSpec, d: date, brand_id=None, batch_rows: int = SCORING_BATCH_ROWS,
) -> Iterator[pd.DataFrame]:
    """The rows of ``d`` to score, in bounded batches (split by a hash of user_id)."""
    source, params, parts = _scoring_source(client, spec, d, brand_id, batch_rows)
    for part in range(parts):
        yield query_frame(client, f"SELECT * FROM ({source}) WHERE cityHash64(user_id) % {{parts:UInt64}} = {{part:UInt64}}",
                          params | {"parts": parts, "part": part})


VECTOR_LOOKUP = """
SELECT toString(v.user_id), v.feature_date, v.numeric, v.categorical
FROM customer_user_feature_vectors AS v
WHERE v.feature_date = {d:Date} AND v.user_id IN {users:Array(UUID)} AND v.feature_set = {signature:String}
"""


# The newest date's vectors from the in-memory dictionary (schema 005); rows of any other date do not match
VECTOR_DICT_LOOKUP = """
SELECT u, v.1, v.2, v.3
FROM (SELECT u, dictGet('dict_user_feature_vectors', ('feature_date', 'numeric', 'categorical'), (toUUID(u), {signature:String})) AS v
      FROM (SELECT arrayJoin({users:Array(String)}) AS u))
WHERE v.1 = {d:Date}
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
    """The feature rows of given users (or (user, article) pairs for pair models) on ``d``.

    """
    if spec.source:
        return query_frame(client, spec.source.lookup.replace("{where}", ""), {"d": d, "pairs": keys})
    return query_frame(client, _user_scoring_sql(spec).replace("{where}", " AND uf.user_id IN {users:Array(UUID)}"),
                       {"d": d, "users": keys})


def _has_vectors(client: Client, spec: ModelSpec, d: date) -> bool:
    return bool(int(client.command(
        "SELECT count() > 0 FROM customer_user_feature_vectors WHERE feature_date = {d:Date} AND feature_set = {s:String}",
        parameters={"d": d, "s": spec.features.signature})))
