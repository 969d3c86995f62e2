"""Where the agent runtime gets its model from: the LLM gateway over the configured providers.

`resolve_llm` returns a source whose `client(agent_id=..., execution_id=...)` gives the per-run
client (`atom.llm.gateway.LLMClient`: routing, fallback, budgets, usage and cost recorded). It
refuses at once, with how to add one, when no provider is configured, so a chat request fails
before anything starts. A provider added through the API is used by the next run (no restart).
`app.state.chat_llm`, when set, is used instead (an embedding application wiring its own router).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from atom.config import Settings
from atom.db.session import Database
from atom.llm.gateway import get_gateway
from atom.llm.providers.base import Message, NoProviderConfigured, ToolSpec
from atom.llm.router import NO_PROVIDER_MESSAGE


class ChatLLM(Protocol):
    """What the runtime calls: the router's / gateway client's `stream`, returning the routed events
    (iterable; `provider` and `model` name who answered; `cost_usd` when the gateway metered it)."""

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        model: str | None = None,
        agent_model: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> Any: ...


class LLMSource(Protocol):
    async def client(self, *, agent_id: str | None = None, execution_id: str | None = None) -> Any: ...


class FixedLLM:
    """A source that always hands out the same ChatLLM (an injected router)."""

    def __init__(self, llm: ChatLLM) -> None:
        self.llm = llm

    async def client(self, *, agent_id: str | None = None, execution_id: str | None = None) -> ChatLLM:
        return self.llm


async def resolve_llm(state: Any, db: Database, settings: Settings) -> LLMSource:
    """The LLM source for the next run; raises LLM_NO_PROVIDER (saying how to add one) when none is configured."""
    override = getattr(state, "chat_llm", None)
    if override is not None:
        return FixedLLM(override)
    gateway = get_gateway(state, db, settings)
    if not await gateway.entries():
        raise NoProviderConfigured(NO_PROVIDER_MESSAGE)
    return gateway
