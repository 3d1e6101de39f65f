"""One embedded warehouse, many processes: while ``ownlens-ml serve`` holds the embedded (chDB) warehouse, other
processes reach it through the server, which speaks enough of ClickHouse's HTTP interface at ``/warehouse`` for
clickhouse-connect's own HTTP client (queries with server-side parameters, commands, Native/Arrow results, inserts).

The server writes a hand-off file next to the warehouse (``.ownlens-serve.json``, readable by its user only) with
its address and a random token; :func:`ownlens.ml.warehouse.connect` finds it when the warehouse is locked and
connects through the server instead of failing, so the CLI, cron jobs and notebooks keep working while it runs.
The token, not the API keys, guards this endpoint: it is the whole warehouse, SQL included. Any ClickHouse HTTP
client may use it with the token as its password (dbt-clickhouse, a SQL IDE: host and port of the server, path
/warehouse).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
from urllib.parse import parse_qsl

from ownlens.ml.warehouse import SHARED_PREFIX as PREFIX
from ownlens.ml.warehouse import handoff_path

log = logging.getLogger("ownlens.api")

TOKEN_HEADER = b"x-ownlens-warehouse-token"
# HTTP-interface parameters that are not engine settings
TRANSPORT = frozenset({"query", "database", "query_id", "session_id", "session_timeout", "session_check", "wait_end_of_query",
                       "send_progress_in_http_headers", "http_headers_progress_interval_ms", "enable_http_compression",
                       "client_protocol_version", "default_format", "compress", "decompress", "user", "password", "quota_key",
                       "buffer_size", "http_response_buffer_size", "cancel_http_readonly_queries_on_client_close"})
INSERT_DATA = re.compile(rb"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)[ \t]*(?:\r?\n|$)", re.I | re.S)
TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
CODE = re.compile(r"Code: (\d+)\.")
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def write_handoff(warehouse_path: str, url: str) -> str:
    """Write the hand-off file (mode 0600) and return the token it holds."""
    token = secrets.token_urlsafe(32)
    path = handoff_path(warehouse_path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "token": token, "pid": os.getpid()}, f)
    return token


def remove_handoff(warehouse_path: str, token: str) -> None:
    """Remove the hand-off file if it is still this server's."""
    path = handoff_path(warehouse_path)
    try:
        if json.loads(path.read_text()).get("token") == token:
            path.unlink()
    except (OSError, ValueError):
        pass


