"""The context-window trimming policy and the bounded per-client event channel."""

from __future__ import annotations

import pytest

from atom.chat.context import estimate_tokens, fit
from atom.chat.stream import ChannelOverflow, EventChannel
from atom.errors import InvalidInput
from atom.llm.providers.base import Message, ToolCall


def _conversation() -> list[Message]:
    call = ToolCall(id="c1", name="calculate", arguments={"expression": "1+1"})
    return [
        Message(role="system", content="be brief"),
        Message(role="user", content="old question " * 40),
        Message(role="assistant", content="", tool_calls=(call,)),
        Message(role="tool", content="2", tool_call_id="c1"),
        Message(role="assistant", content="old answer " * 40),
        Message(role="user", content="new question"),
    ]


def test_fits_unchanged_when_small() -> None:
    messages = _conversation()
    assert fit(messages, 10_000) == (messages, 0)


def test_trims_oldest_plain_messages_first_keeping_system_tool_results_and_current_turn() -> None:
    messages = _conversation()
    total = sum(estimate_tokens(m) for m in messages)
    kept, dropped = fit(messages, total - estimate_tokens(messages[1]))
    assert dropped == 1 and kept == [messages[0], *messages[2:]]
    kept, dropped = fit(messages, total - estimate_tokens(messages[1]) - estimate_tokens(messages[4]))
    assert kept == [messages[0], messages[2], messages[3], messages[5]] and dropped == 2
    kept, dropped = fit(messages, estimate_tokens(messages[0]) + estimate_tokens(messages[5]))
    assert kept == [messages[0], messages[5]] and dropped == 4  # the call and its result go together


def test_refuses_when_the_current_turn_alone_is_too_long() -> None:
    messages = [Message(role="system", content="s"), Message(role="user", content="x" * 4000)]
    with pytest.raises(InvalidInput) as refused:
        fit(messages, 100)
    assert refused.value.code == "CONTEXT_TOO_LONG"


async def test_channel_coalesces_tokens_for_a_lagging_client_and_loses_nothing() -> None:
    channel = EventChannel(capacity=4)
    for i in range(1000):
        channel.emit({"type": "token", "text": str(i % 10)})
    channel.emit({"type": "tool_call", "id": "1"})
    channel.emit({"type": "token", "text": "!"})
    channel.close()
    events = [e async for e in _drain(channel)]
    assert [e["type"] for e in events] == ["token", "tool_call", "token"]
    assert events[0]["text"] == "0123456789" * 100 and events[2]["text"] == "!"


async def test_channel_overflows_when_the_client_is_too_far_behind() -> None:
    channel = EventChannel(capacity=3)
    for i in range(3):
        channel.emit({"type": "tool_call", "id": str(i)})
    with pytest.raises(ChannelOverflow):
        channel.emit({"type": "tool_result", "id": "x"})
    assert channel.overflowed and channel.closed
    channel.emit({"type": "token", "text": "ignored"})  # a closed channel drops silently


async def _drain(channel: EventChannel):  # type: ignore[no-untyped-def]
    while (event := await channel.get()) is not None:
        yield event
