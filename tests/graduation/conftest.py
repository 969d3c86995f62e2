"""Graduation tests: real agent runs (scripted OpenAI-wire server) remembered by the real memory domain."""

from tests.chat.conftest import chat_app, llm_server
from tests.memory.conftest import clock, local_embedder, memory

__all__ = ["chat_app", "clock", "llm_server", "local_embedder", "memory"]
