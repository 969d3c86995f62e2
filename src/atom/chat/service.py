"""Chat sessions, messages and execution records (keyword-only, session first; flushes, never commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.chat.models import AgentExecution, ChatMessage, ChatSession, ExecutionStatus
from atom.db.base import utcnow
from atom.errors import NotFound
from atom.llm.providers.base import Message, ToolCall
from atom.pagination import paginate
from atom.security.models import Role
from atom.security.principal import Principal


async def create_session(*, session: AsyncSession, agent_ref: str, user_id: str | None, title: str = "") -> ChatSession:
    agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
    row = ChatSession(agent_id=agent.id, user_id=user_id, title=title)
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.user(user_id) if user_id else audit.Actor.system(),
        action="chat.session.create",
        resource_type="chat_session",
        resource_id=row.id,
        details={"agent_id": agent.id},
    )
    return row


async def get_session(*, session: AsyncSession, session_id: str, reader: Principal | None = None) -> ChatSession:
    """A conversation is its author's: with `reader`, anyone else but an admin gets the same 404 as for
    a session that does not exist (its existence is not revealed)."""
    row = await session.get(ChatSession, session_id)
    if row is None or (reader is not None and not may_read(reader, row)):
        raise NotFound(
            f"No chat session with id {session_id!r}.",
            code="CHAT_SESSION_NOT_FOUND",
            details={"session_id": session_id},
        )
    return row


def may_read(reader: Principal, row: ChatSession) -> bool:
    return row.user_id == reader.user_id or reader.has_role(Role.ADMIN)


def sessions_visible_to(reader: Principal) -> str | None:
    """The user whose sessions `reader` lists: their own; an admin's: everyone's (None)."""
    return None if reader.has_role(Role.ADMIN) else reader.user_id


async def list_sessions(
    *, session: AsyncSession, agent_id: str | None, user_id: str | None, limit: int, cursor: str | None
) -> tuple[list[ChatSession], str | None]:
    stmt = select(ChatSession)
    if agent_id is not None:
        stmt = stmt.where(ChatSession.agent_id == agent_id)
    if user_id is not None:
        stmt = stmt.where(ChatSession.user_id == user_id)
    return await paginate(session, stmt, id_column=ChatSession.id, limit=limit, cursor=cursor)


async def add_message(
    *,
    session: AsyncSession,
    session_id: str,
    execution_id: str | None,
    message: Message,
) -> ChatMessage:
    row = ChatMessage(
        session_id=session_id,
        execution_id=execution_id,
        role=message.role,
        content=message.content,
        tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls],
        tool_call_id=message.tool_call_id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def messages(*, session: AsyncSession, session_id: str, limit: int) -> list[ChatMessage]:
    """The newest `limit` messages of a session, oldest first."""
    rows = await session.scalars(
        select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.id.desc()).limit(limit)
    )
    return list(reversed(rows.all()))


def to_message(row: ChatMessage) -> Message:
    calls = tuple(
        ToolCall(id=c["id"], name=c["name"], arguments=dict(c.get("arguments") or {})) for c in row.tool_calls
    )
    role: Any = row.role
    return Message(role=role, content=row.content, tool_calls=calls, tool_call_id=row.tool_call_id)


async def get_execution(*, session: AsyncSession, execution_id: str, reader: Principal | None = None) -> AgentExecution:
    """With `reader`: a run of someone else's chat session is hidden like the session (404)."""
    row = await session.get(AgentExecution, execution_id, populate_existing=True)
    if row is None or (reader is not None and not may_read_execution(reader, row)):
        raise NotFound(
            f"No agent execution with id {execution_id!r}.",
            code="EXECUTION_NOT_FOUND",
            details={"execution_id": execution_id},
        )
    return row


def may_read_execution(reader: Principal, row: AgentExecution) -> bool:
    """Runs of a chat session follow the session's privacy; other runs (execute, automated) are the
    operational log every viewer reads."""
    return row.session_id is None or row.user_id == reader.user_id or reader.has_role(Role.ADMIN)


async def list_executions(
    *,
    session: AsyncSession,
    agent_id: str | None,
    session_id: str | None,
    status: ExecutionStatus | None,
    limit: int,
    cursor: str | None,
    reader: Principal | None = None,
) -> tuple[list[AgentExecution], str | None]:
    stmt = select(AgentExecution)
    if reader is not None and not reader.has_role(Role.ADMIN):
        stmt = stmt.where(or_(AgentExecution.session_id.is_(None), AgentExecution.user_id == reader.user_id))
    if agent_id is not None:
        stmt = stmt.where(AgentExecution.agent_id == agent_id)
    if session_id is not None:
        stmt = stmt.where(AgentExecution.session_id == session_id)
    if status is not None:
        stmt = stmt.where(AgentExecution.status == status.value)
    return await paginate(session, stmt, id_column=AgentExecution.id, limit=limit, cursor=cursor)


async def get_message(
    *, session: AsyncSession, message_id: str, reader: Principal | None = None
) -> tuple[ChatMessage, ChatSession]:
    """A message and its session; hidden like its session (404) from a reader who may not see it."""
    row = await session.get(ChatMessage, message_id)
    if row is None:
        raise NotFound(f"No chat message {message_id!r}.", code="MESSAGE_NOT_FOUND", details={"message_id": message_id})
    try:
        chat = await get_session(session=session, session_id=row.session_id, reader=reader)
    except NotFound:
        raise NotFound(
            f"No chat message {message_id!r}.", code="MESSAGE_NOT_FOUND", details={"message_id": message_id}
        ) from None
    return row, chat


async def count_executions(*, session: AsyncSession, agent_id: str, since: datetime) -> int:
    stmt = select(func.count(AgentExecution.id)).where(
        AgentExecution.agent_id == agent_id, AgentExecution.started_at >= since
    )
    return int((await session.scalar(stmt)) or 0)


async def execution_statuses(*, session: AsyncSession, execution_ids: list[str]) -> dict[str, str]:
    if not execution_ids:
        return {}
    stmt = select(AgentExecution.id, AgentExecution.status).where(AgentExecution.id.in_(execution_ids))
    return {row.id: row.status for row in (await session.execute(stmt)).all()}


async def messages_of_executions(*, session: AsyncSession, execution_ids: list[str]) -> dict[str, str]:
    """The messages of these executions: message id -> execution id."""
    if not execution_ids:
        return {}
    stmt = select(ChatMessage.id, ChatMessage.execution_id).where(ChatMessage.execution_id.in_(execution_ids))
    return {row.id: str(row.execution_id) for row in (await session.execute(stmt)).all()}
