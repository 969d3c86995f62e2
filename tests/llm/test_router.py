"""Routing: model choice, retries with backoff, fallback to the next provider, the circuit breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from atom.llm.complexity import Tier, classify_text
from atom.llm.providers import build_provider
from atom.llm.providers.base import (
    AllProvidersFailed,
    Message,
    NoProviderConfigured,
    ProviderAuthError,
    ProviderUnavailable,
    StreamEvent,
    TextDelta,
    UnknownModel,
)
from atom.llm.router import CircuitBreaker, ProviderEntry, RetryPolicy, RoutedStream, Router
from tests.llm.conftest import ANTHROPIC_KEY, OPENAI_KEY
from tests.support.llm_servers import AnthropicServer, OpenAIServer, error_reply, text_reply

FAST = RetryPolicy(attempts_per_provider=2, base_delay=0.01, max_delay=0.02, retry_after_cap=0.05)
HELLO = (Message("user", "hi"),)


class Clock:
    """An injected clock for the breaker's cool-down."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def entries(openai_server: OpenAIServer, anthropic_server: AnthropicServer) -> AsyncIterator[list[ProviderEntry]]:
    first = build_provider(
        kind="openai", name="primary", base_url=openai_server.base_url, api_key=OPENAI_KEY, timeout=1.5
    )
    second = build_provider(
        kind="anthropic", name="backup", base_url=anthropic_server.base_url, api_key=ANTHROPIC_KEY, timeout=1.5
    )
    yield [
        ProviderEntry("primary", first, ("gpt-small", "gpt-big")),
        ProviderEntry("backup", second, ("claude-small",)),
    ]
    await first.aclose()
    await second.aclose()


