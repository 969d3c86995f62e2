"""Provider adapters and the factory that builds one from a stored config."""

from __future__ import annotations

import sys
from typing import Final

from atom import heap
from atom.errors import InvalidInput
from atom.llm.providers.base import ChatProvider

# kind -> what it speaks. `openai` also covers DeepSeek, Gemini's OpenAI-compatible endpoint and
# local servers (Ollama, llama.cpp, vLLM): they differ only by base URL.
KINDS: Final[dict[str, str]] = {
    "openai": "OpenAI chat completions API (OpenAI, DeepSeek, Gemini compat, Ollama, llama.cpp, vLLM)",
    "anthropic": "Anthropic Messages API",
}

DEFAULT_BASE_URLS: Final[dict[str, str]] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


def build_provider(*, kind: str, name: str, base_url: str, api_key: str, timeout: float) -> ChatProvider:
    # The SDKs are imported on first use: they take seconds to import, and every `atom-os` command
    # and server start would otherwise pay for them.
    if kind == "openai":
        first = _ADAPTERS["openai"] not in sys.modules
        from atom.llm.providers.openai_compat import OpenAICompatProvider

        _settle_after_import(first)
        return OpenAICompatProvider(name=name, base_url=base_url, api_key=api_key, timeout=timeout)
    if kind == "anthropic":
        first = _ADAPTERS["anthropic"] not in sys.modules
        from atom.llm.providers.anthropic import AnthropicProvider

        _settle_after_import(first)
        return AnthropicProvider(name=name, base_url=base_url, api_key=api_key, timeout=timeout)
    raise InvalidInput(
        f"Unknown LLM provider kind {kind!r}; use one of: {', '.join(KINDS)}.",
        code="LLM_UNKNOWN_KIND",
        details={"kind": kind, "kinds": list(KINDS)},
    )


_ADAPTERS: Final[dict[str, str]] = {
    "openai": "atom.llm.providers.openai_compat",
    "anthropic": "atom.llm.providers.anthropic",
}


def _settle_after_import(first: bool) -> None:
    """An SDK's first import brings ~170,000 objects the process keeps (its classes and models): frozen
    here, once, so the full collections that pause every live chat do not walk them (`heap.settle`).
    Without it a full collection took ~150 ms on a 2-core machine with 200 chats streaming."""
    if first:
        heap.settle()
