"""Chat: sessions, messages, agent executions, the governed tool-calling loop and streaming (docs/chat.md)."""
