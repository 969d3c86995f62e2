"""Scenario runs: the scripted OpenAI-wire server as the configured provider, tools that count their side
effects, and the real memory domain (for readiness when auto-promotion is on)."""

from tests.chat.conftest import chat_app, live, llm_server
from tests.memory.conftest import clock, local_embedder, memory
from tests.training.conftest import effects

__all__ = ["chat_app", "clock", "effects", "live", "llm_server", "local_embedder", "memory"]
