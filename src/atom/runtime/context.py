"""What a tool may know about the run calling it (set by the agent runtime around each tool call).

Tool handlers take only their validated params; the few that need the run (`delegate_to_agent`
runs another agent; `http_request` reads the settings) read `current_tool_context`. Outside the
runtime (an approved proposal run by the plan executor) it is None and they fall back or refuse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from atom.config import Settings
from atom.db.session import Database

Delegate = Callable[[str, str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ToolContext:
    settings: Settings
    agent_id: str
    execution_id: str
    depth: int
    delegate: Delegate | None = None
    db: Database | None = None  # tools that keep records of their own (agent requests)


current_tool_context: ContextVar[ToolContext | None] = ContextVar("atom_tool_context", default=None)
