"""What every request passes before the app reads it: the API key, checked before any of the body is read, and the
body's size, enforced while reading (a declared length over the limit is refused unread; an undeclared one is
read only up to the limit). Plain ASGI, so neither costs the hot GET route a task or a stream."""

from __future__ import annotations

import json

from ownlens.ml.serving import deps

# open without a key: probes, metrics and the API's own documentation
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
OPEN_PREFIX = ("/docs-assets/", "/ui/static/")  # the documentation pages' and the console's scripts and styles
CONSOLE = "/ui"
CONSOLE_LOGIN = "/ui/login"
KEY_COOKIE_NAME = "ownlens_api_key"  # the console's sign-in (see serving/console): the key, in place of the header
KEY_COOKIE = f"{KEY_COOKIE_NAME}=".encode()
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def _refuse(send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _cookie_key(scope) -> bytes | None:
    """The API key a console page sends in its sign-in cookie."""
    cookies = _header(scope, b"cookie")
    for part in (cookies or b"").split(b";"):
        part = part.strip()
        if part.startswith(KEY_COOKIE):
            from urllib.parse import unquote_to_bytes

            return unquote_to_bytes(part[len(KEY_COOKIE):].strip(b'"'))
    return None


async def _to_login(scope, send) -> None:
    from urllib.parse import quote

    target = f"{CONSOLE_LOGIN}?next={quote(scope['path'])}".encode()
    await send({"type": "http.response.start", "status": 303, "headers": [(b"location", target), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


class Guard:
    """ASGI middleware: 401 before the body for a missing or unknown key (when keys are configured), 413 for a
    body over ``max_body_bytes``."""

    def __init__(self, app, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path not in OPEN_PATHS and path != CONSOLE_LOGIN and not path.startswith(OPEN_PREFIX):
            from starlette.requests import Request

            keys = deps.resolved(Request(scope), deps.settings).api_key_set
            if keys:
                given = _header(scope, b"x-api-key")
                console = path == CONSOLE or path.startswith(CONSOLE + "/")
                if given is None and console:
                    given = _cookie_key(scope)
                if given is None or given.decode("latin-1") not in keys:
                    if console and scope["method"] == "GET":
                        return await _to_login(scope, send)
                    return await _refuse(send, 401, "Unauthorized", "missing or unknown API key: send it in the X-API-Key header")
        limit = self.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _refuse(send, 422, "InvalidInput", "the Content-Length header is not a number")
            if int(declared) > limit:
                return await _refuse(send, 413, "TooLarge", f"the request body is {int(declared):,} bytes; the limit is {limit:,}")
        if scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)  # a body the routes never read is never read here either
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _refuse(send, 413, "TooLarge", f"the request body is over the limit of {limit:,} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        return await self.app(scope, replay, send)
