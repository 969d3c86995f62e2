"""Servers on 127.0.0.1 that speak the wire formats of the services our integrations call.

- `SlackServer`: `chat.postMessage` and `conversations.list` of the Slack Web API: bearer bot
  token, HTTP 200 with `{"ok": false, "error": ...}` for failures, cursor pagination in
  `response_metadata.next_cursor`, and HTTP 429 with `Retry-After` when told to rate-limit.
- `AsanaServer`: `POST /api/1.0/tasks` and `GET /api/1.0/projects` of Asana's API: `{"data": ...}`
  envelopes, offset pagination with `next_page`, `{"errors": [{"message", "help"}]}` failures
  (400/401/404/429 with Retry-After).
- `HttpServer`: a generic API for http_request/webhook_call: echo, fixed status, flaky (fails N
  times), slow, and an idempotent endpoint that honours `Idempotency-Key` like Stripe does.
- `SmtpServer`: aiosmtpd with STARTTLS (a self-signed certificate made here with `cryptography`)
  and AUTH PLAIN/LOGIN required.

Each HTTP server runs in the test's event loop under uvicorn (`async with serve(app) as url`).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# --- running a server -------------------------------------------------------------------------


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a free port) in this event loop; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else None


# --- Slack ------------------------------------------------------------------------------------


@dataclass
class SlackServer:
    token: str = "xoxb-test-token"
    channels: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"id": f"C{n:08d}", "name": name, "is_private": False, "is_archived": name == "old", "num_members": n}
            for n, name in enumerate(["general", "ops", "random", "old", "alerts"], start=1)
        ]
    )
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    rate_limit_next: int = 0
    retry_after: str = "1"
    _ts: int = 0

    def _channel(self, ref: str) -> dict[str, Any] | None:
        name = ref.lstrip("#")
        return next((c for c in self.channels if ref in (c["id"],) or c["name"] == name), None)

    def _auth_error(self, request: Request) -> JSONResponse | None:
        token = _bearer(request)
        if token is None:
            return JSONResponse({"ok": False, "error": "not_authed"})
        if token != self.token:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        return None

    def _rate_limited(self) -> JSONResponse | None:
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return JSONResponse({"ok": False, "error": "ratelimited"}, 429, headers={"Retry-After": self.retry_after})
        return None

    async def post_message(self, request: Request) -> Response:
        raw = await request.body()
        self.requests.append({"method": "chat.postMessage", "headers": dict(request.headers), "body": raw})
        if (limited := self._rate_limited()) is not None:
            return limited
        if (denied := self._auth_error(request)) is not None:
            return denied
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                args = json.loads(raw)
            except ValueError:
                return JSONResponse({"ok": False, "error": "invalid_json"})
        else:
            args = dict((await request.form()).items())
        channel = self._channel(str(args.get("channel", "")))
        if not args.get("channel") or channel is None:
            return JSONResponse({"ok": False, "error": "channel_not_found"})
        if channel["is_archived"]:
            return JSONResponse({"ok": False, "error": "is_archived"})
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return JSONResponse({"ok": False, "error": "no_text"})
        self._ts += 1
        ts = f"1700000000.{self._ts:06d}"
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": args.get("text", ""),
            "ts": ts,
            "user": "U0BOT0001",
            "bot_id": "B0BOT0001",
            "metadata": args.get("metadata"),
        }
        self.messages.append({"channel": channel["id"], **message, "blocks": args.get("blocks")})
        return JSONResponse({"ok": True, "channel": channel["id"], "ts": ts, "message": message})

    async def conversations_list(self, request: Request) -> Response:
        self.requests.append(
            {"method": "conversations.list", "headers": dict(request.headers), "query": dict(request.query_params)}
        )
        if (limited := self._rate_limited()) is not None:
            return limited
        if (denied := self._auth_error(request)) is not None:
            return denied
        query = request.query_params
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return JSONResponse({"ok": False, "error": "invalid_arguments"})
        types = set(query.get("types", "public_channel").split(","))
        exclude_archived = query.get("exclude_archived", "false") in ("true", "1")
        visible = [
            c
            for c in self.channels
            if ("private_channel" if c["is_private"] else "public_channel") in types
            and not (exclude_archived and c["is_archived"])
        ]
        start = 0
        if cursor := query.get("cursor"):
            try:
                start = int(base64.b64decode(cursor).decode().split(":")[1])
            except (ValueError, IndexError):
                return JSONResponse({"ok": False, "error": "invalid_cursor"})
        page = visible[start : start + limit]
        more = start + limit < len(visible)
        next_cursor = base64.b64encode(f"team:{start + limit}".encode()).decode() if more else ""
        return JSONResponse({"ok": True, "channels": page, "response_metadata": {"next_cursor": next_cursor}})

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/chat.postMessage", self.post_message, methods=["POST"]),
                Route("/api/conversations.list", self.conversations_list, methods=["GET", "POST"]),
            ]
        )


# --- Asana ------------------------------------------------------------------------------------

ASANA_HELP = (
    "For more information on API status codes and how to handle them, "
    "read the docs on errors: https://developers.asana.com/docs/errors"
)


def asana_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "help": ASANA_HELP}]}, status, headers=headers)


@dataclass
class AsanaServer:
    token: str = "asana-test-pat"
    workspace: str = "1200000000000001"
    projects: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"gid": str(1300000000000000 + n), "name": f"Project {n}", "resource_type": "project", "archived": n == 4}
            for n in range(1, 6)
        ]
    )
    tasks: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    rate_limit_next: int = 0
    retry_after: str = "1"
    fail_next_with: int | None = None

    def _check(self, request: Request) -> JSONResponse | None:
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return asana_error(
                429, "You have made too many requests recently. Please, be chill.", {"Retry-After": self.retry_after}
            )
        if self.fail_next_with is not None:
            status, self.fail_next_with = self.fail_next_with, None
            return asana_error(status, "Server Error" if status >= 500 else "Bad request")
        token = _bearer(request)
        if token != self.token:
            return asana_error(401, "Not Authorized")
        return None

    async def create_task(self, request: Request) -> Response:
        raw = await request.body()
        self.requests.append({"path": "/tasks", "headers": dict(request.headers), "body": raw})
        if (refused := self._check(request)) is not None:
            return refused
        try:
            body = json.loads(raw)
        except ValueError:
            return asana_error(400, "Could not parse request data, invalid JSON")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return asana_error(400, "data: Missing input")
        project_refs = data.get("projects") or []
        if not project_refs and not data.get("workspace") and not data.get("parent"):
            return asana_error(400, "You should specify one of workspace, parent, projects")
        if data.get("workspace") and data["workspace"] != self.workspace:
            return asana_error(404, f"workspace: Unknown object: {data['workspace']}")
        projects = []
        for ref in project_refs:
            project = next((p for p in self.projects if p["gid"] == ref), None)
            if project is None:
                return asana_error(404, f"projects: Unknown object: {ref}")
            projects.append({"gid": project["gid"], "resource_type": "project", "name": project["name"]})
        gid = str(1400000000000000 + len(self.tasks) + 1)
        task = {
            "gid": gid,
            "resource_type": "task",
            "name": data.get("name", ""),
            "notes": data.get("notes", ""),
            "assignee": {"gid": "1", "resource_type": "user"} if data.get("assignee") else None,
            "due_on": data.get("due_on"),
            "projects": projects,
            "workspace": {"gid": self.workspace, "resource_type": "workspace"},
            "permalink_url": f"https://app.asana.com/0/0/{gid}",
            "completed": False,
        }
        self.tasks.append(task)
        return JSONResponse({"data": task}, 201)

    async def list_projects(self, request: Request) -> Response:
        self.requests.append(
            {"path": "/projects", "headers": dict(request.headers), "query": dict(request.query_params)}
        )
        if (refused := self._check(request)) is not None:
            return refused
        query = request.query_params
        if not query.get("workspace") and not query.get("team"):
            return asana_error(400, "workspace: Missing input")
        if query.get("workspace") != self.workspace:
            return asana_error(404, f"workspace: Unknown object: {query.get('workspace')}")
        try:
            limit = int(query.get("limit", "100"))
            offset = int(base64.b64decode(query["offset"]).decode()) if query.get("offset") else 0
        except (ValueError, KeyError):
            return asana_error(400, "offset: Your pagination token is invalid.")
        if not 1 <= limit <= 100:
            return asana_error(400, "limit: Must be between 1 and 100")
        archived = query.get("archived")
        visible = [p for p in self.projects if archived is None or p["archived"] == (archived == "true")]
        page = [
            {"gid": p["gid"], "name": p["name"], "resource_type": "project", "archived": p["archived"]}
            for p in visible[offset : offset + limit]
        ]
        next_page = None
        if offset + limit < len(visible):
            token = base64.b64encode(str(offset + limit).encode()).decode()
            path = f"/projects?limit={limit}&offset={token}"
            next_page = {"offset": token, "path": path, "uri": f"https://app.asana.com/api/1.0{path}"}
        return JSONResponse({"data": page, "next_page": next_page})

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/1.0/tasks", self.create_task, methods=["POST"]),
                Route("/api/1.0/projects", self.list_projects, methods=["GET"]),
            ]
        )


# --- a generic HTTP API -------------------------------------------------------------------------


@dataclass
class HttpServer:
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    idempotent: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    barriers: dict[str, asyncio.Event] = field(default_factory=dict)
    arrivals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    on_request: Callable[[dict[str, Any]], Any] | None = None

    async def _record(self, request: Request) -> dict[str, Any]:
        entry = {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": (await request.body()).decode(errors="replace"),
        }
        self.requests.append(entry)
        if self.on_request is not None:
            result = self.on_request(entry)
            if asyncio.iscoroutine(result):
                await result
        return entry

    async def echo(self, request: Request) -> Response:
        entry = await self._record(request)
        return JSONResponse({k: entry[k] for k in ("method", "path", "query", "headers", "body")})

    async def status(self, request: Request) -> Response:
        await self._record(request)
        code = int(request.path_params["code"])
        headers = (
            {"Retry-After": request.query_params["retry_after"]} if "retry_after" in request.query_params else None
        )
        return JSONResponse({"status": code}, code, headers=headers)

    async def flaky(self, request: Request) -> Response:
        """Fails with 503 the first `fail` times for each key, then answers 200."""
        await self._record(request)
        key = request.path_params["key"]
        self.failures[key] += 1
        if self.failures[key] <= int(request.query_params.get("fail", "1")):
            return JSONResponse({"error": "temporarily unavailable"}, 503)
        return JSONResponse({"attempts": self.failures[key]})

    async def slow(self, request: Request) -> Response:
        await self._record(request)
        await asyncio.sleep(float(request.query_params.get("delay", "1")))
        return JSONResponse({"slept": True})

    async def charge(self, request: Request) -> Response:
        """Applies each Idempotency-Key once; a repeat gets the first answer back (Stripe's semantics).
        `?delay_after=S` applies the charge, then waits S seconds before answering."""
        entry = await self._record(request)
        key = entry["headers"].get("idempotency-key")
        if key is None:
            return JSONResponse({"error": "Idempotency-Key required"}, 400)
        if key in self.idempotent:
            return JSONResponse(self.idempotent[key], 200, headers={"Idempotent-Replayed": "true"})
        result = {"id": f"ch_{len(self.idempotent) + 1}", "body": entry["body"]}
        self.idempotent[key] = result
        self.applied.append(key)
        if "delay_after" in request.query_params:
            await asyncio.sleep(float(request.query_params["delay_after"]))
        return JSONResponse(result, 201)

    async def barrier(self, request: Request) -> Response:
        """Answers only when `n` requests for the same `key` have arrived: proves they ran at the same time."""
        await self._record(request)
        key, n = request.query_params.get("key", "b"), int(request.query_params.get("n", "2"))
        event = self.barriers.setdefault(key, asyncio.Event())
        self.arrivals[key] += 1
        if self.arrivals[key] >= n:
            event.set()
        try:
            await asyncio.wait_for(event.wait(), timeout=float(request.query_params.get("timeout", "10")))
        except TimeoutError:
            return JSONResponse({"error": "barrier timed out"}, 504)
        return JSONResponse({"arrived": self.arrivals[key]})

    @property
    def app(self) -> Starlette:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(
            routes=[
                Route("/echo", self.echo, methods=methods),
                Route("/status/{code:int}", self.status, methods=methods),
                Route("/flaky/{key}", self.flaky, methods=methods),
                Route("/slow", self.slow, methods=methods),
                Route("/charge", self.charge, methods=["POST"]),
                Route("/barrier", self.barrier, methods=methods),
            ]
        )


# --- SMTP -------------------------------------------------------------------------------------


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: Message
    authenticated_as: str | None
    tls: bool


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS and AUTH; records what it accepts."""

    directory: Path
    username: str = "atom"
    password: str = "smtp-test-password"
    messages: list[ReceivedMail] = field(default_factory=list)
    auth_failures: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    cert_path: Path | None = None
    _controller: Any = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode() == self.username and auth_data.password.decode() == self.password
        ):
            return AuthResult(success=True, auth_data=auth_data.login.decode())
        self.auth_failures += 1
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=message_from_bytes(envelope.original_content or envelope.content),
                authenticated_as=session.auth_data if session.authenticated else None,
                tls=session.ssl is not None,
            )
        )
        return "250 Message accepted for delivery"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.cert_path, key_path = self_signed_certificate(self.directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, key_path)
        with socket.socket() as probe:
            probe.bind((self.host, 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=self._authenticate,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
