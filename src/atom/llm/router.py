"""The router: which model, which provider, and what to do when a provider fails.

Model choice: an explicit model > the agent's configured model > the complexity tier of the last
user message (`complexity.classify`) mapped to a model by `tier_models` (an unmapped tier uses the
nearest mapped tier above it, else below it) > the first model of the first provider. An explicit
model that no provider serves is refused (`UnknownModel`, 422).

Providers are tried in configured order. Candidates are the entries that list the chosen model;
unless the model was explicit, the other entries follow with their own first model (cross-model
fallback). On `ProviderTimeout`, `ProviderRateLimited` or `ProviderUnavailable` a provider is
retried up to `RetryPolicy.attempts_per_provider` times with exponential backoff (a `retry_after`
is honoured up to `retry_after_cap`), then the next provider is tried — but ONLY while nothing has
been yielded to the caller: once an event went out, a failure is raised as is (with its
`partial_text`), never spliced with another provider's answer. Other errors (auth, bad response,
rejected request) are raised at once.

A `CircuitBreaker` per provider: `failure_threshold` consecutive retryable failures open it; an
open provider is skipped until `cooldown` seconds passed on the injected clock; then one call is let
through (half-open): success closes the breaker, failure opens it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from atom.errors import InvalidInput
from atom.llm.complexity import Tier, classify
from atom.llm.providers.base import (
    AllProvidersFailed,
    ChatProvider,
    ChatRequest,
    Message,
    NoProviderConfigured,
    ProviderError,
    StreamEvent,
    ToolSpec,
    UnknownModel,
)
from atom.observability.logging import get_logger

log = get_logger("atom.llm.router")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class ProviderEntry:
    name: str
    provider: ChatProvider
    models: tuple[str, ...]


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_provider: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    retry_after_cap: float = 30.0

    def delay(self, attempt: int, error: ProviderError) -> float:
        """Seconds to wait before retry number `attempt` (1-based) after `error`."""
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            return float(min(max(retry_after, 0.0), self.retry_after_cap))
        return float(min(self.base_delay * 2 ** (attempt - 1), self.max_delay))


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float | None = None


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int = 3, cooldown: float = 30.0, clock: Clock = time.monotonic):
        if failure_threshold < 1 or cooldown < 0:
            raise InvalidInput("failure_threshold must be >= 1 and cooldown >= 0", code="LLM_BREAKER_INVALID")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._state: dict[str, _Breaker] = {}

    def state(self, name: str) -> BreakerState:
        breaker = self._state.get(name)
        if breaker is None or breaker.opened_at is None:
            return "closed"
        return "half_open" if self._clock() - breaker.opened_at >= self.cooldown else "open"

    def allow(self, name: str) -> bool:
        return self.state(name) != "open"

    def record_success(self, name: str) -> None:
        self._state.pop(name, None)

    def record_failure(self, name: str) -> None:
        breaker = self._state.setdefault(name, _Breaker())
        breaker.failures += 1
        if breaker.failures >= self.failure_threshold:
            breaker.opened_at = self._clock()


@dataclass(frozen=True)
class Attempt:
    provider: str
    model: str
    outcome: str  # "ok", "circuit_open" or an error code

    def as_dict(self) -> dict[str, str]:
        return {"provider": self.provider, "model": self.model, "outcome": self.outcome}


@dataclass
class RoutedStream:
    """The events of one routed call; `provider`/`model` name who answered, `attempts` what was tried."""

    _events: AsyncIterator[StreamEvent]
    model: str
    reason: str = "explicit"
    provider: str | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._events


class Router:
    """Routes one chat turn over `entries` (in fallback order). Cheap to build; keep the breaker long-lived."""

    def __init__(
        self,
        entries: Sequence[ProviderEntry],
        *,
        tier_models: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Sleep = asyncio.sleep,
    ):
        names = [e.name for e in entries]
        if len(set(names)) != len(names):
            raise InvalidInput("provider names must be unique", code="LLM_PROVIDER_DUPLICATE")
        self.entries = tuple(e for e in entries if e.models)
        self.tier_models = {str(k): v for k, v in (tier_models or {}).items()}
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self._sleep = sleep

    def serves(self, model: str) -> bool:
        return any(model in e.models for e in self.entries)

    def choose_model(
        self, messages: Sequence[Message], *, model: str | None = None, agent_model: str | None = None
    ) -> tuple[str, str]:
        """(model, why): `explicit`, `agent`, `tier:<tier>` or `default` (first model of the first provider)."""
        if not self.entries:
            raise NoProviderConfigured(NO_PROVIDER_MESSAGE)
        if model:
            if not self.serves(model):
                raise UnknownModel(
                    f"No configured LLM provider serves model {model!r}; "
                    f"available: {', '.join(sorted(self.models())) or 'none'}.",
                    details={"model": model},
                )
            return model, "explicit"
        if agent_model:
            return agent_model, "agent"
        tier = classify(messages)
        order = list(Tier)
        position = order.index(tier)
        # The tier's own model; else the nearest mapped tier above it (more capable), else below it.
        for candidate in order[position:] + order[:position][::-1]:
            tier_model = self.tier_models.get(candidate.value)
            if tier_model and self.serves(tier_model):
                return tier_model, f"tier:{tier.value}"
        return self.entries[0].models[0], "default"

    def models(self) -> set[str]:
        return {m for e in self.entries for m in e.models}

    def candidates(self, model: str, *, explicit: bool) -> list[tuple[ProviderEntry, str]]:
        """Entries serving `model` first; unless explicit, then every other entry with its first model."""
        serving = [(e, model) for e in self.entries if model in e.models]
        if explicit:
            return serving
        return serving + [(e, e.models[0]) for e in self.entries if model not in e.models]

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        model: str | None = None,
        agent_model: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> RoutedStream:
        """Choose the model and candidates now (raising `NoProviderConfigured`/`UnknownModel` at once);
        the returned stream calls the providers when iterated."""
        chosen, reason = self.choose_model(messages, model=model, agent_model=agent_model)
        candidates = self.candidates(chosen, explicit=reason == "explicit")
        routed = RoutedStream(_events=_empty(), model=chosen, reason=reason)

        def request_for(entry_model: str) -> ChatRequest:
            return ChatRequest(
                model=entry_model,
                messages=tuple(messages),
                tools=tuple(tools),
                max_tokens=max_tokens,
                temperature=temperature,
            )

        routed._events = self._run(routed, candidates, request_for)
        return routed

    async def _run(
        self,
        routed: RoutedStream,
        candidates: list[tuple[ProviderEntry, str]],
        request_for: Callable[[str], ChatRequest],
    ) -> AsyncIterator[StreamEvent]:
        last_error: ProviderError | None = None
        for entry, entry_model in candidates:
            for attempt in range(1, self.retry.attempts_per_provider + 1):
                if not self.breaker.allow(entry.name):
                    routed.attempts.append(Attempt(entry.name, entry_model, "circuit_open"))
                    log.warning("llm.provider_skipped", provider=entry.name, reason="circuit_open")
                    break
                started = False
                routed.provider, routed.model = entry.name, entry_model
                try:
                    async with aclosing(entry.provider.stream_chat(request_for(entry_model))) as events:
                        async for event in events:
                            if not started:
                                started = True
                                self.breaker.record_success(entry.name)
                                routed.attempts.append(Attempt(entry.name, entry_model, "ok"))
                            yield event
                    return
                except ProviderError as error:
                    if error.retryable:
                        self.breaker.record_failure(entry.name)
                    if started or not error.retryable:
                        if not started:
                            routed.attempts.append(Attempt(entry.name, entry_model, error.code))
                        raise
                    last_error = error
                    routed.attempts.append(Attempt(entry.name, entry_model, error.code))
                    log.warning(
                        "llm.provider_failed", provider=entry.name, model=entry_model, code=error.code, attempt=attempt
                    )
                    if attempt < self.retry.attempts_per_provider and self.breaker.allow(entry.name):
                        await self._sleep(self.retry.delay(attempt, error))
        routed.provider = None
        last = f" Last error: {last_error.message}" if last_error is not None else ""
        raise AllProvidersFailed(
            f"Every LLM provider that could answer failed or is cooling down; try again later.{last}",
            attempts=[a.as_dict() for a in routed.attempts],
            last_error=last_error,
        )


NO_PROVIDER_MESSAGE = (
    "No LLM provider is configured. Add one with `atom-os llm add NAME --kind openai|anthropic "
    "--base-url URL --model MODEL` (you are asked for the key) or `POST /api/llm/providers`."
)


async def _empty() -> AsyncIterator[Any]:
    return
    yield
