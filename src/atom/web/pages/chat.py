"""Chat: pick an agent, talk to it, see its tokens stream and its tool calls with their governance outcome.

The page is server-rendered (the session's history, autoescaped); `static/js/chat.js` sends a message
to `POST /api/chat/sessions/{id}/messages` with the session cookie and the CSRF header, and reads the
answer's server-sent events (docs/chat.md, event schema) as they arrive. Text is always inserted with
`textContent`: the small markdown renderer in chat.js builds elements, never HTML strings.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import Response

from atom.agents import reads as agents_reads
from atom.agents import service as agents_service
from atom.agents.models import AgentStatus
from atom.chat import service as chat_service
from atom.deps import SessionDep, SettingsDep
from atom.errors import NotFound
from atom.web.auth import OperatorForm, PageRouter, ViewerPage
from atom.web.ui import redirect, render

router = PageRouter()

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
MAX_AGENTS = 200
MAX_SESSIONS = 50
MAX_TITLE = 200


async def _index_context(user: ViewerPage, session: SessionDep) -> dict[str, object]:
    agents, _ = await agents_service.list_agents(
        session=session, limit=MAX_AGENTS, cursor=None, status=AgentStatus.ACTIVE
    )
    sessions, _ = await chat_service.list_sessions(
        session=session,
        agent_id=None,
        user_id=chat_service.sessions_visible_to(user.principal),
        limit=MAX_SESSIONS,
        cursor=None,
    )
    names = await agents_reads.names_by_id(session=session, agent_ids={s.agent_id for s in sessions})
    return {"title": "Chat", "agents": agents, "sessions": list(reversed(sessions)), "names": names}


@router.get("/chat")
async def index(request: Request, user: ViewerPage, session: SessionDep) -> Response:
    return render(request, "chat_index.html", await _index_context(user, session))


@router.post("/chat")
async def start(request: Request, form_user: OperatorForm, session: SessionDep) -> Response:
    """A new conversation with the chosen agent (operators: a chat runs the agent)."""
    user, form = form_user
    agent_id = form.get("agent")[:64]
    title = form.get("title").strip()
    errors: dict[str, str] = {}
    agent = await agents_service.find_agent(session=session, agent_id=agent_id) if agent_id else None
    if agent is None or agent.status != AgentStatus.ACTIVE.value:
        errors["agent"] = "Choose an active agent."
    if len(title) > MAX_TITLE:
        errors["title"] = f"At most {MAX_TITLE} characters."
    if errors or agent is None:
        context = await _index_context(user, session)
        context.update(errors=errors, values={"agent": agent_id, "title": title})
        return render(request, "chat_index.html", context, status_code=422)
    row = await chat_service.create_session(
        session=session, agent_ref=agent.id, user_id=user.principal.user_id, title=title or f"Chat with {agent.name}"
    )
    return redirect(f"/chat/{row.id}")


@router.get("/chat/{session_id}")
async def conversation(
    request: Request, session_id: IdPath, user: ViewerPage, session: SessionDep, settings: SettingsDep
) -> Response:
    chat = await chat_service.get_session(session=session, session_id=session_id, reader=user.principal)
    agent = await agents_service.find_agent(session=session, agent_id=chat.agent_id)
    if agent is None:
        raise NotFound("The agent of this chat is gone.", code="AGENT_NOT_FOUND")
    rows = await chat_service.messages(session=session, session_id=session_id, limit=settings.chat_history_messages)
    shown = [m for m in rows if m.role in ("user", "assistant") and (m.content or m.tool_calls)]
    return render(
        request,
        "chat.html",
        {"title": chat.title or f"Chat with {agent.name}", "chat": chat, "agent": agent, "messages": shown},
    )
