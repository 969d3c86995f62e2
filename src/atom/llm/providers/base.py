"""The provider protocol: one streamed chat turn, typed events and typed errors.

A provider turns a `ChatRequest` into an async stream of events, in this order:

- `TextDelta` as text arrives (zero or more);
- `ToolCall` once a tool call is COMPLETE (fragments assembled, JSON arguments parsed to a dict);
- `Usage` exactly once (from the provider when it reports it, else estimated: `estimated=True`);
- `Done` last, with a normalised `finish_reason`: `stop`, `tool_calls`, `length` or
  `content_filter` (anything else is passed through as the provider sent it).

Failures are raised as `ProviderError` subclasses (all `atom.errors.AtomError`s) that carry the
text streamed before the failure (`partial_text`) and name the provider, never its key. The
router, budgets and the "no provider" case raise the other `LLMError`s defined here, so a caller
(the agent runtime) can `except LLMError` once.

Token counting (`estimate_tokens`) is an estimate, not a tokenizer: about 4 characters per
token for text and JSON, plus a small fixed overhead per message and per tool. It is used for
budget checks before a call and as `Usage` when a provider does not report usage.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from atom.errors import AtomError, Forbidden, InvalidInput, Unavailable

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    """A complete tool call requested by the model (also used on assistant messages in the history)."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One turn of the conversation.

    - `system` / `user`: `content`.
    - `assistant`: `content` and/or `tool_calls` (the calls the model made in that turn).
    - `tool`: the result of one tool call: `content` (text, JSON as text is fine), `tool_call_id`
      of the call it answers, and optionally the tool `name`.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call; `parameters` is a JSON schema (type object)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 1024
    temperature: float | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Done:
    finish_reason: str


StreamEvent = TextDelta | ToolCall | Usage | Done


class ChatProvider(Protocol):
    """What the router needs from a provider adapter."""

    name: str

    def stream_chat(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """An async generator of `StreamEvent`s; raises `ProviderError`s."""
        ...

    def count_tokens(self, request: ChatRequest) -> int:
        """Estimated input tokens of `request` (see `estimate_tokens`)."""
        ...

    async def aclose(self) -> None: ...


# --- errors -----------------------------------------------------------------------------------


class LLMError(AtomError):
    """Base of every error of the LLM layer (provider failures, routing, budgets, configuration)."""

    default_code = "LLM_ERROR"


class ProviderError(LLMError):
    """Base of every provider failure. `partial_text` is the text streamed before the failure."""

    status_code = 502
    default_code = "LLM_PROVIDER_ERROR"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        partial_text: str = "",
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, code=code, details={"provider": provider, **(details or {})})
        self.provider = provider
        self.partial_text = partial_text


class ProviderAuthError(ProviderError):
    """The provider rejected the configured key (HTTP 401/403)."""

    default_code = "LLM_PROVIDER_AUTH"


class ProviderBadResponse(ProviderError):
    """The provider sent something we cannot understand (malformed chunk, bad tool-call JSON)."""

    default_code = "LLM_PROVIDER_BAD_RESPONSE"


class ProviderRequestRejected(ProviderError):
    """The provider refused the request itself (400/404/422: unknown model, context too long, ...)."""

    default_code = "LLM_PROVIDER_REJECTED_REQUEST"


class ProviderRateLimited(ProviderError, Unavailable):
    """HTTP 429. `retry_after` (seconds) when the provider said how long to wait."""

    status_code = 503
    retryable = True
    default_code = "LLM_PROVIDER_RATE_LIMITED"

    def __init__(self, message: str, *, provider: str, retry_after: float | None = None, partial_text: str = ""):
        super().__init__(message, provider=provider, partial_text=partial_text, details={"retry_after": retry_after})
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError, Unavailable):
    """5xx, overloaded, connection refused, or the stream dropped before the model finished."""

    status_code = 503
    retryable = True
    default_code = "LLM_PROVIDER_UNAVAILABLE"


class ProviderTimeout(ProviderError, Unavailable):
    """The provider did not answer (or stopped sending) within the configured timeout."""

    status_code = 504
    retryable = True
    default_code = "LLM_PROVIDER_TIMEOUT"


