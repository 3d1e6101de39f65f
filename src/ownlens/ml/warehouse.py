"""The one place that opens a warehouse client for a DSN and writes whole partitions atomically."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import clickhouse_connect
import numpy as np
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError

from ownlens.ml.errors import InvalidInput, NotFound, OwnLensError, SchemaMissing, WarehouseUnavailable
from ownlens.ml.settings import get_settings

log = logging.getLogger(__name__)

SCHEMES = ("chdb", "http", "https", "clickhouse", "clickhouses")

if TYPE_CHECKING:  # annotations only; imported lazily where used
    import pyarrow as pa


def resolve_dsn(dsn: str | None = None) -> str:
    """The DSN to use: the argument, else ``OWNLENS_DSN``, else the embedded default under ``OWNLENS_HOME``."""
    settings = get_settings()
    return dsn or settings.dsn or settings.default_dsn


def describe_dsn(dsn: str) -> str:
    """The DSN with any password masked, for messages and logs."""
    parsed = urlparse(dsn)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return urlunparse(parsed._replace(netloc=netloc))
    return dsn


def connect(dsn: str | None = None) -> Client:
    """Open a clickhouse-connect client for ``dsn`` (see :func:`resolve_dsn`).

    ``chdb:///abs/path[?database=name]`` opens the embedded engine (one process per directory);
    ``http(s)://user:pass@host:port/db`` a ClickHouse server. A missing database is created.

    Examples
    --------
    >>> client = connect("chdb:///tmp/ownlens-doc/warehouse")  # doctest: +SKIP
    >>> client.command("SELECT 1")  # doctest: +SKIP
    1
    """
    dsn = resolve_dsn(dsn)
    parsed = urlparse(dsn)
    if parsed.scheme not in SCHEMES:
        raise InvalidInput(
            f"unsupported DSN {describe_dsn(dsn)!r}: use chdb:///abs/path for the embedded warehouse "
            "or http://user:pass@host:8123/db for a ClickHouse server"
        )
    if parsed.scheme == "chdb":
        return _connect_embedded(parsed)
    timeout = get_settings().warehouse_timeout_s  # long queries stay alive: the server sends progress headers meanwhile
    try:
        client = clickhouse_connect.get_client(dsn=dsn, connect_timeout=min(timeout, 10), send_receive_timeout=timeout)
    except (OperationalError, DatabaseError, OSError) as exc:
        if any(t in str(exc) for t in TIMED_OUT):
            reason = f"it accepted the connection but did not answer within {timeout:g} s (OWNLENS_WAREHOUSE_TIMEOUT_S)"
        else:
            reason = "connection refused" if "Connection refused" in str(exc) else _first_line(exc)[:200]
        raise WarehouseUnavailable(f"cannot reach the ClickHouse server at {describe_dsn(dsn)}: {reason}") from exc
    return client


def _connect_embedded(parsed) -> Client:
    path = parsed.path if not parsed.netloc else None
    if not path or not path.startswith("/"):
        raise InvalidInput(f"embedded DSN needs an absolute path, like chdb:///home/me/.ownlens/warehouse (got {urlunparse(parsed)!r})")
    database = parse_qs(parsed.query).get("database", [None])[0]
    if importlib.util.find_spec("chdb") is None:  # a server install (no `embedded` extra): a running serve may hold it
        shared = _through_server(path, database)
        if shared is not None:
            return shared
        raise InvalidInput("the embedded warehouse needs chDB, which this install does not have: pip install "
                           "'ownlens[embedded]', or set OWNLENS_DSN=http://user:pass@host:8123/db for a ClickHouse server")
    problem = _unusable(path)
    if problem:
        raise InvalidInput(f"the embedded warehouse path {path[:120]}{'...' if len(path) > 120 else ''} {problem}: "
                           "choose a directory with OWNLENS_HOME or OWNLENS_DSN=chdb:///abs/dir")
    try:
        with _quiet_native_stderr():  # chDB prints its lock error itself before raising
            client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    except ClickHouseError as exc:
        text = str(exc)
        if "already initialized with path" in text:
            raise WarehouseUnavailable(
                f"this process already has another embedded warehouse open; one process can open one chDB directory (wanted {path})"
            ) from exc
        shared = _through_server(path, database)
        if shared is not None:
            return shared
        raise WarehouseUnavailable(
            f"the embedded warehouse at {path} is in use by another process (only one process may open it): "
            "stop that process, or run `ownlens-ml serve` as the one that holds it (other commands then go through it), "
            "or point OWNLENS_DSN at a ClickHouse server to share one warehouse"
        ) from exc
    if database:
        client.command("CREATE DATABASE IF NOT EXISTS {db:Identifier}", parameters={"db": database})
        client.database = database
    return client


SHARED_PREFIX = "/warehouse"  # where `ownlens-ml serve` shares the embedded warehouse it holds
HANDOFF = ".ownlens-serve.json"  # next to the warehouse: that server's address, process and token (mode 0600)


def handoff_path(warehouse_path: str) -> Path:
    return Path(warehouse_path) / HANDOFF


def read_handoff(warehouse_path: str) -> dict | None:
    """The address and token of the server holding the warehouse, if its hand-off file is there and it is alive."""
    try:
        found = json.loads(handoff_path(warehouse_path).read_text())
        os.kill(int(found["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found


def _through_server(path: str, database: str | None) -> Client | None:
    """A client that reaches the embedded warehouse at ``path`` through the ``ownlens-ml serve`` holding it (its
    hand-off file names its address and token), or None when no live server does."""
    found = read_handoff(path)
    if found is None:
        return None
    url = urlparse(found["url"])
    try:
        client = clickhouse_connect.get_client(host=url.hostname, port=url.port, interface=url.scheme, proxy_path=SHARED_PREFIX,
                                               database=database or "default", compress=False, autogenerate_session_id=False,
                                               headers={"X-OwnLens-Warehouse-Token": found["token"]},
                                               send_receive_timeout=max(get_settings().warehouse_timeout_s, 600))
    except (OperationalError, DatabaseError, OSError) as exc:
        raise WarehouseUnavailable(f"the embedded warehouse at {path} is held by `ownlens-ml serve` at {found['url']}, "
                                   f"which did not answer: {_first_line(exc)[:200]}") from exc
    if database:
        client.command("CREATE DATABASE IF NOT EXISTS {db:Identifier}", parameters={"db": database})
    log.info("using the embedded warehouse through the server holding it", extra={"fields": {"server": found["url"]}})
    return client


def _unusable(path: str) -> str | None:
    """Why the embedded engine could not use the directory ``path`` (created if missing), or None: checked here
    because chDB reports any such failure as an unnamed initialisation error."""
    if any(len(part.encode()) > 255 for part in path.split("/")):
        return "has a name longer than 255 bytes"
    if len(path.encode()) > 4000:
        return "is longer than 4000 bytes"
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        return "is a file, not a directory"
    except NotADirectoryError:
        return "goes through a file, not a directory"
    except OSError as exc:
        return f"cannot be created ({exc.strerror.lower() if exc.strerror else exc})"
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return "is not readable and writable by this user"
    return None


@contextmanager
def _quiet_native_stderr():
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def embedded_dsn(path: str, database: str | None = None) -> str:
    """A chdb DSN for ``path`` (and optionally a database inside it)."""
    query = urlencode({"database": database}) if database else ""
    return f"chdb://{path}" + (f"?{query}" if query else "")


# ClickHouse's codes for a table or database that does not exist (UNKNOWN_TABLE, UNKNOWN_DATABASE)
MISSING_OBJECT = re.compile(r"Code: (60|81)\.")
MISSING_NAME = re.compile(r"identifier '([\w.]+)'|[Tt]able `?([\w.]+)`? does(?:n't| not) exist|[Dd]atabase `?([\w.]+)`? does")
TIMED_OUT = ("timed out", "Read timed out", "ReadTimeout")


def as_ownlens_error(exc: BaseException) -> OwnLensError | None:
    """The OwnLens error a warehouse exception means (None for any other exception): a missing table is a schema
    that was never created (exit 5), a timeout or a refused connection an unavailable warehouse (exit 4), any other
    error the warehouse's first line (exit 4). The CLI, the API and the worker all translate through here."""
    if isinstance(exc, OwnLensError):
        return exc
    if not type(exc).__module__.startswith("clickhouse_connect"):
        return None
    text = _first_line(exc)
    if MISSING_OBJECT.search(str(exc)):
        name = MISSING_NAME.search(text)
        what = "not the OwnLens tables"
        if name:
            kind, found = ("database", name.group(3)) if name.group(3) else ("table", name.group(1) or name.group(2))
            what = f"no {kind} {found.split('.')[-1]}"
        return SchemaMissing(f"the warehouse has {what}: run `ownlens-ml init` to create the OwnLens tables "
                             "(or check that OWNLENS_DSN names the right database)")
    if any(t in str(exc) for t in TIMED_OUT):
        return WarehouseUnavailable(f"the warehouse did not answer within {get_settings().warehouse_timeout_s:g} s: check that it "
                                    "is up, or raise OWNLENS_WAREHOUSE_TIMEOUT_S")
    return WarehouseUnavailable(f"warehouse error: {text[:300]}")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def identifier(name: str) -> str:
    """``name`` if it is a plain table name; statements where ClickHouse takes no ``{name:Identifier}`` parameter
    (``CREATE TABLE ... AS``, ``REPLACE PARTITION ... FROM``) write table names into the text, so only these pass."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise InvalidInput(f"{name!r} is not a table name: use letters, digits and underscores")
    return name


# Scratch tables (staging copies, raw scores) carry this prefix. A killed step leaves its scratch tables behind; the
# first scratch table a process makes sweeps away those no live step owns: on the embedded warehouse (one process)
# every one this process did not make, on a server those older than a day (another process may be using newer ones).
SCRATCH_PREFIX = "_ownlens_tmp_"
OLDER_PREFIXES = ("_staging_", "_pred_raw_", "_pred_domain_", "_pred_all_", "_segments_", "_recs_", "_ads_", "_sim_events_staging")
STALE_ON_A_SERVER_S = 24 * 3600
LEFTOVERS = """
SELECT name FROM system.tables
WHERE database = currentDatabase() AND multiSearchAny(name, {prefixes:Array(String)}) AND match(name, '^_')
  AND metadata_modification_time <= now() - {age:UInt32}
