"""Canvas fixtures: call a canvas tool as an agent's run would (its tool context set)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from atom.config import Settings
from atom.db.session import Database
from atom.runtime import tools as runtime_tools
from atom.runtime.context import ToolContext, current_tool_context


@contextmanager
def acting_as(settings: Settings, db: Database, agent_id: str, session_id: str | None = None) -> Iterator[None]:
    token = current_tool_context.set(
        ToolContext(settings=settings, agent_id=agent_id, execution_id="exec", depth=0, session_id=session_id, db=db)
    )
    try:
        yield
    finally:
        current_tool_context.reset(token)


async def call(name: str, **params: Any) -> dict[str, Any]:
    """Run the registered tool's handler on validated params (governance is the runtime's, tested there)."""
    tool = runtime_tools.current().get(name)
    assert tool is not None, name
    return await tool.handler(tool.validate(params))
