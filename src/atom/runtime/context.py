"""What a tool may know about the run calling it (set by the agent runtime around each tool call).

Tool handlers take only their validated params; the few that need the run (`delegate_to_agent`
runs another agent; `http_request` reads the settings) read `current_tool_context`. Outside the
runtime, the plan executor (an approved proposal, a supervised plan) and the workflow engine set it
too, as the agent the plan or run belongs to; with no context at all they fall back or refuse.
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
    execution_id: str  # the agent run's; a workflow step's id; the proposal's or supervision session's id
    depth: int
    delegate: Delegate | None = None
    session_id: str | None = None  # the chat session of the run, if any (canvases open in it)
    db: Database | None = None
    workflow_run_id: str | None = None  # set when a workflow step runs the tool
    # Set by the plan executor from the approved step (`PlanStep.pin`): the handler runs exactly that or refuses.
    pin: dict[str, Any] | None = None


current_tool_context: ContextVar[ToolContext | None] = ContextVar("atom_tool_context", default=None)