async def text_of(stream: RoutedStream) -> str:
    events: list[StreamEvent] = [e async for e in stream]
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_rate_limited_then_success_is_retried_on_the_same_provider(
    entries: list[ProviderEntry], openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    openai_server.queue(error_reply(429, retry_after=0), text_reply("after retry"))
    stream = Router(entries, retry=FAST).stream(HELLO)
    assert await text_of(stream) == "after retry"
    assert (stream.provider, stream.model) == ("primary", "gpt-small")
    assert [a.outcome for a in stream.attempts] == ["LLM_PROVIDER_RATE_LIMITED", "ok"]
    assert len(openai_server.requests) == 2 and not anthropic_server.requests


async def test_server_error_falls_back_to_the_next_provider(
    entries: list[ProviderEntry], openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    openai_server.queue(error_reply(500), error_reply(503))
    anthropic_server.queue(text_reply("from backup"))
    stream = Router(entries, retry=FAST).stream(HELLO)
    assert await text_of(stream) == "from backup"
    assert (stream.provider, stream.model) == ("backup", "claude-small")
    assert [(a.provider, a.outcome) for a in stream.attempts] == [
        ("primary", "LLM_PROVIDER_UNAVAILABLE"),
        ("primary", "LLM_PROVIDER_UNAVAILABLE"),
        ("backup", "ok"),
    ]
    assert anthropic_server.last_request.body["model"] == "claude-small"


async def test_timeout_falls_back(
    entries: list[ProviderEntry], openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    openai_server.queue(text_reply("late", delay_before=5.0))
    anthropic_server.queue(text_reply("on time"))
    stream = Router(entries, retry=RetryPolicy(attempts_per_provider=1)).stream(HELLO)
    assert await text_of(stream) == "on time"
    assert stream.attempts[0].outcome == "LLM_PROVIDER_TIMEOUT"


async def test_failure_after_text_streamed_is_not_spliced_with_another_answer(
    entries: list[ProviderEntry], openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    openai_server.queue(text_reply("Half ", "an answer", disconnect_after=2))
    stream = Router(entries, retry=FAST).stream(HELLO)
    with pytest.raises(ProviderUnavailable) as caught:
        await text_of(stream)
    assert caught.value.partial_text == "Half "
    assert not anthropic_server.requests


async def test_auth_error_is_not_retried_nor_failed_over(
    openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    wrong = build_provider(
        kind="openai", name="primary", base_url=openai_server.base_url, api_key="sk-bad", timeout=1.5
    )
    good = build_provider(
        kind="anthropic", name="backup", base_url=anthropic_server.base_url, api_key=ANTHROPIC_KEY, timeout=1.5
    )
    router = Router([ProviderEntry("primary", wrong, ("m1",)), ProviderEntry("backup", good, ("m2",))], retry=FAST)
    with pytest.raises(ProviderAuthError):
        await text_of(router.stream(HELLO))
    assert len(openai_server.requests) == 1 and not anthropic_server.requests
    await wrong.aclose()
    await good.aclose()


async def test_every_provider_failing_is_one_clear_error(
    entries: list[ProviderEntry], openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    openai_server.default = error_reply(500)
    anthropic_server.default = error_reply(529, error_type="overloaded_error")
    with pytest.raises(AllProvidersFailed) as caught:
        await text_of(Router(entries, retry=FAST).stream(HELLO))
    assert [a["provider"] for a in caught.value.details["attempts"]] == ["primary", "primary", "backup", "backup"]
    assert isinstance(caught.value.last_error, ProviderUnavailable)


async def test_circuit_breaker_skips_a_failing_provider_until_the_cool_down_passes(
    entries: list[ProviderEntry], openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown=30, clock=clock)
    router = Router(entries, retry=FAST, breaker=breaker)
    openai_server.default = error_reply(500)
    anthropic_server.default = text_reply("backup answer")

    first = router.stream(HELLO)
    assert await text_of(first) == "backup answer"
    assert breaker.state("primary") == "open"
    assert len(openai_server.requests) == 2

    second = router.stream(HELLO)
    assert await text_of(second) == "backup answer"
    assert second.attempts[0].outcome == "circuit_open"
    assert len(openai_server.requests) == 2  # skipped: no request reached it

    clock.now += 31  # cool-down over: one trial call goes through (half-open), and it now succeeds
    openai_server.default = text_reply("primary is back")
    third = router.stream(HELLO)
    assert await text_of(third) == "primary is back"
    assert breaker.state("primary") == "closed"


async def test_model_choice_explicit_then_agent_then_complexity_tier(entries: list[ProviderEntry]) -> None:
    router = Router(entries, tier_models={"simple": "gpt-small", "advanced": "gpt-big"})
    hard = (
        Message(
            "user",
            "Design a distributed, scalable architecture and prove the algorithm's concurrency and "
            "security tradeoff; optimize performance and analyze the regression benchmark.",
        ),
    )
    assert router.choose_model(HELLO) == ("gpt-small", "tier:simple")
    assert router.choose_model(hard) == ("gpt-big", "tier:complex")  # complex is unmapped: the next tier up
    assert router.choose_model(hard, agent_model="claude-small") == ("claude-small", "agent")
    assert router.choose_model(hard, model="gpt-small", agent_model="claude-small") == ("gpt-small", "explicit")
    with pytest.raises(UnknownModel) as caught:
        router.choose_model(HELLO, model="no-such-model")
    assert caught.value.status_code == 422
    assert Router(entries).choose_model(HELLO) == ("gpt-small", "default")


async def test_no_provider_is_a_clear_error_saying_how_to_add_one() -> None:
    with pytest.raises(NoProviderConfigured) as caught:
        Router([]).stream(HELLO)
    assert "atom-os llm add" in caught.value.message and "/api/llm/providers" in caught.value.message


def test_complexity_tiers_from_length_code_and_vocabulary() -> None:
    assert classify_text("What time is it?") == Tier.SIMPLE
    assert classify_text("Please refactor this function:\n```python\ndef f(x):\n    return x\n```") == Tier.MODERATE
    long_code = "Optimize and debug this algorithm for performance:\n" + "```\n" + "x = 1;\n" * 50 + "```"
    assert classify_text(long_code) in {Tier.COMPLEX, Tier.ADVANCED}
    essay = " ".join(["word"] * 500) + " security architecture distributed concurrency proof"
    assert classify_text(essay) == Tier.ADVANCED
