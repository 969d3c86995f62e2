"""Workflows: the list; a definition page with its YAML (edited with live validation), the DAG drawn from
`needs:`, next fire times and webhook URLs, its recent runs; save as a new version; run now.

Live validation is `static/js/workflows.js` calling `POST /api/workflows/validate` (the same validator
as saving); saving and running are plain forms, so they work without JavaScript too.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response

from atom.audit import service as audit
from atom.deps import SessionDep
from atom.governance.policy import TriggerKind
from atom.web import dag
from atom.web.auth import OperatorForm, PageRouter, ViewerPage, WebUser
from atom.web.ui import redirect, render
from atom.workflows import flows
from atom.workflows import service as workflows_service
from atom.workflows.app import current_runner
from atom.workflows.definition import DefinitionError
from atom.workflows.presenters import trigger_reads
from atom.workflows.runner import StepRunner

router = PageRouter()

RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_SOURCE = 262_144
MAX_INPUTS = 65_536
RECENT_RUNS = 20


def engine_of(request: Request) -> StepRunner:
    runner = getattr(request.app.state, "workflow_engine", None)
    return runner if isinstance(runner, StepRunner) else current_runner()


@router.get("/workflows")
async def index(request: Request, user: ViewerPage, session: SessionDep) -> Response:
    rows, _ = await workflows_service.list_workflows(session=session, limit=200, cursor=None)
    return render(request, "workflows.html", {"title": "Workflows", "rows": rows})


async def _definition_context(
    request: Request, session: SessionDep, ref: str, *, source: str | None = None
) -> dict[str, Any]:
    workflow = await workflows_service.get_workflow(session=session, ref=ref)
    version = await workflows_service.get_version(session=session, workflow_id=workflow.id)
    triggers = trigger_reads(
        workflow.id, await workflows_service.list_triggers(session=session, workflow_id=workflow.id)
    )
    runs, _ = await workflows_service.list_runs(
        session=session, workflow_id=workflow.id, status=None, limit=RECENT_RUNS, cursor=None
    )
    base = str(request.base_url).rstrip("/")
    return {
        "title": workflow.name,
        "workflow": workflow,
        "wf_version": version,
        "source": version.source if source is None else source,
        "graph": dag.layout(version.definition),
        "triggers": triggers,
        "webhook_base": base,
        "runs": list(reversed(runs)),
        "problems": [],
        "errors": {},
        "values": {},
    }


@router.get("/workflows/{ref}")
async def definition(request: Request, ref: RefPath, user: ViewerPage, session: SessionDep) -> Response:
    return render(request, "workflow.html", await _definition_context(request, session, ref))


@router.post("/workflows/{ref}")
async def save(request: Request, ref: RefPath, form_user: OperatorForm, session: SessionDep) -> Response:
    """Store the edited text as a new version; a bad definition -> the page again, every problem at its line."""
    user, form = form_user
    source = form.get("source")
    workflow = await workflows_service.get_workflow(session=session, ref=ref)
    problems: list[dict[str, Any]] = []
    if not source.strip():
        problems = [{"line": None, "field": "", "message": "The definition is empty.", "type": "missing"}]
    elif len(source) > MAX_SOURCE:
        problems = [{"line": None, "field": "", "message": f"At most {MAX_SOURCE} characters.", "type": "too_long"}]
    else:
        try:
            # Every check runs before anything is written: a bad definition changes nothing.
            await workflows_service.update_workflow(
                session=session,
                workflow_id=workflow.id,
                source=source,
                fmt=None,
                registry=engine_of(request).registry,
                actor=audit.Actor.user(user.principal.user_id),
            )
        except DefinitionError as exc:
            problems = exc.problems
    if problems:
        context = await _definition_context(request, session, ref, source=source)
        context["problems"] = problems
        return render(request, "workflow.html", context, status_code=422)
    return redirect(f"/workflows/{workflow.id}?flash=workflow_saved")


def _inputs(text: str) -> tuple[dict[str, Any] | None, str | None]:
    if not text.strip():
        return {}, None
    if len(text) > MAX_INPUTS:
        return None, f"At most {MAX_INPUTS} characters."
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    if not isinstance(value, dict):
        return None, 'Inputs are a JSON object, like {"channel": "ops"}.'
    return value, None


async def _run(request: Request, user: WebUser, session: SessionDep, ref: str, text: str) -> Response:
    inputs, error = _inputs(text)
    if inputs is None:
        context = await _definition_context(request, session, ref)
        context.update(errors={"inputs": error}, values={"inputs": text})
        return render(request, "workflow.html", context, status_code=422)
    workflow = await workflows_service.get_workflow(session=session, ref=ref)
    await session.commit()  # the run starts in its own transactions
    result = await flows.start_workflow(
        engine_of(request),
        workflow_ref=workflow.id,
        inputs=inputs,
        source="manual",
        kind=TriggerKind.MANUAL,
        payload={"type": "manual", "user_id": user.principal.user_id},
        actor_user_id=user.principal.user_id,
    )
    if result.run_id is not None:
        return redirect(f"/workflow-runs/{result.run_id}?flash=run_started")
    if result.proposal_id is not None:
        return redirect(f"/proposals/{result.proposal_id}")
    return redirect(f"/workflows/{workflow.id}?flash=run_routed")


@router.post("/workflows/{ref}/run")
async def run_now(request: Request, ref: RefPath, form_user: OperatorForm, session: SessionDep) -> Response:
    user, form = form_user
    return await _run(request, user, session, ref, form.get("inputs"))
