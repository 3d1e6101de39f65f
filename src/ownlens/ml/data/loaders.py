"""Loaders that read OwnLens tables into pandas, with filters bound as query parameters.

Examples
--------
>>> from ownlens.ml.data.loaders import UserFeaturesLoader
>>> features = UserFeaturesLoader().load(brand_id="DCH", include_references=True, limit=1000)  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.warehouse import connect

MAX_ROWS_PER_BATCH = 200_000

RELOAD_DICTIONARY = "SYSTEM RELOAD DICTIONARY {name:Identifier}"
BRAND = """
SELECT toString(brand_id) FROM brands
WHERE toString(brand_id) = {b:String} OR lower(brand_code) = lower({b:String}) OR lower(brand_name) = lower({b:String}) LIMIT 1
"""
BRANDS = "SELECT brand_code, brand_name FROM brands ORDER BY brand_code"
LATEST_FEATURE_DATE = "SELECT max(feature_date), count() FROM customer_user_features"
FEATURE_ROWS = "SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}"
BRAND_OF = "({brand:Nullable(UUID)} IS NULL OR brand_id = {brand:Nullable(UUID)})"
ARTICLES = f"""
SELECT * FROM editorial_articles FINAL WHERE publish_timestamp < {{before:Date}} AND {BRAND_OF}
ORDER BY publish_timestamp DESC LIMIT {{limit:UInt64}}
"""
AUTHORS = "SELECT * FROM editorial_authors FINAL ORDER BY author_name"
# per table: the date's rows (of a brand), the most read first
PERFORMANCE = f"""
SELECT * FROM {{table:Identifier}} WHERE performance_date = {{d:Date}} AND {BRAND_OF} ORDER BY {{order:Identifier}} DESC
"""
REFERENCE_ROWS = "SELECT * FROM {table:Identifier} FINAL"

REFERENCE_DICTIONARIES = [
    "dict_brands", "dict_device_types", "dict_operating_systems", "dict_browsers",
    "dict_countries", "dict_cities", "dict_categories",
]

# seed 002's reference join, done with dictionaries over the reference tables (no per-query hash joins)
REFERENCE_COLUMNS = """
    dictGetOrNull('dict_brands', 'brand_name', uf.brand_id) AS brand_name,
    dictGetOrNull('dict_brands', 'brand_code', uf.brand_id) AS brand_code,
    dictGetOrNull('dict_brands', 'brand_name', uf.preferred_brand_id) AS preferred_brand_name,
    dictGetOrNull('dict_device_types', 'device_type_name', uf.preferred_device_type_id) AS device_type_name,
    dictGetOrNull('dict_operating_systems', 'os_name', uf.preferred_os_id) AS os_name,
    dictGetOrNull('dict_browsers', 'browser_name', uf.preferred_browser_id) AS browser_name,
    dictGetOrNull('dict_countries', 'country_name', uf.primary_country_code) AS country_name,
    dictGetOrNull('dict_cities', 'city_name', uf.primary_city_id) AS city_name,
    if(uf.preferred_category_id IS NULL, NULL,
       dictGetOrNull('dict_categories', 'category_name', assumeNotNull(uf.preferred_category_id))) AS preferred_category_name
"""


def reload_reference_dictionaries(client: Client) -> None:
    """Make the reference look-ups see rows just written to the reference tables."""
    for name in REFERENCE_DICTIONARIES:
        client.command(RELOAD_DICTIONARY, parameters={"name": name})


CONTENT_FEATURES = """
SELECT
    ece.user_id AS user_id,
    uniqExactIf(ece.article_id, ece.event_type = 'article_view') AS articles_viewed_30d,
    ifNotFinite(avgIf(eap.engagement_score, ece.event_type = 'article_view'), 0) AS avg_article_engagement,
    sumIf(eap.total_views, ece.event_type = 'article_view') AS total_article_views_of_read,
    uniqExactIf(ece.author_id, ece.event_type = 'article_view') AS unique_authors_followed,
    uniqExactIf(ece.category_id, ece.event_type = 'article_view') AS categories_engaged
FROM editorial_content_events AS ece
LEFT JOIN editorial_article_performance AS eap
    ON eap.article_id = ece.article_id AND eap.performance_date = {d:Date}