"""
_live_scratch: set[str] = set()
_swept: set[tuple[int, str]] = set()


def is_embedded(client: Client) -> bool:
    return type(client).__name__ == "ChdbClient"


def sweep_scratch(client: Client) -> list[str]:
    """Drop the scratch tables that killed steps left behind (see SCRATCH_PREFIX); returns their names."""
    age = 0 if is_embedded(client) else STALE_ON_A_SERVER_S
    found = [n for (n,) in client.query(LEFTOVERS, parameters={"prefixes": [SCRATCH_PREFIX, *OLDER_PREFIXES], "age": age}).result_rows
             if n not in _live_scratch and n.startswith((SCRATCH_PREFIX, *OLDER_PREFIXES))]
    for name in found:
        client.command("DROP TABLE IF EXISTS {t:Identifier}", parameters={"t": name})
    if found:
        log.info("dropped %d scratch table(s) left by an interrupted step", len(found), extra={"fields": {"tables": found[:20]}})
    return found


def scratch_table(client: Client, kind: str) -> str:
    """A new scratch table name of this process (``kind`` says what for); drop it with :func:`drop_scratch`."""
    key = (id(client), str(client.database))
    if key not in _swept:
        _swept.add(key)
        sweep_scratch(client)
    name = f"{SCRATCH_PREFIX}{identifier(kind)}_{uuid.uuid4().hex[:12]}"
    _live_scratch.add(name)
    return name


def drop_scratch(client: Client, *names: str) -> None:
    for name in names:
        client.command("DROP TABLE IF EXISTS {t:Identifier}", parameters={"t": name})
        _live_scratch.discard(name)


def replace_partition(
    client: Client, table: str, partition: object, select_sql: str | None = None, parameters: dict | None = None,
    *, rows: "pa.Table | None" = None, partition_type: str | tuple[str, ...] = "Date", keep: str | None = None,
) -> int:
    """Write ``select_sql`` (or Arrow ``rows``) into a staging copy of ``table``, then swap it in as one partition.

    Atomic from a reader's view: either the old rows or the new ones, never a mix, and a failed
    query leaves the table untouched. Returns the number of rows written; raises :class:`NotFound`
    when there is nothing to write (the old partition is then kept). A tuple ``partition``
    (with a tuple of ``partition_type``) names a partition of a table partitioned by a tuple. ``keep``, a
    WHERE condition over ``table`` (with ``parameters``), carries those existing rows into the new partition
    (e.g. the other brands' rows when one brand is rewritten).
    """
    identifier(table)
    if isinstance(partition, tuple):
        partition_sql = "tuple(" + ", ".join(f"{{p{i}:{t}}}" for i, t in enumerate(partition_type)) + ")"
        partition_params = {f"p{i}": v for i, v in enumerate(partition)}
    else:
        partition_sql, partition_params = f"{{p:{partition_type}}}", {"p": partition}
    staging = scratch_table(client, table)
    client.command(f"CREATE TABLE {staging} AS {table}")
    try:
        if rows is not None:
            client.insert_arrow(staging, rows)
        else:
            client.command(f"INSERT INTO {staging} {select_sql}", parameters=parameters or {})
        written = int(client.command(f"SELECT count() FROM {staging}"))
        if keep:
            client.command(f"INSERT INTO {staging} SELECT * FROM {table} WHERE {keep}", parameters=parameters or {})
        if written == 0:
            raise NotFound(f"no rows to write to {table} for {partition}: is there data before that date?")
        client.command(
            f"ALTER TABLE {table} REPLACE PARTITION {partition_sql} FROM {staging}", parameters=partition_params
        )
        return written
    finally:
        drop_scratch(client, staging)


RELOAD_DICTIONARY = "SYSTEM RELOAD DICTIONARY {name:Identifier}"
DICTIONARY_STATUS = "SELECT toString(status) FROM system.dictionaries WHERE database = currentDatabase() AND name = {n:String}"


def reload_if_loaded(client: Client, dictionary: str) -> None:
    """Reload ``dictionary`` now if this process has it loaded (LOADED, or LOADED_AND_RELOADING on its own
    schedule, which may predate the write), so no lookup sees stale rows, not even until its next refresh."""
    status = client.query(DICTIONARY_STATUS, parameters={"n": dictionary}).result_rows
    if status and status[0][0].startswith("LOADED"):
        client.command(RELOAD_DICTIONARY, parameters={"name": dictionary})


def table_exists(client: Client, table: str) -> bool:
    return bool(
        int(client.command(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
            parameters={"t": table},
        ))
    )


# ClickHouse's Native format for fixed-width columns: the bytes are the arrays, so reading and writing
# half a million rows costs a few copies instead of per-value conversion (Arrow or Python objects).
_NATIVE_TYPES = {
    "UUID": "V16", "Float64": "<f8", "Float32": "<f4", "UInt8": "u1", "UInt16": "<u2", "UInt32": "<u4",
    "UInt64": "<u8", "Int8": "i1", "Int16": "<i2", "Int32": "<i4", "Int64": "<i8", "Date": "<u2",
}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _read_string(data: bytes, pos: int) -> tuple[str, int]:
    size, pos = _read_varint(data, pos)
    return data[pos:pos + size].decode(), pos + size


def _native_dtype(type_name: str, column: str):
    if type_name not in _NATIVE_TYPES:
        raise InvalidInput(f"column {column} has type {type_name}: the fast reader takes numbers, UUIDs and Array(Float64) only")
    return np.dtype(_NATIVE_TYPES[type_name])


def query_columns(client: Client, sql: str, parameters: dict | None = None) -> dict[str, "np.ndarray"]:
    """The columns of ``sql`` as numpy arrays, read from the Native format without per-value work.

    Fixed-width types only: numbers, UUIDs (16-byte ``V16`` values, ClickHouse's own layout, fit to be
    written back with :func:`insert_columns`) and ``Array(Float64)`` of one length per row, returned as a
    rows x length matrix (row-major, ready for a model). An empty result gives an empty dict.
    """
    data = client.raw_query(sql, parameters=parameters, fmt="Native")
    parts: dict[str, list] = {}
    pos = 0
    while pos < len(data):
        columns, pos = _read_varint(data, pos)
        rows, pos = _read_varint(data, pos)
        for _ in range(columns):
            name, pos = _read_string(data, pos)
            type_name, pos = _read_string(data, pos)
            if type_name.startswith("Array("):
                inner = _native_dtype(type_name[6:-1], name)
                offsets = np.frombuffer(data, "<u8", rows, pos)
                pos += 8 * rows
                total = int(offsets[-1]) if rows else 0
                width = total // rows if rows else 0
                if rows and (total != width * rows or offsets[0] != width):
                    raise InvalidInput(f"column {name}: arrays of different lengths cannot form a matrix")
                column = np.frombuffer(data, inner, total, pos).reshape(rows, width)
                pos += total * inner.itemsize
            else:
                dtype = _native_dtype(type_name, name)
                column = np.frombuffer(data, dtype, rows, pos)
                pos += rows * dtype.itemsize
            parts.setdefault(name, []).append(column)
    return {name: chunks[0] if len(chunks) == 1 else np.concatenate(chunks) for name, chunks in parts.items()}


def insert_columns(client: Client, table: str, columns: dict[str, tuple[str, "np.ndarray"]]) -> int:
    """Insert numpy ``columns`` ({name: (ClickHouse type, array)}) into ``table`` as one Native block.

    The counterpart of :func:`query_columns`, for the same fixed-width types (not arrays). Returns the rows written.
    """
    rows = {len(values) for _, values in columns.values()}
    if len(rows) != 1:
        raise InvalidInput(f"columns of different lengths for {table}: {sorted(rows)}")
    (count,) = rows
    block = [_varint(len(columns)), _varint(count)]
    for name, (type_name, values) in columns.items():
        dtype = _native_dtype(type_name, name)
        block += [_varint(len(name.encode())), name.encode(), _varint(len(type_name)), type_name.encode(),
                  np.ascontiguousarray(values, dtype=dtype).tobytes()]
    client.raw_insert(table, list(columns), insert_block=b"".join(block), fmt="Native")
    return count
