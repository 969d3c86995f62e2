"""Workflow runs: the list with status filters; a run's page with its timeline of steps (status, timings,
input, output, logs, retries) that updates live; cancel, retry and approve/reject a waiting approval.

The timeline's live source is `/live/workflow-runs/{id}` (`live.watch`: the whole run as JSON after every
run event); `static/js/run.js` redraws the timeline from it with textContent only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.deps import SessionDep
from atom.errors import InvalidInput
from atom.guidance import layouts as guidance_layouts
from atom.guidance import service as guidance_service
from atom.web import live
from atom.web.auth import ApproverForm, OperatorForm, PageRouter, ViewerPage
from atom.web.pages.workflows import engine_of
from atom.web.ui import redirect, render
from atom.workflows import flows
from atom.workflows import service as workflows_service
from atom.workflows.machine import RUN_CANCELLED, RUN_CHANGED, WORKFLOW_COMPLETED
from atom.workflows.models import RunStatus
from atom.workflows.presenters import run_detail

router = PageRouter()

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
StepPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
STATUS_FILTERS = ("all", *(s.value for s in RunStatus))
TOPICS = (RUN_CHANGED, WORKFLOW_COMPLETED, RUN_CANCELLED)
MAX_REASON = 2000


@router.get("/workflow-runs")
async def runs(
    request: Request,
    user: ViewerPage,
    session: SessionDep,
    status: Annotated[str, Query(max_length=20)] = "all",
    workflow: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if status not in STATUS_FILTERS:
        status = "all"
    workflow_row = await workflows_service.get_workflow(session=session, ref=workflow) if workflow else None
    rows, next_cursor = await workflows_service.list_runs(
        session=session,
        workflow_id=workflow_row.id if workflow_row else None,
        status=None if status == "all" else RunStatus(status),
        limit=50,
        cursor=cursor,
    )
    names = {w.id: w.name for w in (await workflows_service.list_workflows(session=session, limit=500, cursor=None))[0]}
    return render(
        request,
        "workflow_runs.html",
        {
            "title": "Workflow runs",
            "rows": rows,
            "names": names,
            "status": status,
            "filters": STATUS_FILTERS,
            "workflow": workflow_row,
            "next_cursor": next_cursor,
        },
    )


async def run_state(session: AsyncSession, run_id: str) -> dict[str, Any]:
    """The run and its steps as the API shows them (JSON-ready): the page and its live updates."""
    run = await workflows_service.get_run(session=session, run_id=run_id)
    steps = await workflows_service.list_steps(session=session, run_id=run_id)
    return run_detail(run, steps).model_dump(mode="json")


@router.get("/workflow-runs/{run_id}")
async def run_page(request: Request, run_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    state = await run_state(session, run_id)
    workflow = await workflows_service.get_workflow(session=session, ref=state["workflow_id"])
    # The run's progress in plain words and its remembered layout (docs/guidance.md)
    progress = await guidance_service.workflow_run_progress(session=session, run_id=run_id)
    layout = await guidance_layouts.get_layout(session=session, user_id=user.principal.user_id, view="workflow_run")
    return render(
        request,
        "workflow_run.html",
        {
            "title": f"Run of {workflow.name}",
            "run": state,
            "workflow": workflow,
            "progress": progress.model_dump(mode="json"),
            "layout": layout.layout,
        },
    )


@router.get("/live/workflow-runs/{run_id}")
async def run_events(request: Request, run_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    await workflows_service.get_run(session=session, run_id=run_id)  # unknown run -> 404 before streaming

    async def compute(s: AsyncSession) -> dict[str, Any]:
        return await run_state(s, run_id)

    def about_this_run(payload: dict[str, Any]) -> bool:
        return payload.get("run_id") == run_id

    return live.watch(request, f"workflow-run:{run_id}", TOPICS, compute, about_this_run)


@router.post("/workflow-runs/{run_id}/cancel")
async def cancel(request: Request, run_id: IdPath, form_user: OperatorForm) -> Response:
    user, _ = form_user
    await flows.cancel(engine_of(request), run_id=run_id, actor=audit.Actor.user(user.principal.user_id))
    return redirect(f"/workflow-runs/{run_id}?flash=run_cancelled")


@router.post("/workflow-runs/{run_id}/retry")
async def retry(request: Request, run_id: IdPath, form_user: OperatorForm) -> Response:
    user, _ = form_user
    await flows.retry(engine_of(request), run_id=run_id, actor=audit.Actor.user(user.principal.user_id))
    return redirect(f"/workflow-runs/{run_id}?flash=run_retried")


@router.post("/workflow-runs/{run_id}/steps/{step_key}/{decision}")
async def decide(
    request: Request, run_id: IdPath, step_key: StepPath, decision: str, form_user: ApproverForm
) -> Response:
    user, form = form_user
    reason = form.get("reason").strip()[:MAX_REASON] or None
    engine = engine_of(request)
    if decision == "approve":
        await flows.approve_step(
            engine, run_id=run_id, step_key=step_key, approver_id=user.principal.user_id, reason=reason
        )
        return redirect(f"/workflow-runs/{run_id}?flash=step_approved")
    if decision == "reject":
        await flows.reject_step(
            engine, run_id=run_id, step_key=step_key, approver_id=user.principal.user_id, reason=reason or "rejected"
        )
        return redirect(f"/workflow-runs/{run_id}?flash=step_rejected")
    raise InvalidInput("Approve or reject.", code="UNKNOWN_DECISION")
