"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on every request).

Per request: an id (accepted from `X-Request-ID` when well-formed, else generated) bound into
every log line and returned in the response; Prometheus counters and latency by route
template; the request body size limit (413, whether declared by Content-Length or found while
streaming); and the last-resort 500 for an unexpected exception (logged with its traceback,
answered with the standard error body and the request id, never the traceback).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atom.errors import PayloadTooLarge
from atom.observability import metrics
from atom.observability.logging import get_logger

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
log = get_logger("atom.http")


def _route_template(scope: Scope) -> str:
    """The route's path template: API routers declare their full prefix, so the route's own path is it.

    Plain routes (the docs pages) leave no route object, only the matched endpoint; without path
    parameters their path is their template. Anything else is "unmatched", keeping labels bounded.
    """
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    if scope.get("endpoint") is not None and not scope.get("path_params"):
        return str(scope["path"])
    return "unmatched"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


LIVE_PATH = "/health/live"
MAX_KNOWN_SERIES = 4096


def live_body() -> bytes:
    """`{"status":"alive","pid":N}`: the pid lets `atom-os daemon` tell its own server from another on the port."""
    return json.dumps({"status": "alive", "pid": os.getpid()}, separators=(",", ":")).encode()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._live_body = live_body()
        self._live_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._live_body)).encode()),
        ]
        self._live_requests = metrics.HTTP_REQUESTS.labels(method="GET", route=LIVE_PATH, status="200")
        self._live_latency = metrics.HTTP_LATENCY.labels(method="GET", route=LIVE_PATH)
        self._known_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["path"] == LIVE_PATH and scope.get("method") == "GET":
            await self._answer_live(send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        method: str = scope["method"]
        state = {"status": 500, "started": False, "too_large": False}
        started = time.perf_counter()
        metrics.HTTP_IN_FLIGHT.inc()

        async def send_with_id(message: Message) -> None:
            if state["too_large"]:
                return  # the app's own reaction to the cut-off body is replaced by our 413
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        def body_too_large() -> None:
            state["too_large"] = True

        try:
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                body_too_large()
            else:
                await self.app(scope, _limited_receive(receive, self.max_body_bytes, body_too_large), send_with_id)
        except Exception as exc:
            if not state["too_large"]:
                log.error("unhandled error", method=method, path=scope.get("path"), exc_info=exc)
                if not state["started"]:
                    await _send_error(send_with_id, 500, _internal_error(request_id))
        finally:
            if state["too_large"]:
                state["too_large"] = False
                await _send_error(send_with_id, 413, _too_large_error(self.max_body_bytes, request_id))
            metrics.HTTP_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            status = state["status"]
            requests, latency = self._series(method, route, status)
            requests.inc()
            latency.observe(elapsed)
            if not route.startswith("/health"):
                log.info("request", method=method, route=route, status=status, ms=round(elapsed * 1000, 2))

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram of this method, route and status: looked up by
        prometheus_client once (~4.5 us a request with its label checks), then kept here."""
        key = (method, route, status)
        series = self._known_series.get(key)
        if series is None:
            series = (
                metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
                metrics.HTTP_LATENCY.labels(method=method, route=route),
            )
            if len(self._known_series) < MAX_KNOWN_SERIES:  # methods come from clients: keep the memory bounded
                self._known_series[key] = series
        return series

    async def _answer_live(self, send: Send) -> None:
        """Liveness asks one thing: does the process's event loop answer? Answer it here, before the
        framework's routing, so probes stay as cheap as a bare ASGI app (the route remains for the docs)."""
        started = time.perf_counter()
        await send({"type": "http.response.start", "status": 200, "headers": self._live_headers})
        await send({"type": "http.response.body", "body": self._live_body})
        self._live_requests.inc()
        self._live_latency.observe(time.perf_counter() - started)


def _limited_receive(receive: Receive, limit: int, on_too_large: Callable[[], None]) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                on_too_large()
                raise PayloadTooLarge(f"Request body is larger than {limit} bytes.", details={"limit_bytes": limit})
        return message

    return wrapped


def _too_large_error(limit: int, request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "PAYLOAD_TOO_LARGE",
            "message": f"Request body is larger than {limit} bytes.",
            "details": {"limit_bytes": limit, "request_id": request_id},
        }
    }


def _internal_error(request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "Something went wrong on our side. The request id identifies it in the logs.",
            "details": {"request_id": request_id},
        }
    }


async def _send_error(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
