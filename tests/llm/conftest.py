"""Fixtures of the LLM tests: scripted OpenAI and Anthropic servers on 127.0.0.1 and fast settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.llm_servers import AnthropicServer, OpenAIServer

OPENAI_KEY = "sk-test-openai-5f2c9e61d4b3a7"
ANTHROPIC_KEY = "sk-ant-test-0b9d2e7c4a1f58"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "llm_timeout_s": 1.5,
        "llm_backoff_base_s": 0.01,
        "llm_backoff_max_s": 0.05,
        "llm_breaker_cooldown_s": 600.0,
        "llm_prices": {"gpt-test": {"input_per_mtok": 1000.0, "output_per_mtok": 2000.0}},
    }


@pytest.fixture
async def openai_server() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer(api_key=OPENAI_KEY) as server:
        yield server


@pytest.fixture
async def anthropic_server() -> AsyncIterator[AnthropicServer]:
    async with AnthropicServer(api_key=ANTHROPIC_KEY) as server:
        yield server