class NoProviderConfigured(LLMError, Unavailable):
    """No provider is configured (or none serves the requested model). The message says how to add one."""

    status_code = 503
    default_code = "LLM_NO_PROVIDER"


class UnknownModel(LLMError, InvalidInput):
    """An explicitly requested model that no configured provider serves."""

    status_code = 422
    default_code = "LLM_UNKNOWN_MODEL"


class AllProvidersFailed(LLMError, Unavailable):
    """Every candidate provider failed with a retryable error or is cooling down (circuit open).

    `partial_text` is always "" (fallback only happens before anything was streamed); `last_error`
    is the last provider error, `details["attempts"]` what was tried.
    """

    status_code = 503
    default_code = "LLM_ALL_PROVIDERS_FAILED"

    def __init__(self, message: str, *, attempts: list[dict[str, Any]], last_error: ProviderError | None = None):
        super().__init__(message, details={"attempts": attempts})
        self.last_error = last_error
        self.partial_text = ""


class BudgetExceeded(LLMError, Forbidden):
    """The agent's LLM budget would be exceeded by this call; the call was not made."""

    status_code = 402
    default_code = "LLM_BUDGET_EXCEEDED"


# --- helpers shared by the adapters -------------------------------------------------------------

_CHARS_PER_TOKEN = 4
_MESSAGE_OVERHEAD = 4
_TOOL_OVERHEAD = 8


def estimate_text_tokens(text: str) -> int:
    """About 4 characters per token, rounded up (0 for empty text)."""
    return math.ceil(len(text) / _CHARS_PER_TOKEN) if text else 0


