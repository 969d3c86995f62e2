"""Feedback tests reuse the chat fixtures: real agent runs against the scripted OpenAI-wire server."""

from tests.chat.conftest import chat_app, llm_server

__all__ = ["chat_app", "llm_server"]
