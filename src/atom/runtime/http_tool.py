"""`http_request`: an agent calls an HTTP API. Governed by method (GET/HEAD 1, POST/PUT/PATCH 3, DELETE 4).

Private, loopback, link-local and other non-public addresses are refused unless
ATOM_HTTP_TOOL_ALLOW_PRIVATE is on: every address the host resolves to is checked before the
request is sent, and redirects are not followed (a redirect could point inside the network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from atom.config import Settings, get_settings
from atom.errors import InvalidInput, Unavailable
from atom.runtime.context import current_tool_context

METHOD_COMPLEXITY = {"GET": 1, "HEAD": 1, "POST": 3, "PUT": 3, "PATCH": 3, "DELETE": 4}
MAX_RESPONSE_TEXT = 16_384
MAX_RESPONSE_BYTES = MAX_RESPONSE_TEXT * 4  # enough bytes for MAX_RESPONSE_TEXT characters of UTF-8
_KEPT_HEADERS = ("content-type", "content-length", "location", "retry-after")


class HttpToolParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="GET", description="HTTP method: GET, HEAD, POST, PUT, PATCH or DELETE."
    )
    url: str = Field(min_length=8, max_length=4096, description="An http:// or https:// URL.")
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    query: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=100)
    json_body: Any = Field(default=None, alias="json", description="A JSON body.")
    body: str | None = Field(default=None, max_length=1_000_000, description="A text body (when no `json`).")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        try:
            host = httpx.URL(value).host
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if not host:
            raise ValueError("the URL has no host")
        return value


def governed_as(params: BaseModel) -> str:
    assert isinstance(params, HttpToolParams)
    return f"http_{params.method.lower()}"


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


async def check_target(url: str, settings: Settings) -> None:
    """Refuse a URL whose host is (or resolves to) a non-public address, unless allowed by the setting."""
    if settings.http_tool_allow_private:
        return
    host = httpx.URL(url).host
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise InvalidInput(f"Cannot resolve host {host!r}.", code="HTTP_HOST_UNRESOLVED") from exc
        addresses = sorted({str(info[4][0]) for info in infos})
    blocked = [a for a in addresses if not _is_public(a)]
    if blocked or not addresses:
        raise InvalidInput(
            f"Refused: {host} is a private, loopback or otherwise non-public address. "
            "Set ATOM_HTTP_TOOL_ALLOW_PRIVATE=true to let agents reach internal hosts.",
            code="HTTP_TARGET_BLOCKED",
            details={"host": host},
        )


async def http_request(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, HttpToolParams)
    context = current_tool_context.get()
    settings = context.settings if context is not None else get_settings()
    await check_target(params.url, settings)
    kwargs: dict[str, Any] = {"headers": params.headers, "params": params.query or None}
    if params.json_body is not None:
        kwargs["json"] = params.json_body
    elif params.body is not None:
        kwargs["content"] = params.body.encode()
    try:
        async with (
            httpx.AsyncClient(timeout=settings.http_action_timeout_s, follow_redirects=False) as http,
            http.stream(params.method, params.url, **kwargs) as response,
        ):
            raw, more = await _read_bounded(response)
    except httpx.TimeoutException as exc:
        raise Unavailable(f"{params.method} {params.url} timed out.", code="HTTP_TIMEOUT") from exc
    except httpx.TransportError as exc:
        raise Unavailable(f"Cannot reach {params.url} ({type(exc).__name__}).", code="HTTP_UNREACHABLE") from exc
    text = raw.decode(response.encoding or "utf-8", errors="replace")
    output: dict[str, Any] = {
        "status": response.status_code,
        "headers": {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS},
        "text": text[:MAX_RESPONSE_TEXT],
        "truncated": more or len(text) > MAX_RESPONSE_TEXT,
    }
    return output


async def _read_bounded(response: httpx.Response) -> tuple[bytes, bool]:
    """At most MAX_RESPONSE_BYTES of the (decompressed) body, and whether more was left unread.

    Only the first MAX_RESPONSE_TEXT characters are returned, so reading (and decoding) a body of
    any size in full would be memory and event-loop time spent on nothing.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            return b"".join(chunks)[:MAX_RESPONSE_BYTES], True
    return b"".join(chunks), False
