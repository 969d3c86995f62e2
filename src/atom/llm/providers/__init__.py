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


# kind -> the module of its adapter, imported on first use: the SDKs take seconds to import, and every
# `atom-os` command and server start would otherwise pay for them.
_ADAPTERS: Final[dict[str, str]] = {
    "openai": "atom.llm.providers.openai_compat",
    "anthropic": "atom.llm.providers.anthropic",
}


def build_provider(*, kind: str, name: str, base_url: str, api_key: str, timeout: float) -> ChatProvider:
    if kind not in _ADAPTERS:
        raise InvalidInput(
            f"Unknown LLM provider kind {kind!r}; use one of: {', '.join(KINDS)}.",
            code="LLM_UNKNOWN_KIND",
            details={"kind": kind, "kinds": list(KINDS)},
        )
    first_import = _ADAPTERS[kind] not in sys.modules
    provider: ChatProvider
    if kind == "openai":
        from atom.llm.providers.openai_compat import OpenAICompatProvider

        provider = OpenAICompatProvider(name=name, base_url=base_url, api_key=api_key, timeout=timeout)
    else:
        from atom.llm.providers.anthropic import AnthropicProvider

        provider = AnthropicProvider(name=name, base_url=base_url, api_key=api_key, timeout=timeout)
    if first_import:
        # The SDK brought ~170,000 objects the process keeps (its classes and models): frozen once, so
        # the full collections that pause every live chat do not walk them (`heap.settle`). Without it a
        # full collection took ~150 ms on a 2-core machine with 200 chats streaming.
        heap.settle()
    return provider