WHERE ece.event_timestamp >= {d:Date} - 30 AND ece.event_timestamp < {d:Date}
  AND ece.user_id IN (SELECT user_id FROM customer_user_features WHERE feature_date = {d:Date}
                      AND ({user_id:Nullable(UUID)} IS NULL OR user_id = {user_id:Nullable(UUID)}))
GROUP BY ece.user_id
"""


_ARROW_STRINGS = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}


def query_frame(client: Client, sql: str, parameters: dict | None = None) -> pd.DataFrame:
    """Run ``sql`` into a DataFrame: ids (UUID) become text, strings stay Arrow-backed, numbers numpy."""
    table = client.query_arrow(sql, parameters=parameters or {})
    columns = [_text_ids(field.type, col) for field, col in zip(table.schema, table.columns)]
    return pa.table(columns, names=table.column_names).to_pandas(types_mapper=_ARROW_STRINGS.get)


def _text_ids(type_: pa.DataType, column):
    if _is_uuid(type_):
        return _uuid_text(column)
    if pa.types.is_list(type_) and _is_uuid(type_.value_type):
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        return pa.ListArray.from_arrays(arr.offsets, _uuid_text(arr.values), mask=arr.is_null() if arr.null_count else None)
    return column


def _is_uuid(type_: pa.DataType) -> bool:
    return getattr(type_, "extension_name", None) == "arrow.uuid" or (pa.types.is_fixed_size_binary(type_) and type_.byte_width == 16)


def _uuid_text(column) -> pa.Array:
    """A UUID column as canonical 36-character text, vectorised through numpy."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    storage = arr.storage if isinstance(arr, pa.ExtensionArray) else arr
    n = len(storage)
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)[storage.offset * 16:(storage.offset + n) * 16]
    chars = np.frombuffer(raw.tobytes().hex().encode(), dtype="S1").reshape(n, 32)
    dash = np.full((n, 1), b"-", dtype="S1")
    text = np.concatenate([chars[:, :8], dash, chars[:, 8:12], dash, chars[:, 12:16], dash, chars[:, 16:20], dash, chars[:, 20:]], 1)
    offsets = pa.array(np.arange(0, 36 * n + 1, 36, dtype=np.int32))
    values = pa.py_buffer(np.ascontiguousarray(text).tobytes())
    validity = storage.buffers()[0] if storage.null_count else None
    return pa.StringArray.from_buffers(n, offsets.buffers()[1], values, validity, storage.null_count, storage.offset if validity else 0)


def _client(client: Client | None) -> Client:
    return client if client is not None else connect()


FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2149, 6, 6)  # ClickHouse's Date range


def as_date(value, name: str = "date") -> date:
    """A date from a date, datetime or YYYY-MM-DD text within the warehouse's Date range; InvalidInput naming
    ``name`` otherwise (a date outside it would silently become 1970-01-01 or 2149-06-06 in ClickHouse)."""
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        text = str(value)
        try:
            if not (len(text) == 10 and text[4] == text[7] == "-"):  # fromisoformat also takes 20260201, 2026-W05...
                raise ValueError(text)
            value = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"{name} {value!r} is not a date: use YYYY-MM-DD, e.g. 2026-02-01") from None
    if not FIRST_DATE <= value <= LAST_DATE:
        raise InvalidInput(f"{name} {value} is outside the warehouse's dates ({FIRST_DATE} to {LAST_DATE})")
    return value


def resolve_brand(client: Client, brand: str | None) -> str | None:
    """A brand id for a brand id, code or name (case-insensitive); None stays None."""
    if brand is None:
        return None
    brand = str(brand)
    rows = client.query(BRAND, parameters={"b": brand}).result_rows
    if not rows:
        known = client.query(BRANDS).result_rows
        listing = ", ".join(f"{code} ({name})" for code, name in known) or "none: the brands table is empty"
        raise NotFound(f"unknown brand {brand!r}: use a brand id or code; known brands: {listing}")
    return rows[0][0]


def brand_ids(client: Client, brand: str | None = None) -> list[str]:
    """``[the id of brand]`` (an id, code or name), or every brand's id when ``brand`` is None."""
    if brand is not None:
        return [resolve_brand(client, brand)]
    return [r[0] for r in client.query("SELECT DISTINCT toString(brand_id) FROM brands ORDER BY 1").result_rows]


