"""Agents: the list with level, confidence and status; an agent's page with its confidence history
(chart from the ledger), level changes and executions; pause/resume/stop (operators), promote (approvers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.agents.models import AgentStatus
from atom.audit import service as audit
from atom.chat import service as chat_service
from atom.deps import DatabaseDep, SessionDep
from atom.errors import AtomError, Conflict, InvalidInput
from atom.governance.maturity import MaturityLevel
from atom.graduation import service as graduation
from atom.web.auth import ApproverForm, OperatorForm, PageRouter, ViewerPage, WebUser
from atom.web.charts import line_chart
from atom.web.ui import redirect, render

router = PageRouter()

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
HISTORY_POINTS = 500
MAX_REASON = 2000
STATUS_ACTIONS = {"pause": AgentStatus.PAUSED, "resume": AgentStatus.ACTIVE, "stop": AgentStatus.STOPPED}


@router.get("/agents")
async def agent_list(
    request: Request,
    user: ViewerPage,
    session: SessionDep,
    status: Annotated[str, Query(max_length=16)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    chosen = AgentStatus(status) if status in {s.value for s in AgentStatus} else None
    rows, next_cursor = await agents_service.list_agents(session=session, limit=50, cursor=cursor, status=chosen)
    return render(
        request,
        "agents.html",
        {
            "title": "Agents",
            "rows": rows,
            "status": chosen.value if chosen else "",
            "statuses": [s.value for s in AgentStatus],
            "next_cursor": next_cursor,
        },
    )


async def _page(
    request: Request,
    user: WebUser,
    session: AsyncSession,
    agent_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    agent = await agents_service.get_agent(session=session, agent_id=agent_id)
    events, _ = await agents_service.confidence_history(
        session=session, agent_id=agent_id, limit=HISTORY_POINTS, cursor=None
    )
    events.reverse()  # oldest first
    series = []
    if events:
        series.append((events[0].created_at, events[0].confidence_before))
    series += [(e.created_at, e.confidence_after) for e in events]
    settings = request.app.state.settings
    chart = line_chart(
        series,
        guides={
            "INTERN": settings.maturity_intern_threshold,
            "SUPERVISED": settings.maturity_supervised_threshold,
            "AUTONOMOUS": settings.maturity_autonomous_threshold,
        },
    )
    levels = await agents_service.level_history(session=session, agent_id=agent_id)
    executions, _ = await chat_service.list_executions(
        session=session, agent_id=agent_id, session_id=None, status=None, limit=20, cursor=None, reader=user.principal
    )
    current = MaturityLevel(agent.maturity_level)
    higher = [level.value for level in MaturityLevel if level.rank > current.rank]
    return render(
        request,
        "agent.html",
        {
            "title": agent.name,
            "agent": agent,
            "chart": chart,
            "ledger": list(reversed(events))[:20],
            "levels": list(reversed(levels)),
            "executions": executions,
            "higher": higher,
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status_code,
    )


@router.get("/agents/{agent_id}")
async def agent_page(request: Request, agent_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    return await _page(request, user, session, agent_id)


@router.post("/agents/{agent_id}/promote")
async def promote(request: Request, agent_id: IdPath, form_user: ApproverForm, db: DatabaseDep) -> Response:
    settings = request.app.state.settings
    user, form = form_user
    to_level, reason = form.get("to_level"), form.get("reason").strip()
    errors: dict[str, str] = {}
    if to_level not in {level.value for level in MaturityLevel}:
        errors["to_level"] = "Choose the level to promote to."
    if not reason:
        errors["promote_reason"] = "Say why the agent is ready."
    elif len(reason) > MAX_REASON:
        errors["promote_reason"] = f"At most {MAX_REASON} characters."
    if not errors:
        try:
            async with db.session_scope() as session:
                await graduation.promote(
                    session=session,
                    settings=settings,
                    agent_ref=agent_id,
                    to_level=MaturityLevel(to_level),
                    actor=audit.Actor.user(user.principal.user_id),
                    reason=reason,
                )
            return redirect(f"/agents/{agent_id}?flash=agent_promoted")
        except (InvalidInput, Conflict) as exc:  # not a promotion, or not ready (the gaps, in words)
            errors["to_level"] = exc.message
    async with db.session_scope() as session:
        return await _page(
            request,
            user,
            session,
            agent_id,
            errors=errors,
            values={"to_level": to_level, "promote_reason": reason[:MAX_REASON]},
            status_code=422,
        )


# After /promote: this route's {action} would otherwise match it first.
@router.post("/agents/{agent_id}/{action}")
async def change_status(
    request: Request,
    agent_id: IdPath,
    action: Annotated[str, Path(pattern="^(pause|resume|stop)$")],
    form_user: OperatorForm,
    db: DatabaseDep,
) -> Response:
    user, form = form_user
    reason = form.get("reason").strip()[:MAX_REASON] or None
    try:
        async with db.session_scope() as session:
            await agents_service.set_status(
                session=session,
                agent_id=agent_id,
                status=STATUS_ACTIONS[action],
                actor=audit.Actor.user(user.principal.user_id),
                reason=reason,
            )
    except AtomError as exc:
        if exc.status_code == 404:
            raise
        async with db.session_scope() as session:
            return await _page(request, user, session, agent_id, errors={"form": exc.message}, status_code=409)
    return redirect(f"/agents/{agent_id}?flash=agent_{action}")
