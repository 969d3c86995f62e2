"""The adapters over the official SDKs, pointed at servers that speak each provider's wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from atom.llm.providers import build_provider
from atom.llm.providers.base import (
    ChatProvider,
    ChatRequest,
    Done,
    Message,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from tests.llm.conftest import ANTHROPIC_KEY, OPENAI_KEY
from tests.support.llm_servers import (
    AnthropicServer,
    OpenAIServer,
    ScriptedLLMServer,
    ScriptedToolCall,
    error_reply,
    text_reply,
    tool_reply,
)

WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@dataclass
class Pair:
    kind: str
    server: ScriptedLLMServer
    provider: ChatProvider  # patient: a loaded machine must not turn a normal answer into a timeout
    impatient: ChatProvider  # for the tests of timeouts


@pytest.fixture(params=["openai", "anthropic"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    kind = str(request.param)
    server: ScriptedLLMServer
    if kind == "openai":
        server, key = OpenAIServer(api_key=OPENAI_KEY), OPENAI_KEY
    else:
        server, key = AnthropicServer(api_key=ANTHROPIC_KEY), ANTHROPIC_KEY
    async with server:
        provider = build_provider(kind=kind, name=f"{kind}-main", base_url=server.base_url, api_key=key, timeout=30)
        impatient = build_provider(kind=kind, name=f"{kind}-main", base_url=server.base_url, api_key=key, timeout=1.5)
        yield Pair(kind, server, provider, impatient)
        await provider.aclose()
        await impatient.aclose()


def request(*messages: Message, tools: tuple[ToolSpec, ...] = ()) -> ChatRequest:
    return ChatRequest(model="test-model", messages=messages or (Message("user", "Hello?"),), tools=tools)


async def collect(provider: ChatProvider, req: ChatRequest | None = None) -> list[StreamEvent]:
    return [event async for event in provider.stream_chat(req or request())]


async def failure(provider: ChatProvider, req: ChatRequest | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await collect(provider, req)
    return caught.value


async def test_streamed_text_arrives_chunk_by_chunk_with_usage(pair: Pair) -> None:
    pair.server.queue(text_reply("Hel", "lo", " world", usage=(21, 3)))
    events = await collect(pair.provider)
    assert events == [TextDelta("Hel"), TextDelta("lo"), TextDelta(" world"), Usage(21, 3), Done("stop")]


async def test_tool_calls_split_across_chunks_are_assembled(pair: Pair) -> None:
    pair.server.queue(
        tool_reply(
            ScriptedToolCall("get_weather", ['{"ci', 'ty": "Par', 'is"}'], id="call_a"),
            ScriptedToolCall("get_weather", ["", '{"city"', ': "Oslo"}'], id="call_b"),
            text=["Let me ", "check."],
        )
    )
    events = await collect(pair.provider, request(tools=(WEATHER,)))
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Let me "), TextDelta("check.")]
    assert [e for e in events if isinstance(e, ToolCall)] == [
        ToolCall("call_a", "get_weather", {"city": "Paris"}),
        ToolCall("call_b", "get_weather", {"city": "Oslo"}),
    ]
    assert events[-1] == Done("tool_calls")
    body = pair.server.last_request.body
    tools = body["tools"]
    if pair.kind == "openai":
        assert (
            tools[0]["function"]["name"] == "get_weather" and tools[0]["function"]["parameters"] == WEATHER.parameters
        )
        assert body["stream_options"] == {"include_usage": True}
    else:
        assert tools[0] == {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER.parameters,
        }


async def test_history_with_system_and_tool_results_is_sent_in_the_provider_format(pair: Pair) -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    history = (
        Message("system", "Be brief."),
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", '{"temp_c": 21}', tool_call_id="call_1", name="get_weather"),
    )
    pair.server.queue(text_reply("21 C."))
    await collect(pair.provider, request(*history, tools=(WEATHER,)))
    body = pair.server.last_request.body
    if pair.kind == "openai":
        assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool"]
        assert body["messages"][2]["tool_calls"][0]["function"] == {
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        }
        assert body["messages"][3]["tool_call_id"] == "call_1"
    else:
        assert body["system"] == "Be brief."
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert body["messages"][1]["content"][0] == {
            "type": "tool_use",
            "id": "call_1",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
        assert body["messages"][2]["content"][0]["type"] == "tool_result"
        assert body["messages"][2]["content"][0]["tool_use_id"] == "call_1"


async def test_rate_limit_is_retryable_with_retry_after(pair: Pair) -> None:
    pair.server.queue(error_reply(429, "slow down", retry_after=7))
    error = await failure(pair.provider)
    assert isinstance(error, ProviderRateLimited) and error.retryable
    assert error.retry_after == 7.0
    assert pair.provider.name in error.message


async def test_server_error_is_retryable_unavailable(pair: Pair) -> None:
    pair.server.queue(error_reply(500, "boom"))
    error = await failure(pair.provider)
    assert isinstance(error, ProviderUnavailable) and error.retryable
    assert error.details["provider"] == pair.provider.name


async def test_malformed_chunk_is_a_bad_response_keeping_partial_text(pair: Pair) -> None:
    # OpenAI: role chunk, "Par", then the broken chunk. Anthropic: message_start, block start, ping, "Par".
    pair.server.queue(text_reply("Par", "tial", malformed_after=2 if pair.kind == "openai" else 4))
    error = await failure(pair.provider)
    assert isinstance(error, ProviderBadResponse) and not error.retryable
    assert error.partial_text == "Par"


async def test_mid_stream_disconnect_keeps_partial_text(pair: Pair) -> None:
    pair.server.queue(text_reply("Once ", "upon ", "a time", disconnect_after=3 if pair.kind == "openai" else 5))
    error = await failure(pair.provider)
    assert isinstance(error, ProviderUnavailable)
    assert error.partial_text == "Once upon "


async def test_slow_provider_times_out(pair: Pair) -> None:
    pair.server.queue(text_reply("late", delay_before=5.0))
    error = await failure(pair.impatient)
    assert isinstance(error, ProviderTimeout) and error.retryable


async def test_provider_that_stalls_mid_stream_times_out_with_partial_text(pair: Pair) -> None:
    pair.server.queue(text_reply("Hello", " there", stall_after=2 if pair.kind == "openai" else 4, stall_for=5.0))
    error = await failure(pair.impatient)
    assert isinstance(error, ProviderTimeout)
    assert error.partial_text == "Hello"


async def test_wrong_key_is_an_auth_error_naming_the_provider_not_the_key(pair: Pair) -> None:
    wrong = "sk-wrong-key-3e8a1b6f7c2d"
    provider = build_provider(kind=pair.kind, name="acme-llm", base_url=pair.server.base_url, api_key=wrong, timeout=30)
    try:
        error = await failure(provider)
    finally:
        await provider.aclose()
    assert isinstance(error, ProviderAuthError) and not error.retryable
    assert "acme-llm" in error.message and "401" in error.message
    assert wrong not in f"{error.message} {error.details} {error!r} {error.args}"


async def test_bad_tool_arguments_json_is_a_bad_response(pair: Pair) -> None:
    pair.server.queue(tool_reply(ScriptedToolCall("get_weather", ['{"city": "Par'])))
    error = await failure(pair.provider, request(tools=(WEATHER,)))
    assert isinstance(error, ProviderBadResponse) and "get_weather" in error.message


async def test_anthropic_error_event_mid_stream_is_unavailable(anthropic_server: AnthropicServer) -> None:
    anthropic_server.queue(text_reply("Part", midstream_error="overloaded_error"))
    provider = build_provider(
        kind="anthropic", name="claude", base_url=anthropic_server.base_url, api_key=ANTHROPIC_KEY, timeout=30
    )
    try:
        error = await failure(provider)
    finally:
        await provider.aclose()
    assert isinstance(error, ProviderUnavailable) and error.partial_text == "Part"


async def test_openai_server_without_usage_gets_an_estimate(openai_server: OpenAIServer) -> None:
    openai_server.queue(text_reply("abcdefgh", usage=None))
    provider = build_provider(
        kind="openai", name="local", base_url=openai_server.base_url, api_key=OPENAI_KEY, timeout=30
    )
    try:
        events = await collect(provider)
    finally:
        await provider.aclose()
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.estimated and usage.output_tokens == 2 and usage.input_tokens > 0
    assert provider.count_tokens(request()) == usage.input_tokens
