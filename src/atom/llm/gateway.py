"""The LLM gateway: what the agent runtime calls to get a model's answer, metered and within budget.

    gateway = get_gateway(app.state, db, settings)          # one per app (keeps the circuit breakers)
    llm = await gateway.client(agent_id=agent.id, execution_id=run.id)   # NoProviderConfigured if none
    stream = llm.stream(messages, tools=specs, model=None, agent_model=agent_model(agent), max_tokens=1024)
    async for event in stream:            # TextDelta | ToolCall | Usage | Done; raises LLMError subclasses
        ...
    stream.provider, stream.model, stream.usage, stream.cost_usd   # who answered, tokens, USD (None: unpriced)

`client()` reads the enabled provider configs (fallback order: priority, then name) so a provider
added through the API is used by the next call without a restart; SDK clients are cached per
provider and rebuilt when its kind, base URL or key changes. `stream()` chooses the model at once
(`UnknownModel` for an explicit model nobody serves); iterating first checks the agent's budget
(`BudgetExceeded`, no call made), then routes with retries, fallback and circuit breakers. Every
call that reached a provider is recorded in `llm_usage` when the stream ends, fails or is closed
(cancelled): provider-reported tokens when there are any, else an estimate (`estimated`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cryptography.fernet import Fernet

from atom.config import Settings
from atom.db.session import Database
from atom.llm import service
from atom.llm.providers import build_provider
from atom.llm.providers.base import (
    ChatProvider,
    Done,
    LLMError,
    Message,
    NoProviderConfigured,
    ProviderAuthError,
    StreamEvent,
    TextDelta,
    ToolSpec,
    Usage,
    estimate_tokens,
)
from atom.llm.router import NO_PROVIDER_MESSAGE, Attempt, CircuitBreaker, ProviderEntry, RetryPolicy, Router, Sleep
from atom.observability.logging import get_logger
from atom.security.secrets_store import load_cipher

log = get_logger("atom.llm.gateway")


def agent_model(agent: Any) -> str | None:
    """The model an agent is configured with: `configuration["model"]` (agents have no model column)."""
    configuration = getattr(agent, "configuration", None) or {}
    value = configuration.get("model") if isinstance(configuration, dict) else None
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class _Fingerprint:
    kind: str
    base_url: str
    key_secret: str | None
    key_version: str | None


class LLMGateway:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        cipher: Fernet | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Any = time.monotonic,
    ):
        self.db = db
        self.settings = settings
        self._cipher = cipher
        self._sleep = sleep
        self.breaker = CircuitBreaker(
            failure_threshold=settings.llm_breaker_failures, cooldown=settings.llm_breaker_cooldown_s, clock=clock
        )
        self.retry = RetryPolicy(
            attempts_per_provider=settings.llm_attempts_per_provider,
            base_delay=settings.llm_backoff_base_s,
            max_delay=settings.llm_backoff_max_s,
            retry_after_cap=settings.llm_retry_after_cap_s,
        )
        self._clients: dict[str, tuple[_Fingerprint, ChatProvider]] = {}
        self._retired: list[ChatProvider] = []
        self._lock = asyncio.Lock()

    @property
    def cipher(self) -> Fernet:
        if self._cipher is None:
            self._cipher = load_cipher(self.settings)
        return self._cipher

    async def entries(self) -> list[ProviderEntry]:
        """The enabled providers in fallback order, with SDK clients built (or reused)."""
        async with self._lock, self.db.session_scope() as session:
            rows = await service.list_providers(session=session, enabled_only=True)
            versions = await service.key_versions(session=session, names=[r.key_secret for r in rows if r.key_secret])
            entries = []
            for row in rows:
                fingerprint = _Fingerprint(row.kind, row.base_url, row.key_secret, versions.get(row.key_secret or ""))
                cached = self._clients.get(row.name)
                if cached is None or cached[0] != fingerprint:
                    if cached is not None:
                        self._retired.append(cached[1])
                    key = await service.reveal_key(session=session, cipher=self.cipher, provider=row)
                    client = build_provider(
                        kind=row.kind,
                        name=row.name,
                        base_url=row.base_url,
                        api_key=key,
                        timeout=self.settings.llm_timeout_s,
                    )
                    del key
                    cached = (fingerprint, client)
                    self._clients[row.name] = cached
                entries.append(ProviderEntry(name=row.name, provider=cached[1], models=tuple(row.models)))
            return entries

    async def client(self, *, agent_id: str | None = None, execution_id: str | None = None) -> LLMClient:
        """A client over the current providers; `NoProviderConfigured` (saying how to add one) if none."""
        entries = await self.entries()
        if not entries:
            raise NoProviderConfigured(NO_PROVIDER_MESSAGE)
        router = Router(
            entries,
            tier_models=self.settings.llm_tier_models,
            retry=self.retry,
            breaker=self.breaker,
            sleep=self._sleep,
        )
        return LLMClient(self, router, agent_id=agent_id, execution_id=execution_id)

    async def aclose(self) -> None:
        clients = [c for _, c in self._clients.values()] + self._retired
        self._clients.clear()
        self._retired.clear()
        for client in clients:
            await client.aclose()


class LLMClient:
    """Routes calls for one agent/run. Satisfies the runtime's `ChatLLM` protocol (`stream(...)`)."""

    def __init__(self, gateway: LLMGateway, router: Router, *, agent_id: str | None, execution_id: str | None):
        self.gateway = gateway
        self.router = router
        self.agent_id = agent_id
        self.execution_id = execution_id

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        model: str | None = None,
        agent_model: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> MeteredStream:
        routed = self.router.stream(
            messages, tools=tools, model=model, agent_model=agent_model, max_tokens=max_tokens, temperature=temperature
        )
        return MeteredStream(self, routed, input_estimate=estimate_tokens(messages, tools), max_tokens=max_tokens)


