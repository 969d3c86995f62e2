"""Canvases on the dashboard: the list, one canvas live (/canvases/{id}), the canvases of a chat session
(the panel on the chat page), and the sandboxed frame of a custom component.

The pages render an empty shell; `static/js/canvas.js` draws each canvas from its live view
(`/live/canvases/{id}`, `/live/chat/{session_id}/canvases`, `/live/workflow-runs/{run_id}/canvases`,
`/live/agent-runs/{execution_id}/canvases`: the whole state, sent again on every change)
with DOM APIs and textContent only. A custom component is shown only inside
`<iframe sandbox="allow-scripts" src="/canvases/{id}/frame">`, whose response carries its own CSP
(components.frame_policy): an opaque origin, no network, no parent, scripts only by their approved hash.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from atom.canvas import components as canvas_components
from atom.canvas import reads as canvas_reads
from atom.canvas import service as canvas_service
from atom.chat import service as chat_service
from atom.deps import SessionDep
from atom.web import live
from atom.web.auth import PageRouter, ViewerPage
from atom.web.ui import render
from atom.workflows import service as workflows_service

router = PageRouter()

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
RECENT = 100


@router.get("/canvases")
async def index(request: Request, user: ViewerPage, session: SessionDep) -> Response:
    rows = [
        c
        for c in await canvas_reads.recent(session=session, limit=RECENT)
        if canvas_service.may_read(user.principal, c)
    ]
    return render(request, "canvases.html", {"title": "Canvases", "canvases": rows})


@router.get("/canvases/{canvas_id}")
async def canvas_page(request: Request, canvas_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    canvas = await canvas_service.get(session=session, canvas_id=canvas_id, reader=user.principal)
    return render(request, "canvas.html", {"title": canvas.title or f"Canvas ({canvas.kind})", "canvas": canvas})


@router.get("/live/canvases/{canvas_id}")
async def canvas_events(request: Request, canvas_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    """One canvas's whole view, sent again whenever it changes."""
    await canvas_service.get(session=session, canvas_id=canvas_id, reader=user.principal)

    async def compute(s: AsyncSession) -> dict[str, Any]:
        return {"canvases": [await canvas_reads.dashboard_view(session=s, canvas_id=canvas_id)]}

    return live.watch(request, f"canvas:{canvas_id}", (canvas_service.topic_of(canvas_id),), compute)


@router.get("/live/chat/{session_id}/canvases")
async def session_canvas_events(
    request: Request, session_id: IdPath, user: ViewerPage, session: SessionDep
) -> Response:
    """The canvases the agent opened in this conversation (its author's, like the conversation)."""
    await chat_service.get_session(session=session, session_id=session_id, reader=user.principal)

    async def compute(s: AsyncSession) -> dict[str, Any]:
        return {"canvases": await canvas_reads.session_views(session=s, session_id=session_id)}

    return live.watch(request, f"chat-canvases:{session_id}", (canvas_service.session_topic(session_id),), compute)


@router.get("/live/workflow-runs/{run_id}/canvases")
async def workflow_run_canvas_events(
    request: Request, run_id: IdPath, user: ViewerPage, session: SessionDep
) -> Response:
    """The canvases a workflow run's steps opened: one of the run page's views."""
    await workflows_service.get_run(session=session, run_id=run_id)  # unknown run -> 404 before streaming

    async def compute(s: AsyncSession) -> dict[str, Any]:
        return {"canvases": await canvas_reads.run_views(session=s, reader=user.principal, workflow_run_id=run_id)}

    def about_this_run(payload: dict[str, Any]) -> bool:
        return payload.get("workflow_run_id") == run_id

    return live.watch(
        request, f"run-canvases:{run_id}:{user.principal.user_id}", (canvas_service.TOPIC,), compute, about_this_run
    )


@router.get("/live/agent-runs/{execution_id}/canvases")
async def agent_run_canvas_events(request: Request, execution_id: IdPath, user: ViewerPage) -> Response:
    """The canvases an agent run opened (those the reader may see): one of the run page's views."""

    async def compute(s: AsyncSession) -> dict[str, Any]:
        return {"canvases": await canvas_reads.run_views(session=s, reader=user.principal, execution_id=execution_id)}

    def about_this_run(payload: dict[str, Any]) -> bool:
        return payload.get("execution_id") == execution_id

    return live.watch(
        request,
        f"agent-run-canvases:{execution_id}:{user.principal.user_id}",
        (canvas_service.TOPIC,),
        compute,
        about_this_run,
    )


@router.get("/canvases/{canvas_id}/frame")
async def component_frame(request: Request, canvas_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    """The custom component's document, for the sandboxed iframe only (its own CSP, framed by us only)."""
    await canvas_service.get(session=session, canvas_id=canvas_id, reader=user.principal)
    canvas, version = await canvas_reads.frame_version(session=session, canvas_id=canvas_id)
    html, policy = canvas_components.frame_document(version, canvas.content.get("props", {}))
    response = HTMLResponse(html)
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
    return response
