"""Batch and single-entity prediction for any :class:`ModelSpec`, written back to the warehouse idempotently."""

from __future__ import annotations

import os
import time
import uuid
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import as_date, as_uuid, latest_feature_date, resolve_brand
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models.rows import SCORING_BATCH_ROWS, encoded_batches, key_columns, lookup_frame, lookup_vectors
from ownlens.ml.models.trained import TrainedModel
from ownlens.ml.warehouse import drop_scratch, insert_columns, replace_partition, scratch_table

if TYPE_CHECKING:  # annotations only
    from ownlens.ml.models.supervised import ModelSpec

# the model of each row: its pass (one per A/B arm, else one) indexes these parameters
LEVEL_SQL, DECISION_SQL = "{levels:Array(String)}[level_code + 1]", "toUInt8(value >= {thresholds:Array(Float64)}[pass_no + 1])"
ROW_VERSION, ROW_MODEL_ID = "{versions:Array(String)}[pass_no + 1]", "toUUIDOrNull({model_ids:Array(String)}[pass_no + 1])"


def _outputs(spec: ModelSpec, values: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    level = spec.level(values) if spec.level else np.full(len(values), "", dtype=object)
    decision = (values >= threshold).astype(np.uint8) if spec.task == "binary" else np.zeros(len(values), np.uint8)
    return level, decision


def score_of_probability(values: np.ndarray) -> np.ndarray:
    """0-100 per probability, 100 where it is 0 (``ModelSpec.score_column``)."""
    return np.rint(100 * (1 - np.clip(values, 0, 1))).astype(np.uint8)


def driver_lists(model: TrainedModel, X: np.ndarray, k: int) -> list[list[str]]:
    """Each row's ``top_drivers`` by name (``TrainedModel.drivers``)."""
    names = model.features
    return [[names[j] for j in row if j >= 0] for row in model.drivers(X, k).tolist()]


def context_values(model: TrainedModel, X: np.ndarray, column: str) -> list[str]:
    """A categorical input of each row as it was before coding ('' where unknown to the version)."""
    values = model.encoder.vocabularies.get(column, [])
    codes = X[:, model.features.index(column)]
    return [values[int(c)] if np.isfinite(c) and 0 <= c < len(values) else "" for c in codes]


def _entity_id_sql(spec: ModelSpec) -> str:
    """ml_model_predictions.entity_id from the raw table's keys: the id, or the ids joined by ':'."""
    return "concat(" + ", ':', ".join(f"toString(key_{c})" for c in spec.entity) + ")"


# a batch of one brand keeps the other brands' rows of the day
OTHER_BRANDS_DOMAIN = "SELECT * FROM {table:Identifier} WHERE prediction_date = {d:Date} AND brand_id != {brand:UUID}"
OTHER_BRANDS_ALL = ("SELECT * FROM ml_model_predictions WHERE model_name = {model:String} AND prediction_date = {d:Date} "
                    "AND brand_id != {brand:UUID}")


def predict_batch(spec: ModelSpec, client: Client, model: TrainedModel, d: date, *, brand_id=None,
                  batch_rows: int = SCORING_BATCH_ROWS, progress=None, ab_test=None) -> dict:
    """Score every row of ``d`` (of one brand, if given) and replace that date's predictions.

    Writes ml_model_predictions and, for user models, ``spec.predictions_table`` through staging
    tables swapped in at the end, so a failure leaves the previous predictions untouched and a
    re-run replaces them. Scoring one brand keeps the other brands' rows of the day. With a running
    ``ab_test`` (monitoring.abtest.ABTest) each user is scored by their arm's version instead of ``model``.
    """
    t0 = time.perf_counter()
    passes = [(model, None)]
    if ab_test is not None:
        from ownlens.ml.models.trained import load

        passes = [(load(client, spec.name, v), (ab_test.test_id, ab_test.split, arm))
                  for arm, v in (("A", ab_test.version_a), ("B", ab_test.version_b))]
    for m, _ in passes:
        m.estimator.set_threads(os.cpu_count() or 1)
    raw, staged_domain, staged_all = (scratch_table(client, kind) for kind in ("pred_raw", "pred_domain", "pred_all"))
    domain = spec.predictions_table
    keys = key_columns(spec)
    # drivers travel as positions in the names of every pass's inputs (1-based; 0: none), named in SQL
    driver_names = sorted({f for m, _ in passes for f in m.features}) if spec.drivers else []
    extra = (["score UInt8"] if spec.score_column else []) + [f"driver_{i} UInt16" for i in range(spec.drivers)]
    # context inputs likewise, as positions in every pass's values of the column
    context_names = {c: sorted({v for m, _ in passes for v in m.encoder.vocabularies.get(c, [])}) for c in spec.context}
    extra += [f"context_{i} UInt16" for i in range(len(spec.context))]
    client.command(f"CREATE TABLE {raw} ({', '.join(f'{k} UUID' for k in keys)}, value Float64, level_code UInt8, "
                   f"pass_no UInt8{''.join(', ' + c for c in extra)}) ENGINE = Memory")
    if domain:
        client.command(f"CREATE TABLE {staged_domain} AS {domain}")
    client.command(f"CREATE TABLE {staged_all} AS ml_model_predictions")
    version = " | ".join(m.version or "unregistered" for m, _ in passes)  # "A | B" during an A/B test
    params = {"d": d, "model": spec.name, "batch": str(uuid.uuid4()), "entity_type": spec.entity_type,
              "versions": [m.version or "unregistered" for m, _ in passes], "model_ids": [m.model_id or "" for m, _ in passes],
              "levels": list(spec.level.names) if spec.level else [""], "thresholds": [m.threshold for m, _ in passes],
              "driver_names": driver_names, **{f"context_{i}_names": context_names[c] for i, c in enumerate(spec.context)}}
    try:
        brand = resolve_brand(client, brand_id)
        if brand:
            keep = {"d": d, "model": spec.name, "brand": brand}
            if domain:
                client.command(f"INSERT INTO {staged_domain} {OTHER_BRANDS_DOMAIN}", parameters={**keep, "table": domain})
            client.command(f"INSERT INTO {staged_all} {OTHER_BRANDS_ALL}", parameters=keep)
        scored = 0
        for number, (m, arm) in enumerate(passes):
            for ids, X in encoded_batches(client, spec, d, m.features, m.encoder.vocabularies, brand_id, batch_rows, arm):
                if np.isinf(X).any():
                    bad = [m.features[i] for i in np.where(np.isinf(X).any(axis=0))[0]]
                    raise InvalidInput(f"feature column(s) {bad[:5]} contain infinite values in the warehouse: fix the feature rows")
                values = m.predict_matrix(X)
                codes = spec.level.codes(values) if spec.level else np.zeros(len(values), np.uint8)
                columns = {**{k: ("UUID", v) for k, v in ids.items()}, "value": ("Float64", values),
                           "level_code": ("UInt8", codes), "pass_no": ("UInt8", np.full(len(X), number))}
                if spec.score_column:
                    columns["score"] = ("UInt8", score_of_probability(values))
                if spec.drivers:
                    position = np.array([driver_names.index(f) + 1 for f in m.features])
                    top = m.drivers(X, spec.drivers)
                    for i in range(spec.drivers):
                        columns[f"driver_{i}"] = ("UInt16", np.where(top[:, i] >= 0, position[np.maximum(top[:, i], 0)], 0))
                for i, c in enumerate(spec.context):
                    position = {v: j + 1 for j, v in enumerate(context_names[c])}
                    columns[f"context_{i}"] = ("UInt16", np.array([position.get(v, 0) for v in context_values(m, X, c)]))
                insert_columns(client, raw, columns)
                scored += len(X)
                if progress:
                    progress(scored)
        if scored == 0:
            raise NotFound(f"no rows to score for {spec.name} on {d}" + (f" and brand {brand_id}" if brand_id else ""))
        if domain:
            columns = ["user_id", "prediction_date", "brand_id", spec.output]
            values_sql = ["key_user_id", "{d:Date}", "key_brand_id", "value"]
            if spec.level_column:
                columns.append(spec.level_column)
                values_sql.append(LEVEL_SQL)
            if spec.decision_column:
                columns.append(spec.decision_column)
                values_sql.append(DECISION_SQL)
            for i, c in enumerate(spec.context):
                columns.append(c)
                values_sql.append(f"{{context_{i}_names:Array(String)}}[context_{i}]")  # [0]: ''
            if spec.score_column:
                columns.append(spec.score_column)
                values_sql.append("score")
            if spec.drivers:
                named = ", ".join(f"driver_{i}" for i in range(spec.drivers))
                columns.append("top_drivers")
                values_sql.append(f"arrayMap(i -> {{driver_names:Array(String)}}[i], arrayFilter(i -> i > 0, [{named}]))")
            columns += ["model_id", "model_version"]
            values_sql += [ROW_MODEL_ID, ROW_VERSION]
            client.command(f"INSERT INTO {staged_domain} ({', '.join(columns)}) SELECT {', '.join(values_sql)} FROM {raw}",
                           parameters=params)
        label = f"if({LEVEL_SQL} != '', {LEVEL_SQL}, toString({DECISION_SQL}))" if spec.task == "binary" else LEVEL_SQL
        client.command(f"""
INSERT INTO {staged_all}
SELECT generateUUIDv4(), {ROW_MODEL_ID}, {{model:String}}, {ROW_VERSION}, {{entity_type:String}},
       {_entity_id_sql(spec)}, key_brand_id, {{d:Date}}, value, {label}, toUUID({{batch:String}}), now64(3)
FROM {raw}""", parameters=params)
        if domain:
            client.command(f"ALTER TABLE {domain} REPLACE PARTITION {{d:Date}} FROM {staged_domain}", parameters=params)
        client.command(f"ALTER TABLE ml_model_predictions REPLACE PARTITION tuple({{model:String}}, {{d:Date}}) FROM {staged_all}",
                       parameters=params)
    finally:
        drop_scratch(client, raw, staged_domain, staged_all)
    seconds = time.perf_counter() - t0
    return {"model": spec.name, "version": version, "date": str(d), "rows": scored,
            "seconds": round(seconds, 3), "rows_per_s": round(scored / seconds) if seconds else None,
            "table": domain or "ml_model_predictions"}


USER_PREDICTIONS = """
SELECT generateUUIDv4(), toUUIDOrNull({model_id:String}), {model:String}, {version:String}, {entity_type:String},
       {entity:Identifier}, toUUID(brand_id), {d:Date}, value, label, toUUID({batch:String}), now64(3)
FROM {raw:Identifier}
"""
OTHER_BRANDS_PREDICTIONS = "model_name = {model:String} AND prediction_date = {d:Date} AND brand_id != {brand:UUID}"


def store_user_predictions(client: Client, model: TrainedModel, d: date, raw: str, brand=None, entity_type: str = "user") -> int:
    """Replace ``model``'s ml_model_predictions rows of ``d`` with the rows of table ``raw`` (columns user_id, or
    ``{entity_type}_id``, and brand_id as text, ``value`` and ``label``). With ``brand`` (an id) only that brand's
    rows are replaced."""
    params = {"raw": raw, "brand": brand, "d": d, "model": model.spec_name, "version": model.version or "unregistered",
              "entity_type": entity_type, "entity": f"{entity_type}_id",
              "model_id": model.model_id or "", "batch": str(uuid.uuid4())}
    return replace_partition(client, "ml_model_predictions", (model.spec_name, d), USER_PREDICTIONS, params,
                             partition_type=("String", "Date"), keep=OTHER_BRANDS_PREDICTIONS if brand else None)


def canonical_key(entity: tuple[str, ...], key) -> str | tuple[str, ...]:
    """A key in canonical form: a UUID's text for one id, a tuple of them for several (InvalidInput otherwise)."""
    if len(entity) == 1:
        return as_uuid(key)
    if isinstance(key, str) or len(key) != len(entity):
        raise InvalidInput(f"a key here is one of each of {', '.join(entity)} (got {key!r})")
    return tuple(as_uuid(k) for k in key)


class LatestDate:
    """The newest feature date, read from the warehouse at most once a minute: what a lookup without a date uses."""

    TTL_S = 60.0

    def __init__(self, client: Client):
        self.client = client
        self._latest: tuple[float, date] | None = None

    def __call__(self, feature_date=None) -> date:
        if feature_date is not None:
            return as_date(feature_date, "feature_date")
        now = time.monotonic()
        if self._latest is None or now - self._latest[0] > self.TTL_S:
            self._latest = (now, latest_feature_date(self.client))
        return self._latest[1]

    def cached(self) -> date | None:
        """The date if it was read lately, without touching the warehouse; None otherwise."""
        if self._latest is None or time.monotonic() - self._latest[0] > self.TTL_S:
            return None
        return self._latest[1]


class Scorer:
    """Scores given users (or user x article pairs) from stored features; caches the latest feature date briefly."""

    def __init__(self, spec: ModelSpec, client: Client, model: TrainedModel, cache_ttl_s: float = 0.0):
        self.spec, self.client, self.model = spec, client, model
        self.feature_date = LatestDate(client)
        self.cache_ttl_s = cache_ttl_s  # > 0: reuse users' feature rows read in the last cache_ttl_s seconds
        self._cache: dict[tuple[date, str], tuple[float, date, np.ndarray]] = {}
        model.estimator.set_threads(1)  # a few rows per call: one thread, no contention with the warehouse

    CACHE_MAX_ENTRIES = 200_000

    def _vectors(self, d: date, users: list[str]):
        """Packed feature rows of ``users`` on ``d``, through the short-lived cache when it is on."""
        if self.cache_ttl_s <= 0:
            return lookup_vectors(self.client, self.spec, d, users, self.model.encoder.index)
        now = time.monotonic()
        hits = {u: self._cache.get((d, u)) for u in users}
        missing = [u for u, hit in hits.items() if hit is None or hit[0] < now]
        if missing:
            found = lookup_vectors(self.client, self.spec, d, missing, self.model.encoder.index)
            if found is None:
                return None
            if len(self._cache) > self.CACHE_MAX_ENTRIES:
                self._cache.clear()
            for user, feature_day, row in zip(*found):
                self._cache[(d, user)] = hits[user] = (now + self.cache_ttl_s, feature_day, row)
        rows = [(u, hits[u]) for u in dict.fromkeys(users) if hits.get(u) is not None and hits[u][0] >= now]
        X = np.array([hit[2] for _, hit in rows], dtype=np.float64).reshape(len(rows), len(self.spec.features.columns))
        return [u for u, _ in rows], [hit[1] for _, hit in rows], X

    FEW_ROWS = 32  # up to this many rows per call, XGBoost's trees are walked by numpy (see compiled.py)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if not len(X):
            return np.array([])
        return self.model.predict_few(X) if len(X) <= self.FEW_ROWS else self.model.predict_matrix(X)

    def _columns(self, entities: dict, feature_dates: list, X: np.ndarray, values: np.ndarray, return_proba: bool = True) -> dict:
        level, decision = _outputs(self.spec, values, self.model.threshold)
        columns = {**entities, "feature_date": feature_dates}
        if return_proba or self.spec.task != "binary":
            columns[self.spec.output] = values
        if self.spec.level_column:
            columns[self.spec.level_column] = level
        if self.spec.decision_column:
            columns[self.spec.decision_column] = decision
        for column in self.spec.context:
            columns[column] = context_values(self.model, X, column)
        if self.spec.score_column:
            columns[self.spec.score_column] = score_of_probability(values)
        if self.spec.drivers:
            columns["top_drivers"] = driver_lists(self.model, X, self.spec.drivers)
        columns["model_version"] = [self.model.version or "unregistered"] * len(values)
        return columns

    def _scored(self, keys: list, feature_date, return_proba: bool) -> tuple[dict, list, bool]:
        pair = len(self.spec.entity) > 1
        keys = [canonical_key(self.spec.entity, k) for k in keys]
        d = self.feature_date(feature_date)
        packed = None
        if not pair and self.model.features == self.spec.features.columns:
            packed = self._vectors(d, keys)
        if packed is not None:  # the fast path: two columns from the serving vectors, no pandas
            users, dates, X = packed
            columns = self._columns({"user_id": users}, dates, X, self._predict(X), return_proba)
        else:
            frame = lookup_frame(self.client, self.spec, d, keys)
            entities = {c: frame[c].to_numpy() for c in self.spec.entity}
            X = self.model.matrix(frame) if len(frame) else np.empty((0, len(self.model.features)))
            values = self.model.predict_matrix(X) if len(X) else np.array([])
            columns = self._columns(entities, frame["feature_date"].to_numpy(), X, values, return_proba)
        known = set(zip(*(columns[c] for c in self.spec.entity))) if pair else set(columns["user_id"])
        return columns, [k for k in keys if k not in known], pair

    def frame(self, keys: list, feature_date=None, return_proba: bool = True) -> pd.DataFrame:
        """One row per known key: the prediction, its level and decision, model version and feature date.

        ``keys`` are user ids, or (user_id, article_id) pairs for pair models. Unknown keys are left
        out; ``frame.attrs["unknown"]`` lists them and ``frame.attrs["message"]`` says so.
        """
        columns, unknown, pair = self._scored(keys, feature_date, return_proba)
        out = pd.DataFrame(columns)
        out.attrs["unknown"] = unknown
        out.attrs["unknown_users"] = unknown if not pair else sorted({u for u, _ in unknown})
        if unknown:
            shown = ", ".join(":".join(k) if pair else k for k in unknown[:3])
            out.attrs["message"] = f"{len(unknown)} of the requested {'pairs' if pair else 'users'} have no features on that date: {shown}"
        return out

    def records(self, keys: list, feature_date=None, **_) -> tuple[list[dict], list]:
        """As :meth:`frame`, as JSON-ready records (dates as ISO strings), and the unknown keys."""
        columns, unknown, _ = self._scored(keys, feature_date, True)
        return _records(columns), unknown

    def cached_record(self, user_id: str, **_) -> dict | None:
        """One user's record on the latest feature date from the feature cache alone, without touching the
        warehouse; None when anything (the date, the user's row) would need a read."""
        if not isinstance(user_id, str):  # a pair: not cached
            return None
        latest = self.feature_date.cached()
        if self.cache_ttl_s <= 0 or latest is None:
            return None
        now = time.monotonic()
        user_id = as_uuid(user_id)
        hit = self._cache.get((latest, user_id))
        if hit is None or hit[0] < now:
            return None
        value = float(self._predict(hit[2].reshape(1, -1))[0])  # below: _columns + _records for one row, without arrays
        level, decision = _outputs(self.spec, np.array([value]), self.model.threshold)
        record = {"user_id": user_id, "feature_date": hit[1].isoformat(), self.spec.output: value}
        if self.spec.level_column:
            record[self.spec.level_column] = str(level[0])
        if self.spec.decision_column:
            record[self.spec.decision_column] = int(decision[0])
        for column in self.spec.context:
            record[column] = context_values(self.model, hit[2].reshape(1, -1), column)[0]
        if self.spec.score_column:
            record[self.spec.score_column] = int(score_of_probability(np.array([value]))[0])
        if self.spec.drivers:
            record["top_drivers"] = driver_lists(self.model, hit[2].reshape(1, -1), self.spec.drivers)[0]
        record["model_version"] = self.model.version or "unregistered"
        return record


def _records(columns: dict) -> list[dict]:
    """Column arrays to JSON-ready row dicts: numpy scalars to Python, dates to ISO strings."""
    plain = {}
    for name, values in columns.items():
        if isinstance(values, np.ndarray) and values.dtype.kind == "M":
            values = values.astype("datetime64[D]").astype(str)
        values = values.tolist() if isinstance(values, np.ndarray) else list(values)
        plain[name] = [v.isoformat() if isinstance(v, date) else v for v in values]
    return [dict(zip(plain, row)) for row in zip(*plain.values())]