def latest_feature_date(client: Client) -> date:
    latest, n = client.query(LATEST_FEATURE_DATE).result_rows[0]
    if not n:
        raise NotFound("customer_user_features is empty: run `ownlens-ml features build --date YYYY-MM-DD` first")
    return latest


class UserFeaturesLoader:
    """Pre-computed user features from customer_user_features (the primary source for training)."""

    def __init__(self, client: Client | None = None):
        self.client = _client(client)

    def load(
        self,
        feature_date: date | str | None = None,
        brand_id: str | None = None,
        include_references: bool = False,
        limit: int | None = None,
        user_ids: list[str] | None = None,
    ) -> pd.DataFrame:
        """Features of one date (default: the latest built), optionally for one brand or some users.

        ``include_references`` adds human-readable names (brand, device, OS, browser, country,
        city, category). Rows come in the table's order (brand, user), which ClickHouse reads
        without sorting, so ``limit`` returns the same users every time.
        """
        d = self._date(feature_date)
        params, where = self._filters(d, brand_id, user_ids, limit)
        columns = f"uf.*, {REFERENCE_COLUMNS}" if include_references else "uf.*"
        sql = (f"SELECT {columns} FROM customer_user_features AS uf WHERE {where} "
               "ORDER BY uf.brand_id, uf.user_id" + (" LIMIT {limit:UInt64}" if limit else ""))
        frame = query_frame(self.client, sql, params)
        if frame.empty:
            self._require_date(d)
        return frame

    def load_with_references(self, feature_date=None, brand_id=None, limit=None) -> pd.DataFrame:
        return self.load(feature_date, brand_id, include_references=True, limit=limit)

    def load_with_content(self, user_id: str | None = None, feature_date=None, brand_id=None, limit=None) -> pd.DataFrame:
        """Features joined with content engagement from editorial tables over the 30 days before the date."""
        d = self._date(feature_date)
        features = self.load(d, brand_id, include_references=True, limit=limit, user_ids=[user_id] if user_id else None)
        content = query_frame(self.client, CONTENT_FEATURES, {"d": d, "user_id": as_uuid(user_id) if user_id else None})
        out = features.merge(content, on="user_id", how="left")
        fill = [c for c in content.columns if c != "user_id"]
        out[fill] = out[fill].fillna(0)
        return out

    def _date(self, feature_date) -> date:
        return latest_feature_date(self.client) if feature_date is None else as_date(feature_date, "feature_date")

    def _filters(self, d, brand_id, user_ids, limit):
        params = {"d": d}
        where = ["uf.feature_date = {d:Date}"]
        brand = resolve_brand(self.client, brand_id)
        if brand:
            params["brand"] = brand
            where.append("uf.brand_id = {brand:UUID}")
        if user_ids:
            params["users"] = [as_uuid(u) for u in user_ids]
            where.append("uf.user_id IN {users:Array(UUID)}")
        if limit is not None:
            if int(limit) < 1:
                raise InvalidInput(f"limit must be a positive number of rows (got {limit})")
            params["limit"] = int(limit)
        return params, " AND ".join(where)

    def _require_date(self, d: date) -> None:
        n = int(self.client.command(FEATURE_ROWS, parameters={"d": d}))
        if n == 0:
            raise NotFound(f"no features for {d}: run `ownlens-ml features build --date {d}`")


def as_uuid(value) -> str:
    import uuid

    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidInput(f"{value!r} is not a valid id: ids are UUIDs like 3f2b8c1e-...") from None