def estimate_tokens(messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
    """Estimated input tokens of a conversation and its tool definitions (an estimate, not a tokenizer)."""
    total = 0
    for message in messages:
        total += _MESSAGE_OVERHEAD + estimate_text_tokens(message.content)
        for call in message.tool_calls:
            total += estimate_text_tokens(call.name) + estimate_text_tokens(json.dumps(call.arguments))
    for tool in tools:
        total += _TOOL_OVERHEAD + estimate_text_tokens(
            tool.name + tool.description + json.dumps(tool.parameters, sort_keys=True)
        )
    return total


def estimate_request_tokens(request: ChatRequest) -> int:
    return estimate_tokens(request.messages, request.tools)


def scrub(text: str, secret: str, *, limit: int = 300) -> str:
    """An upstream message made safe to show: the key removed (even if echoed back), length bounded."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return text[:limit]


def key_rejected(provider: str, status: int, partial: str) -> ProviderAuthError:
    return ProviderAuthError(
        f"LLM provider {provider!r} rejected its API key (HTTP {status}); "
        f"update the key with `atom-os llm add {provider} ... --replace` or check it with the provider",
        provider=provider,
        partial_text=partial,
        details={"status": status},
    )


def rate_limited(provider: str, headers: Any, partial: str) -> ProviderRateLimited:
    return ProviderRateLimited(
        f"LLM provider {provider!r} is rate limiting requests (HTTP 429)",
        provider=provider,
        retry_after=parse_retry_after(headers),
        partial_text=partial,
    )


def timed_out(provider: str, partial: str) -> ProviderTimeout:
    return ProviderTimeout(f"LLM provider {provider!r} did not answer in time", provider=provider, partial_text=partial)


def unreachable(provider: str, partial: str) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"LLM provider {provider!r} could not be reached or dropped the connection",
        provider=provider,
        partial_text=partial,
    )


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (delta seconds); None if absent or unparsable."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name) if headers is not None else None
        if raw is None:
            continue
        try:
            value = float(raw) / scale
        except ValueError:
            continue
        if value >= 0 and math.isfinite(value):
            return value
    return None


def transport_failure_kind(exc: BaseException) -> Literal["timeout", "transport"] | None:
    """Classify an exception raised by the SDKs' HTTP layer while a stream is read.

    The SDKs wrap errors raised before the response starts (`APITimeoutError`,
    `APIConnectionError`), but errors while the body is streamed surface as the HTTP library's own
    `...TimeoutException` / `...TransportError` classes. Matching on class names in the MRO avoids
    importing the SDKs' (changing) HTTP library directly.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"TimeoutException", "TimeoutError"}:
        return "timeout"
    if names & {"TransportError", "StreamError", "ConnectionError", "IncompleteRead"}:
        return "transport"
    return None


def parse_tool_arguments(raw: str, *, provider: str, tool_name: str, partial_text: str) -> dict[str, Any]:
    """Parse a tool call's assembled JSON arguments (empty means no arguments); must be an object."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProviderBadResponse(
            f"{provider} sent invalid JSON arguments for tool {tool_name!r}: {exc.msg}",
            provider=provider,
            partial_text=partial_text,
        ) from None
    if not isinstance(value, dict):
        raise ProviderBadResponse(
            f"{provider} sent tool arguments for {tool_name!r} that are not a JSON object",
            provider=provider,
            partial_text=partial_text,
        )
    return value


@dataclass
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class ToolCallAssembler:
    """Collects tool-call fragments keyed by index and hands out complete `ToolCall`s in index order."""

    def __init__(self, provider: str):
        self.provider = provider
        self._pending: dict[int, _PendingCall] = {}

    def add(self, index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None) -> None:
        call = self._pending.setdefault(index, _PendingCall())
        if id:
            call.id = id
        if name and not call.name:
            call.name = name
        if arguments:
            call.arguments += arguments

    def has(self, index: int) -> bool:
        return index in self._pending

    def __bool__(self) -> bool:
        return bool(self._pending)

    def pop(self, index: int, *, partial_text: str) -> ToolCall:
        call = self._pending.pop(index)
        return self._complete(call, partial_text=partial_text)

    def pop_all(self, *, partial_text: str) -> list[ToolCall]:
        calls = [self._complete(self._pending[i], partial_text=partial_text) for i in sorted(self._pending)]
        self._pending.clear()
        return calls

    def _complete(self, call: _PendingCall, *, partial_text: str) -> ToolCall:
        if not call.id or not call.name:
            raise ProviderBadResponse(
                f"{self.provider} sent a tool call without an id or a name",
                provider=self.provider,
                partial_text=partial_text,
            )
        args = parse_tool_arguments(
            call.arguments, provider=self.provider, tool_name=call.name, partial_text=partial_text
        )
        return ToolCall(id=call.id, name=call.name, arguments=args)


# --- reading a streamed response body -----------------------------------------------------------


class SSEDataDecoder:
    """Incremental server-sent events decoder keeping what chat streams need: each event's name and data.

    Lines end in LF, CRLF or CR (a CRLF split across two reads included); the `data:` lines of one
    event are joined with LF and the event is complete at a blank line. Comments, `id` and `retry`
    are skipped; an event without data is not dispatched, and an event the body ends in the middle
    of is dropped (both as the SSE specification says).
    """

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # the start of a line not yet ended
        self._name = b""  # the `event:` name of the event being read (b"" when it has none)
        self._data: list[bytes] = []  # the data lines of the event being read
        self._skip_lf = False  # the last read ended in CR: an LF starting the next one ends no line

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        """`(name, data)` of every event completed by `chunk` (usually none or one)."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\n" not in chunk and b"\r" not in chunk:
            if chunk:
                self._partial.append(chunk)
            return []
        if self._partial:
            self._partial.append(chunk)
            chunk = b"".join(self._partial)
            self._partial.clear()
        lines = chunk.splitlines(keepends=True)
        ending = lines[-1][-1:]
        if ending == b"\r":
            self._skip_lf = True
        elif ending != b"\n":
            self._partial.append(lines.pop())
        events: list[tuple[bytes, bytes]] = []
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line:
                if self._data:
                    data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                    events.append((self._name, data))
                    self._data = []
                self._name = b""
            elif line.startswith(b"data:"):
                self._data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                self._name = line[7:] if line[6:7] == b" " else line[6:]
            elif line == b"data":
                self._data.append(b"")
        return events
