"""Fitting a conversation into the model's context window (the policy is documented in docs/chat.md).

Size is estimated (about 4 characters per token, plus a small per-message overhead); the limit is
ATOM_CHAT_CONTEXT_MAX_TOKENS. When the conversation is over it:

1. the system message and the current turn (the newest user message and everything after it:
   this run's tool calls and results) are never removed;
2. the oldest earlier plain messages (user text, assistant text) are removed first, oldest first;
3. then the oldest earlier tool exchanges (an assistant message with tool calls together with its
   tool results: a result is never sent without its call) are removed, oldest first;
4. if what is left is still over the limit, the run is refused with CONTEXT_TOO_LONG.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from atom.errors import InvalidInput
from atom.llm.providers.base import Message

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(message: Message) -> int:
    size = len(message.content)
    for call in message.tool_calls:
        size += len(call.name) + len(json.dumps(call.arguments))
    return MESSAGE_OVERHEAD_TOKENS + size // CHARS_PER_TOKEN


def total_tokens(messages: Sequence[Message]) -> int:
    return sum(estimate_tokens(m) for m in messages)


def _units(earlier: list[Message]) -> list[list[int]]:
    """Index groups of the earlier messages: one plain message, or a tool exchange (call + its results)."""
    units: list[list[int]] = []
    i = 0
    while i < len(earlier):
        message = earlier[i]
        if message.role == "assistant" and message.tool_calls:
            ids = {c.id for c in message.tool_calls}
            group = [i]
            j = i + 1
            while j < len(earlier) and earlier[j].role == "tool" and earlier[j].tool_call_id in ids:
                group.append(j)
                j += 1
            units.append(group)
            i = j
        else:
            units.append([i])
            i += 1
    return units


def fit(messages: Sequence[Message], limit: int) -> tuple[list[Message], int]:
    """The messages to send and how many were dropped; raises CONTEXT_TOO_LONG if they cannot fit."""
    messages = list(messages)
    if total_tokens(messages) <= limit:
        return messages, 0
    system = [m for m in messages[:1] if m.role == "system"]
    rest = messages[len(system) :]
    last_user = max((i for i, m in enumerate(rest) if m.role == "user"), default=len(rest))
    earlier, current = rest[:last_user], rest[last_user:]
    # An orphan tool result (its call already trimmed away earlier) can never be sent.
    units = [u for u in _units(earlier) if not (len(u) == 1 and earlier[u[0]].role == "tool")]
    plain = [u for u in units if len(u) == 1]
    exchanges = [u for u in units if len(u) > 1]
    keep = {i for u in units for i in u}
    budget = limit - total_tokens(system) - total_tokens(current)
    size = sum(estimate_tokens(earlier[i]) for i in keep)
    for unit in plain + exchanges:  # plain messages first, then tool exchanges, each oldest first
        if size <= budget:
            break
        for i in unit:
            keep.discard(i)
            size -= estimate_tokens(earlier[i])
    if size > budget or budget < 0:
        raise InvalidInput(
            f"The conversation does not fit the context window ({limit} tokens) even after trimming older "
            "turns; send a shorter message or start a new session.",
            code="CONTEXT_TOO_LONG",
            details={"limit": limit, "estimated_tokens": total_tokens(system) + total_tokens(current)},
        )
    kept = [earlier[i] for i in sorted(keep)]
    return system + kept + current, len(messages) - len(system) - len(kept) - len(current)