class _RangeLoader:
    """Rows of one time-stamped table in a date range, as a frame or in bounded batches."""

    table: str
    time_column: str
    order: str

    def __init__(self, client: Client | None = None):
        self.client = _client(client)

    def _query(self, start, end, brand_id, user_id, extra_where="", extra_params=None):
        params = {"start": as_date(start, "start"), "end": as_date(end, "end")}
        if params["end"] < params["start"]:
            raise InvalidInput(f"end ({params['end']}) is before start ({params['start']})")
        where = [f"{self.time_column} >= {{start:Date}}", f"{self.time_column} < {{end:Date}} + 1"]
        brand = resolve_brand(self.client, brand_id)
        if brand:
            params["brand"] = brand
            where.append("brand_id = {brand:UUID}")
        if user_id:
            params["user"] = as_uuid(user_id)
            where.append("user_id = {user:UUID}")
        if extra_where:
            where.append(extra_where)
        params.update(extra_params or {})
        return f"SELECT * FROM {self.table} WHERE {' AND '.join(where)} ORDER BY {self.order}", params

    def load(self, start, end, brand_id=None, user_id=None, limit: int = MAX_ROWS_PER_BATCH, **kw) -> pd.DataFrame:
        """Rows from ``start`` to ``end`` inclusive, at most ``limit`` of them."""
        sql, params = self._query(start, end, brand_id, user_id, **kw)
        return query_frame(self.client, sql + " LIMIT {limit:UInt64}", {**params, "limit": int(limit)})

    def iter_batches(self, start, end, brand_id=None, user_id=None, batch_rows: int = MAX_ROWS_PER_BATCH, **kw) -> Iterator[pd.DataFrame]:
        """The same rows streamed as DataFrames of at most ``batch_rows`` rows (bounded memory)."""
        sql, params = self._query(start, end, brand_id, user_id, **kw)
        with self.client.query_df_stream(sql, parameters=params, settings={"max_block_size": batch_rows}) as stream:
            yield from stream


class SessionLoader(_RangeLoader):
    """customer_sessions, by session start."""

    table, time_column, order = "customer_sessions", "session_start", "session_start"


class EventLoader(_RangeLoader):
    """customer_events, by event time; ``event_types`` narrows to some kinds."""

    table, time_column, order = "customer_events", "event_timestamp", "event_timestamp"

    def _query(self, start, end, brand_id, user_id, event_types: list[str] | None = None, **_):
        if event_types:
            return super()._query(start, end, brand_id, user_id, "event_type IN {types:Array(String)}", {"types": list(event_types)})
        return super()._query(start, end, brand_id, user_id)


class ContentEventLoader(_RangeLoader):
    """editorial_content_events, by event time."""

    table, time_column, order = "editorial_content_events", "event_timestamp", "event_timestamp"


class EditorialLoader:
    """Articles, authors and the editorial performance tables."""

    def __init__(self, client: Client | None = None):
        self.client = _client(client)

    def articles(self, brand_id=None, published_before=None, limit: int = MAX_ROWS_PER_BATCH) -> pd.DataFrame:
        params = {"limit": int(limit), "before": as_date(published_before, "published_before") if published_before else date(2262, 1, 1),
                  "brand": resolve_brand(self.client, brand_id)}
        return query_frame(self.client, ARTICLES, params)

    def authors(self) -> pd.DataFrame:
        return query_frame(self.client, AUTHORS)

    def article_performance(self, performance_date, brand_id=None) -> pd.DataFrame:
        return self._performance("editorial_article_performance", performance_date, brand_id, "views_7d")

    def author_performance(self, performance_date, brand_id=None) -> pd.DataFrame:
        return self._performance("editorial_author_performance", performance_date, brand_id, "total_views_30d")

    def category_performance(self, performance_date, brand_id=None) -> pd.DataFrame:
        return self._performance("editorial_category_performance", performance_date, brand_id, "total_views_30d")

    def _performance(self, table, performance_date, brand_id, order) -> pd.DataFrame:
        params = {"d": as_date(performance_date, "performance_date"), "brand": resolve_brand(self.client, brand_id),
                  "table": table, "order": order}
        frame = query_frame(self.client, PERFORMANCE, params)
        if frame.empty:
            raise NotFound(f"{table} has no rows for {params['d']}: run `ownlens-ml features build --date {params['d']}`")
        return frame


REFERENCE_TABLES = ("companies", "brands", "countries", "cities", "categories", "device_types", "operating_systems", "browsers")


class ReferenceLoader:
    """The small reference tables (brands, countries, devices...)."""

    def __init__(self, client: Client | None = None):
        self.client = _client(client)

    def load(self, table: str) -> pd.DataFrame:
        if table not in REFERENCE_TABLES:
            raise InvalidInput(f"unknown reference table {table!r}: choose one of {', '.join(REFERENCE_TABLES)}")
        return query_frame(self.client, REFERENCE_ROWS, {"table": table})