class MeteredStream:
    """One routed call: iterate for events; afterwards `usage`, `cost_usd`, `provider`, `model` tell the result."""

    def __init__(self, client: LLMClient, routed: Any, *, input_estimate: int, max_tokens: int):
        self._client = client
        self._routed = routed
        self._input_estimate = input_estimate
        self._max_tokens = max_tokens
        self.usage: Usage | None = None
        self.cost_usd: Decimal | None = None
        self.usage_id: str | None = None
        self._auth_error: str | None = None
        self._events = self._run()

    @property
    def provider(self) -> str | None:
        provider: str | None = self._routed.provider
        return provider

    @property
    def model(self) -> str:
        model: str = self._routed.model
        return model

    @property
    def reason(self) -> str:
        """Why this model: `explicit`, `agent`, `tier:<tier>` or `default`."""
        reason: str = self._routed.reason
        return reason

    @property
    def attempts(self) -> list[Attempt]:
        attempts: list[Attempt] = self._routed.attempts
        return attempts

    def __aiter__(self) -> AsyncGenerator[StreamEvent, None]:
        return self._events

    async def aclose(self) -> None:
        await self._events.aclose()

    async def _run(self) -> AsyncGenerator[StreamEvent, None]:
        gateway, client = self._client.gateway, self._client
        if client.agent_id is not None:
            async with gateway.db.session_scope() as session:
                await service.check_budget(
                    session=session,
                    settings=gateway.settings,
                    agent_id=client.agent_id,
                    model=self.model,
                    input_tokens=self._input_estimate,
                    max_output_tokens=self._max_tokens,
                )
        started = time.monotonic()
        text_chars = 0
        status, error_code, done = "cancelled", None, False
        try:
            async for event in self._routed:
                if isinstance(event, TextDelta):
                    text_chars += len(event.text)
                elif isinstance(event, Usage):
                    self.usage = event
                elif isinstance(event, Done):
                    done = True
                yield event
            status = "ok"
        except LLMError as exc:
            status, error_code = "error", exc.code
            if isinstance(exc, ProviderAuthError):
                self._auth_error = f"{exc.code}: {exc.message}"
            raise
        finally:
            if done:
                status = "ok"
            tried = self.provider or (self.attempts[-1].provider if self.attempts else None)
            if tried is not None:
                usage = self.usage
                if usage is None and (text_chars or status != "error"):
                    # The provider may bill a call that failed or was cancelled mid-stream: estimate it.
                    usage = Usage(self._input_estimate, math.ceil(text_chars / 4), estimated=True)
                record = self._record(tried, usage, status, error_code, int((time.monotonic() - started) * 1000))
                try:
                    await asyncio.shield(record)
                except Exception as exc:  # the answer matters more than its accounting
                    log.error("llm.usage_not_recorded", provider=tried, error=type(exc).__name__)

    async def _record(
        self, provider: str, usage: Usage | None, status: str, error_code: str | None, duration_ms: int
    ) -> None:
        gateway, client = self._client.gateway, self._client
        async with gateway.db.session_scope() as session:
            row = await service.record_usage(
                session=session,
                settings=gateway.settings,
                provider=provider,
                model=self.model,
                usage=usage,
                agent_id=client.agent_id,
                execution_id=client.execution_id,
                status=status,
                error_code=error_code,
                duration_ms=duration_ms,
            )
            self.cost_usd, self.usage_id = row.cost_usd, row.id
            if self._auth_error is not None:  # a rejected key: show it in `atom-os llm list` until fixed
                await service.mark_unhealthy(session=session, name=provider, error=self._auth_error)
        if usage is not None and self.usage is None:
            self.usage = usage


def get_gateway(state: Any, db: Database, settings: Settings) -> LLMGateway:
    """The app's gateway (`state.llm_gateway`), created on first use."""
    gateway: LLMGateway | None = getattr(state, "llm_gateway", None)
    if gateway is None or gateway.db is not db:
        gateway = LLMGateway(db, settings)
        state.llm_gateway = gateway
    return gateway


async def close_gateway(state: Any) -> None:
    """Close the app's gateway SDK clients (for the app's shutdown)."""
    gateway: LLMGateway | None = getattr(state, "llm_gateway", None)
    if gateway is not None:
        state.llm_gateway = None
        await gateway.aclose()
