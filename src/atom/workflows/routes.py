"""Workflows over HTTP: definitions (versions), runs, and a person's cancel / retry / approve / reject."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from atom.audit import service as audit
from atom.deps import (
    DEFAULT_PAGE_LIMIT,
    ApproverDep,
    CursorQuery,
    LimitQuery,
    OperatorDep,
    SessionDep,
    ViewerDep,
)
from atom.governance.policy import TriggerKind
from atom.pagination import Page
from atom.workflows import flows, service
from atom.workflows.app import current_runner
from atom.workflows.definition import DefinitionError, MalformedDefinition, topological_order
from atom.workflows.models import RunStatus
from atom.workflows.presenters import run_detail, workflow_detail
from atom.workflows.runner import StepRunner
from atom.workflows.schemas import (
    RunCreate,
    RunDetail,
    RunRead,
    RunStarted,
    StepDecision,
    ValidationResult,
    VersionRead,
    WorkflowDetail,
    WorkflowRead,
    WorkflowSource,
)

router = APIRouter(prefix="/api/workflows", tags=["workflows"])
runs_router = APIRouter(prefix="/api/workflow-runs", tags=["workflows"])


def engine_dep(request: Request) -> StepRunner:
    runner = getattr(request.app.state, "workflow_engine", None)
    return runner if isinstance(runner, StepRunner) else current_runner()


EngineDep = Annotated[StepRunner, Depends(engine_dep)]


@router.post("/validate", response_model=ValidationResult)
async def validate(
    body: WorkflowSource, principal: OperatorDep, session: SessionDep, engine: EngineDep
) -> ValidationResult:
    """Check a definition without storing it: schema, graph, templates, actions, agents, webhook secrets.

    A definition with problems answers 200 with `valid: false` and the problems; text that is not a
    definition at all (not YAML/JSON, not a mapping, aliases, nesting too deep) is a 422."""
    try:
        parsed, _ = await service.validate_source(
            session=session, source=body.source, fmt=body.format, registry=engine.registry
        )
    except MalformedDefinition:
        raise
    except DefinitionError as exc:
        return ValidationResult.model_validate({"valid": False, "problems": exc.problems})
    definition = parsed.definition
    return ValidationResult(
        valid=True, name=definition.name, steps=len(definition.steps), order=topological_order(definition)
    )


@router.post("", response_model=WorkflowDetail, status_code=201)
async def create(
    body: WorkflowSource, principal: OperatorDep, session: SessionDep, engine: EngineDep
) -> WorkflowDetail:
    workflow, version = await service.create_workflow(
        session=session,
        source=body.source,
        fmt=body.format,
        registry=engine.registry,
        actor=audit.Actor.user(principal.user_id),
    )
    triggers = await service.list_triggers(session=session, workflow_id=workflow.id)
    _subscribe_events(engine, [t.event_topic for t in triggers])
    return workflow_detail(workflow, version, triggers)


@router.get("", response_model=Page[WorkflowRead])
async def list_workflows(
    principal: ViewerDep, session: SessionDep, limit: LimitQuery = DEFAULT_PAGE_LIMIT, cursor: CursorQuery = None
) -> Page[WorkflowRead]:
    rows, next_cursor = await service.list_workflows(session=session, limit=limit, cursor=cursor)
    return Page(items=[WorkflowRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{ref}", response_model=WorkflowDetail)
async def show(ref: str, principal: ViewerDep, session: SessionDep) -> WorkflowDetail:
    workflow = await service.get_workflow(session=session, ref=ref)
    version = await service.get_version(session=session, workflow_id=workflow.id)
    triggers = await service.list_triggers(session=session, workflow_id=workflow.id)
    return workflow_detail(workflow, version, triggers)


@router.put("/{ref}", response_model=WorkflowDetail)
async def update(
    ref: str, body: WorkflowSource, principal: OperatorDep, session: SessionDep, engine: EngineDep
) -> WorkflowDetail:
    """Store the definition as a new version; runs in progress keep the version they started with."""
    workflow, version = await service.update_workflow(
        session=session,
        workflow_id=ref,
        source=body.source,
        fmt=body.format,
        registry=engine.registry,
        actor=audit.Actor.user(principal.user_id),
    )
    triggers = await service.list_triggers(session=session, workflow_id=workflow.id)
    _subscribe_events(engine, [t.event_topic for t in triggers])
    return workflow_detail(workflow, version, triggers)


@router.get("/{ref}/versions", response_model=Page[VersionRead])
async def versions(
    ref: str,
    principal: ViewerDep,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[VersionRead]:
    workflow = await service.get_workflow(session=session, ref=ref)
    rows, next_cursor = await service.list_versions(
        session=session, workflow_id=workflow.id, limit=limit, cursor=cursor
    )
    return Page(items=[VersionRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.delete("/{ref}", status_code=204, response_class=Response)
async def delete(ref: str, principal: OperatorDep, session: SessionDep) -> Response:
    await service.delete_workflow(session=session, workflow_id=ref, actor=audit.Actor.user(principal.user_id))
    return Response(status_code=204)


@router.post("/{ref}/runs", response_model=RunStarted, status_code=202)
async def run_now(ref: str, body: RunCreate, principal: OperatorDep, engine: EngineDep) -> RunStarted:
    """Run now: a person asked, so only per-step governance applies (the interceptor routes it as manual)."""
    result = await flows.start_workflow(
        engine,
        workflow_ref=ref,
        inputs=body.inputs,
        source="manual",
        kind=TriggerKind.MANUAL,
        payload={"type": "manual", "user_id": principal.user_id},
        actor_user_id=principal.user_id,
    )
    return RunStarted(
        route=result.route,
        reason=result.reason,
        agent_id=result.agent_id,
        agent_level=result.agent_level,
        run_id=result.run_id,
        proposal_id=result.proposal_id,
        supervision_session_id=result.supervision_session_id,
    )


@router.get("/{ref}/runs", response_model=Page[RunRead])
async def workflow_runs(
    ref: str,
    principal: ViewerDep,
    session: SessionDep,
    status: Annotated[RunStatus | None, Query()] = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[RunRead]:
    workflow = await service.get_workflow(session=session, ref=ref)
    rows, next_cursor = await service.list_runs(
        session=session, workflow_id=workflow.id, status=status, limit=limit, cursor=cursor
    )
    return Page(items=[RunRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@runs_router.get("", response_model=Page[RunRead])
async def list_runs(
    principal: ViewerDep,
    session: SessionDep,
    status: Annotated[RunStatus | None, Query()] = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[RunRead]:
    rows, next_cursor = await service.list_runs(
        session=session, workflow_id=None, status=status, limit=limit, cursor=cursor
    )
    return Page(items=[RunRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@runs_router.get("/{run_id}", response_model=RunDetail)
async def show_run(run_id: str, principal: ViewerDep, session: SessionDep) -> RunDetail:
    """The run with each step's status, input, output, logs and timings."""
    run = await service.get_run(session=session, run_id=run_id)
    steps = await service.list_steps(session=session, run_id=run_id)
    return run_detail(run, steps)


