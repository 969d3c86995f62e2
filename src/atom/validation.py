"""The edge: text no route can store is refused once, here, before routing (422 naming the field).

PostgreSQL text cannot hold U+0000 and UTF-8 cannot hold a lone surrogate, so such a value reaching
a query is a server error on one database and silently different data on the other. Rather than
every route guarding every parameter, `EdgeValidationMiddleware` checks each request as it comes in:

- the path and every query value: no control characters at all (C0, DEL, C1);
- every string (and key) of a JSON body: no U+0000, no lone surrogate, and under `/api` no control
  character other than tab, line feed and carriage return. Webhook payloads (`/hooks`) are another
  system's data: only what cannot be stored is refused there.

The checks cost a regular-expression scan of the raw bytes; a body is decoded a second time only
when the scan finds an escape that may hide such a character. `text_problem` is the rule for one
JSON string, usable for values that arrive another way (a WebSocket message, a file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atom.errors import error_body

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")  # JSON text: tab, LF, CR allowed
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
# In a query string, a control character is either raw or percent-encoded (C1 as UTF-8 %C2%80-%C2%9F).
_QUERY_SUSPECT = re.compile(rb"[\x00-\x1f\x7f]|%(?:[01][0-9a-fA-F]|7[fF]|[cC]2%[89][0-9a-fA-F])")
# In JSON, those characters can only be written as escapes (raw control characters are not JSON).
_JSON_SUSPECT = re.compile(rb"\\(?:u00[01][0-9a-fA-F]|u[dD][89a-fA-F][0-9a-fA-F]{2}|[bf])")
_LENIENT_PREFIXES = ("/hooks/",)
MAX_REPORTED = 10


def text_problem(value: str, *, multiline: bool = True) -> str | None:
    """Why `value` cannot be accepted as text, or None. `multiline` allows tab, LF and CR."""
    match = (_TEXT_CONTROL if multiline else _CONTROL).search(value)
    if match is None:
        match = _UNSTORABLE.search(value)
    if match is None:
        return None
    return _describe(match)


def _describe(match: re.Match[str]) -> str:
    char = match.group()
    what = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"contains {what} (U+{ord(char):04X} at position {match.start()}); such text cannot be accepted"


class EdgeValidationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problems = _path_problems(scope) + _query_problems(scope["query_string"])
        if not problems and scope["type"] == "http" and _has_json_body(scope):
            receive, problems = await _check_json_body(scope, receive)
        if not problems:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "invalid characters in the request"})
            return
        await _send_422(send, problems)


def _path_problems(scope: Scope) -> list[dict[str, str]]:
    path: str = scope["path"]
    match = _CONTROL.search(path) or _UNSTORABLE.search(path)
    if match is None:
        return []
    field = "path"
    for name, value in _path_params(scope):
        in_param = _CONTROL.search(value) or _UNSTORABLE.search(value)
        if in_param is not None:
            field, match = f"path.{name}", in_param
            break
    return [_problem(field, _describe(match))]


def _path_params(scope: Scope) -> Iterator[tuple[str, str]]:
    """The path parameters of the first route the path would reach (computed only for a refused path)."""
    app = scope.get("app")
    routes = getattr(app, "routes", None)
    if routes is None:
        return
    for route in iter_route_contexts(routes):
        regex = getattr(route, "path_regex", None)
        match = regex.match(scope["path"]) if regex is not None else None
        if match is not None:
            yield from match.groupdict().items()
            return


def _query_problems(query_string: bytes) -> list[dict[str, str]]:
    if not query_string or _QUERY_SUSPECT.search(query_string) is None:
        return []
    problems = []
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        for part, prefix in ((name, "its name "), (value, "")):
            match = _CONTROL.search(part) or _UNSTORABLE.search(part)
            if match is not None:
                problems.append(_problem(f"query.{_printable(name)}", prefix + _describe(match)))
                break
    return problems[:MAX_REPORTED]


def _has_json_body(scope: Scope) -> bool:
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return bool(media == b"application/json" or media.endswith(b"+json"))
    return False


async def _check_json_body(scope: Scope, receive: Receive) -> tuple[Receive, list[dict[str, str]]]:
    """Read the whole body (the outer middleware bounds its size), check it, and replay it to the app."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    problems: list[dict[str, str]] = []
    if _JSON_SUSPECT.search(body) is not None:
        try:
            document = json.loads(body)
        except ValueError:
            document = None  # malformed JSON: the route's own parsing reports it
        strict = not str(scope["path"]).startswith(_LENIENT_PREFIXES)
        problems = list(_json_problems(document, "body", strict))[:MAX_REPORTED]
    replay = iter(messages)

    async def replayed() -> Message:
        try:
            return next(replay)
        except StopIteration:
            return await receive()

    return replayed, problems


def _json_problems(value: Any, where: str, strict: bool) -> Iterator[dict[str, str]]:
    def problem(text: str) -> str | None:
        if strict:
            return text_problem(text)
        match = _UNSTORABLE.search(text)
        return _describe(match) if match is not None else None

    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        current, field = stack.pop()
        if isinstance(current, str):
            found = problem(current)
            if found is not None:
                yield _problem(field, found)
        elif isinstance(current, dict):
            for key, child in current.items():
                found = problem(key)
                if found is not None:
                    yield _problem(f"{field}.{_printable(key)}", "its name " + found)
                stack.append((child, f"{field}.{_printable(key)}"))
        elif isinstance(current, list):
            stack.extend((child, f"{field}.{index}") for index, child in enumerate(current))


def _printable(name: str) -> str:
    """A field name fit for the error body: control characters and lone surrogates as escapes."""
    cleaned = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", cleaned)[:100]


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message, "type": "control_character"}


async def _send_422(send: Send, problems: list[dict[str, str]]) -> None:
    shown = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    body = error_body("VALIDATION_ERROR", f"Invalid request: {shown}{more}.", {"fields": problems})
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