class WarehouseProxy:
    """ASGI app: ClickHouse's HTTP interface over this process's embedded engine (one statement at a time)."""

    def __init__(self, warehouse_path: str, token: str):
        import chdb

        self.conn = chdb.connect(os.path.realpath(warehouse_path))
        self.token = token.encode()
        self.lock = threading.Lock()
        self.database: str | None = None
        self.timezone = self.conn.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        if not hmac.compare_digest(_token(headers), self.token):
            return await _respond(send, 401, b"missing or wrong warehouse token: connect with ownlens.ml.warehouse.connect()\n")
        path = scope["path"][len(PREFIX):] if scope["path"].startswith(PREFIX) else scope["path"]
        if path.rstrip("/") == "/ping":
            return await _respond(send, 200, b"Ok.\n")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        from starlette.concurrency import run_in_threadpool

        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        status, extra, payload = await run_in_threadpool(self.execute, params, bytes(body))
        await _respond(send, status, payload, extra)

    def execute(self, params: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        query = params.get("query", "").encode()
        bind = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {k: v for k, v in params.items() if k not in TRANSPORT and not k.startswith("param_")}
        try:
            with self.lock:
                self._use(params.get("database") or None)
                if settings:
                    self._set(settings)
                try:
                    return self._run(query, body, bind, params.get("default_format") or "TabSeparated")
                finally:
                    if settings:
                        self._set({k: None for k in settings})
        except Exception as exc:  # noqa: BLE001 - every engine error goes back to the client, as ClickHouse's would
            message = str(exc).strip() or type(exc).__name__
            code = CODE.search(message)
            return 500, [(b"x-clickhouse-exception-code", (code.group(1) if code else "1000").encode())], message.encode() + b"\n"

    def _use(self, database: str | None) -> None:
        if database and database != self.database:
            self.conn.query("USE {db:Identifier}", "TabSeparated", params={"db": database})
            self.database = database

    def _set(self, settings: dict[str, str | None]) -> None:
        for name, value in settings.items():
            if not SETTING_NAME.match(name):
                raise ValueError(f"Code: 115. DB::Exception: Unknown setting {name!r}")
            if value is None:
                self.conn.query(f"SET {name} = DEFAULT", "TabSeparated")
            else:
                self.conn.query(f"SET {name} = {{v:String}}", "TabSeparated", params={"v": value})

    def _run(self, query: bytes, body: bytes, bind: dict, default_format: str) -> tuple[int, list, bytes]:
        """One statement: the ``query`` parameter with the body as its data (an INSERT) or its continuation, as
        ClickHouse's HTTP interface reads them."""
        if query and INSERT_DATA.match(query):
            insert, text, data = INSERT_DATA.match(query), query, body
        else:
            text = query + b"\n" + body if query and body else (query or body)
            insert = INSERT_DATA.match(text)
            data = text[insert.end():] if insert else b""
        if insert is not None:
            return self._insert(insert.group(1).decode(), insert.group(2).decode(), data, bind)
        explicit = TRAILING_FORMAT.search(text)
        headers = [(b"x-clickhouse-timezone", self.timezone.encode())]
        if explicit or default_format != "TabSeparated":
            fmt = explicit.group(1).decode() if explicit else default_format
            result = self.conn.query(text.decode(), fmt, params=bind)
            return 200, headers + [_summary(result), (b"x-clickhouse-format", fmt.encode())], result.bytes() or b""
        # no format named: with names, so a result set (even an empty one) is told from a statement that has none
        result = self.conn.query(text.decode(), "TabSeparatedWithNames", params=bind)
        payload = result.bytes() or b""
        headers.append(_summary(result))
        if payload:
            headers.append((b"x-clickhouse-format", b"TabSeparated"))
            payload = payload[payload.find(b"\n") + 1:]
        return 200, headers, payload

    def _insert(self, target: str, fmt: str, data: bytes, bind: dict) -> tuple[int, list, bytes]:
        if not data.strip():
            result = self.conn.query(f"{target} FORMAT {fmt}", "TabSeparated", params=bind)
            return 200, [_summary(result)], b""
        with tempfile.NamedTemporaryFile(suffix=f".{fmt.lower()}", delete=False) as tmp:
            tmp.write(data)
        try:
            quoted = tmp.name.replace("\\", "\\\\").replace("'", "\\'")
            result = self.conn.query(f"{target} FROM INFILE '{quoted}' FORMAT {fmt}", "TabSeparated", params=bind)
        finally:
            os.unlink(tmp.name)
        return 200, [_summary(result)], b""


def _token(headers: dict) -> bytes:
    """The token a client sends: our header, or as the password of any ClickHouse HTTP client (X-ClickHouse-Key or
    basic auth), so tools such as dbt-clickhouse or a SQL IDE can use the shared warehouse too."""
    if TOKEN_HEADER in headers:
        return headers[TOKEN_HEADER]
    if b"x-clickhouse-key" in headers:
        return headers[b"x-clickhouse-key"]
    auth = headers.get(b"authorization", b"")
    if auth[:6].lower() == b"basic ":
        import base64
        import binascii

        try:
            return base64.b64decode(auth[6:].strip()).partition(b":")[2]
        except (binascii.Error, ValueError):
            return b""
    return b""


def _summary(result) -> tuple[bytes, bytes]:
    def number(name: str) -> str:
        getter = getattr(result, name, None)
        try:
            return str(int(getter())) if callable(getter) else "0"
        except Exception:  # noqa: BLE001 - a summary is informative only
            return "0"

    return (b"x-clickhouse-summary", json.dumps({"read_rows": number("rows_read"), "read_bytes": number("bytes_read"),
                                                 "written_rows": "0", "written_bytes": "0"}).encode())


async def _respond(send, status: int, payload: bytes, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=UTF-8"), (b"content-length", str(len(payload)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})