@runs_router.post("/{run_id}/cancel", response_model=RunDetail)
async def cancel(run_id: str, principal: OperatorDep, engine: EngineDep, session: SessionDep) -> RunDetail:
    await flows.cancel(engine, run_id=run_id, actor=audit.Actor.user(principal.user_id))
    return run_detail(
        await service.get_run(session=session, run_id=run_id), await service.list_steps(session=session, run_id=run_id)
    )


@runs_router.post("/{run_id}/retry", response_model=RunDetail)
async def retry(run_id: str, principal: OperatorDep, engine: EngineDep, session: SessionDep) -> RunDetail:
    """Run again from the failed step: steps that succeeded keep their outputs and are not repeated."""
    await flows.retry(engine, run_id=run_id, actor=audit.Actor.user(principal.user_id))
    return run_detail(
        await service.get_run(session=session, run_id=run_id), await service.list_steps(session=session, run_id=run_id)
    )


@runs_router.post("/{run_id}/steps/{step_key}/approve", response_model=RunDetail)
async def approve_step(
    run_id: str, step_key: str, body: StepDecision, principal: ApproverDep, engine: EngineDep, session: SessionDep
) -> RunDetail:
    """Approve a waiting approval step (the same as approving its proposal in the proposals list)."""
    await flows.approve_step(
        engine, run_id=run_id, step_key=step_key, approver_id=principal.user_id, reason=body.reason
    )
    return run_detail(
        await service.get_run(session=session, run_id=run_id), await service.list_steps(session=session, run_id=run_id)
    )


@runs_router.post("/{run_id}/steps/{step_key}/reject", response_model=RunDetail)
async def reject_step(
    run_id: str, step_key: str, body: StepDecision, principal: ApproverDep, engine: EngineDep, session: SessionDep
) -> RunDetail:
    await flows.reject_step(
        engine, run_id=run_id, step_key=step_key, approver_id=principal.user_id, reason=body.reason or "rejected"
    )
    return run_detail(
        await service.get_run(session=session, run_id=run_id), await service.list_steps(session=session, run_id=run_id)
    )


def _subscribe_events(engine: StepRunner, topics: list[str | None]) -> None:
    if engine.subscribe_topic is None:
        return
    for topic in topics:
        if topic:
            engine.subscribe_topic(topic)
