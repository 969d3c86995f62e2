"""Workflows: create, update (a new immutable version), list, show, delete; their triggers; run queries.

A definition is validated completely (schema, graph, templates, actions, agents, webhook secrets)
before anything is written, so a bad definition changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.db.base import utcnow
from atom.errors import Conflict, InvalidInput, NotFound
from atom.pagination import paginate
from atom.security import secrets_store
from atom.workflows import cron
from atom.workflows.actions import ActionRegistry
from atom.workflows.definition import (
    DefinitionError,
    EventTrigger,
    Parsed,
    ScheduleTrigger,
    WebhookTrigger,
    WorkflowDefinition,
    parse_off_loop,
)
from atom.workflows.models import (
    ACTIVE_STEP_STATUSES,
    RunStatus,
    StepRun,
    TriggerKindName,
    Workflow,
    WorkflowRun,
    WorkflowTrigger,
    WorkflowVersion,
)


def definition_hash(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _resolve_agents(session: AsyncSession, parsed: Parsed) -> dict[str, str | None]:
    """Agent names/ids in the definition -> ids now, so a rename later does not change who acts."""
    definition = parsed.definition
    problems: list[dict[str, Any]] = []
    resolved: dict[str, str | None] = {"": None}
    refs: list[tuple[str, str | None, tuple[str | int, ...]]] = [("", definition.agent, ("agent",))]
    refs += [(s.id, s.agent, ("steps", i, "agent")) for i, s in enumerate(definition.steps) if s.agent]
    for key, ref, loc in refs:
        if ref is None:
            continue
        try:
            agent = await agents_service.resolve_ref(session=session, ref=ref)
        except NotFound:
            problems.append(parsed.problem(loc, f"no agent with the id or name {ref!r}"))
            continue
        resolved[key] = agent.id
    if problems:
        raise DefinitionError(problems)
    return resolved


async def _check_secrets(session: AsyncSession, parsed: Parsed) -> None:
    wanted = [t for t in parsed.definition.triggers if isinstance(t, WebhookTrigger)]
    if not wanted:
        return
    names: set[str] = set()
    cursor: str | None = None
    while True:
        page, cursor = await secrets_store.list_secrets(session=session, limit=500, cursor=cursor)
        names.update(secret.name for secret in page)
        if cursor is None:
            break
    problems = [
        parsed.problem(
            ("triggers", i, "secret"),
            f"no secret named {t.secret!r} in the secrets store (create it first: `atom-os secrets set {t.secret}`)",
        )
        for i, t in enumerate(parsed.definition.triggers)
        if isinstance(t, WebhookTrigger) and t.secret not in names
    ]
    if problems:
        raise DefinitionError(problems)


async def validate_source(
    *, session: AsyncSession, source: str, fmt: str | None, registry: ActionRegistry
) -> tuple[Parsed, dict[str, str | None]]:
    """Everything `create` checks, without writing: for `atom-os workflows validate` and the API."""
    fmt_known = fmt if fmt in ("yaml", "json") else None
    parsed = await parse_off_loop(source, fmt_known, action_exists=registry.exists)  # type: ignore[arg-type]
    agent_ids = await _resolve_agents(session, parsed)
    await _check_secrets(session, parsed)
    return parsed, agent_ids


async def create_workflow(
    *, session: AsyncSession, source: str, fmt: str | None, registry: ActionRegistry, actor: audit.Actor
) -> tuple[Workflow, WorkflowVersion]:
    parsed, agent_ids = await validate_source(session=session, source=source, fmt=fmt, registry=registry)
    definition = parsed.definition
    if await session.scalar(select(Workflow.id).where(Workflow.name == definition.name)) is not None:
        raise Conflict(
            f"A workflow named {definition.name!r} exists; update it to add a version.",
            code="WORKFLOW_EXISTS",
            details={"name": definition.name},
        )
    workflow = Workflow(
        name=definition.name, description=definition.description, current_version=1, created_by=actor.id
    )
    session.add(workflow)
    await session.flush()
    version = await _add_version(session, workflow, parsed, source, agent_ids, actor)
    await sync_triggers(session=session, workflow=workflow, definition=definition, now=utcnow())
    await audit.record(
        session=session,
        actor=actor,
        action="workflow.create",
        resource_type="workflow",
        resource_id=workflow.id,
        decision="done",
        details={"name": workflow.name, "version": 1, "definition_hash": version.definition_hash},
    )
    return workflow, version


async def update_workflow(
    *,
    session: AsyncSession,
    workflow_id: str,
    source: str,
    fmt: str | None,
    registry: ActionRegistry,
    actor: audit.Actor,
) -> tuple[Workflow, WorkflowVersion]:
    workflow = await get_workflow(session=session, ref=workflow_id)
    parsed, agent_ids = await validate_source(session=session, source=source, fmt=fmt, registry=registry)
    if parsed.definition.name != workflow.name:
        raise DefinitionError(
            [parsed.problem(("name",), f"the name cannot change (this workflow is {workflow.name!r})", "value")]
        )
    workflow.current_version += 1
    workflow.description = parsed.definition.description
    version = await _add_version(session, workflow, parsed, source, agent_ids, actor)
    await sync_triggers(session=session, workflow=workflow, definition=parsed.definition, now=utcnow())
    await audit.record(
        session=session,
        actor=actor,
        action="workflow.update",
        resource_type="workflow",
        resource_id=workflow.id,
        decision="done",
        details={"version": version.version, "definition_hash": version.definition_hash},
    )
    return workflow, version


async def _add_version(
    session: AsyncSession,
    workflow: Workflow,
    parsed: Parsed,
    source: str,
    agent_ids: dict[str, str | None],
    actor: audit.Actor,
) -> WorkflowVersion:
    document = parsed.definition.as_document()
    version = WorkflowVersion(
        workflow_id=workflow.id,
        version=workflow.current_version,
        definition=document,
        source=source,
        source_format=parsed.source_format,
        definition_hash=definition_hash(document),
        agent_ids=agent_ids,
        created_at=utcnow(),
        created_by=actor.id,
    )
    session.add(version)
    await session.flush()
    return version


def _trigger_config(trigger: ScheduleTrigger | WebhookTrigger | EventTrigger) -> dict[str, Any]:
    return trigger.model_dump(mode="json", exclude={"id", "type", "enabled"})


async def sync_triggers(
    *, session: AsyncSession, workflow: Workflow, definition: WorkflowDefinition, now: datetime
) -> list[WorkflowTrigger]:
    """Make the trigger rows match the definition; a schedule keeps its next fire when its cron is unchanged."""
    existing = {
        t.trigger_key: t
        for t in (
            await session.scalars(select(WorkflowTrigger).where(WorkflowTrigger.workflow_id == workflow.id))
        ).all()
    }
    wanted = {t.id: t for t in definition.triggers}
    for key in set(existing) - set(wanted):
        await session.delete(existing[key])
    rows = []
    for key, trigger in wanted.items():
        config = _trigger_config(trigger)
        row = existing.get(key)
        if row is not None and row.kind != trigger.type:
            await session.delete(row)
            await session.flush()
            row = None
        if row is None:
            row = WorkflowTrigger(workflow_id=workflow.id, trigger_key=key, kind=trigger.type, config={})
            session.add(row)
        schedule_changed = row.config.get("cron") != config.get("cron") or row.config.get("timezone") != config.get(
            "timezone"
        )
        row.config = config
        row.enabled = trigger.enabled
        row.event_topic = trigger.event if isinstance(trigger, EventTrigger) else None
        if isinstance(trigger, ScheduleTrigger):
            if schedule_changed or row.next_fire_at is None:
                row.next_fire_at = cron.next_fire_times(trigger.cron, trigger.timezone, now)[0]
        else:
            row.next_fire_at = None
        rows.append(row)
    await session.flush()
    return rows


async def get_workflow(*, session: AsyncSession, ref: str) -> Workflow:
    """By id, else by name."""
    workflow = await session.get(Workflow, ref)
    if workflow is None:
        workflow = await session.scalar(select(Workflow).where(Workflow.name == ref))
    if workflow is None:
        raise NotFound(
            f"No workflow with the id or name {ref!r}.", code="WORKFLOW_NOT_FOUND", details={"workflow": ref}
        )
    return workflow


async def get_version(*, session: AsyncSession, workflow_id: str, version: int | None = None) -> WorkflowVersion:
    stmt = select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id)
    if version is None:
        stmt = stmt.order_by(WorkflowVersion.version.desc()).limit(1)
    else:
        stmt = stmt.where(WorkflowVersion.version == version)
    row = await session.scalar(stmt)
    if row is None:
        raise NotFound(
            f"Workflow {workflow_id!r} has no version {version}.",
            code="WORKFLOW_VERSION_NOT_FOUND",
            details={"workflow_id": workflow_id, "version": version},
        )
    return row


async def list_workflows(*, session: AsyncSession, limit: int, cursor: str | None) -> tuple[list[Workflow], str | None]:
    return await paginate(session, select(Workflow), id_column=Workflow.id, limit=limit, cursor=cursor)


async def list_versions(
    *, session: AsyncSession, workflow_id: str, limit: int, cursor: str | None
) -> tuple[list[WorkflowVersion], str | None]:
    stmt = select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id)
    return await paginate(session, stmt, id_column=WorkflowVersion.id, limit=limit, cursor=cursor)


async def list_triggers(*, session: AsyncSession, workflow_id: str) -> list[WorkflowTrigger]:
    stmt = (
        select(WorkflowTrigger).where(WorkflowTrigger.workflow_id == workflow_id).order_by(WorkflowTrigger.trigger_key)
    )
    return list((await session.scalars(stmt)).all())


async def get_trigger(*, session: AsyncSession, workflow_id: str, key: str) -> WorkflowTrigger:
    row = await session.scalar(
        select(WorkflowTrigger).where(WorkflowTrigger.workflow_id == workflow_id, WorkflowTrigger.trigger_key == key)
    )
    if row is None:
        raise NotFound(f"No trigger {key!r} on this workflow.", code="TRIGGER_NOT_FOUND", details={"trigger": key})
    return row


async def delete_workflow(*, session: AsyncSession, workflow_id: str, actor: audit.Actor) -> None:
    workflow = await get_workflow(session=session, ref=workflow_id)
    active = await session.scalar(
        select(func.count())
        .select_from(WorkflowRun)
        .where(WorkflowRun.workflow_id == workflow.id, WorkflowRun.status == RunStatus.RUNNING.value)
    )
    if active:
        raise Conflict(
            f"The workflow has {active} active runs; cancel them first.",
            code="WORKFLOW_HAS_ACTIVE_RUNS",
            details={"active_runs": active},
        )
    run_ids = select(WorkflowRun.id).where(WorkflowRun.workflow_id == workflow.id)
    await session.execute(delete(StepRun).where(StepRun.run_id.in_(run_ids)))
    await session.execute(delete(WorkflowRun).where(WorkflowRun.workflow_id == workflow.id))
    await session.delete(workflow)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="workflow.delete",
        resource_type="workflow",
        resource_id=workflow.id,
        decision="done",
        details={"name": workflow.name},
    )


async def list_runs(
    *,
    session: AsyncSession,
    workflow_id: str | None,
    status: RunStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[WorkflowRun], str | None]:
    stmt = select(WorkflowRun)
    if workflow_id is not None:
        stmt = stmt.where(WorkflowRun.workflow_id == workflow_id)
    if status is not None:
        stmt = stmt.where(WorkflowRun.status == status.value)
    return await paginate(session, stmt, id_column=WorkflowRun.id, limit=limit, cursor=cursor)


async def get_run(*, session: AsyncSession, run_id: str) -> WorkflowRun:
    run = await session.get(WorkflowRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"No workflow run {run_id!r}.", code="RUN_NOT_FOUND", details={"run_id": run_id})
    return run


async def get_step(*, session: AsyncSession, step_id: str) -> tuple[StepRun, WorkflowRun]:
    step = await session.get(StepRun, step_id)
    if step is None:
        raise NotFound(f"No workflow step {step_id!r}.", code="STEP_NOT_FOUND", details={"step_id": step_id})
    return step, await get_run(session=session, run_id=step.run_id)


async def list_steps(*, session: AsyncSession, run_id: str) -> list[StepRun]:
    stmt = select(StepRun).where(StepRun.run_id == run_id).order_by(StepRun.position)
    return list((await session.scalars(stmt.execution_options(populate_existing=True))).all())


async def active_step_count(*, session: AsyncSession, run_id: str) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(StepRun)
            .where(StepRun.run_id == run_id, StepRun.status.in_(ACTIVE_STEP_STATUSES))
        )
        or 0
    )


def trigger_kinds() -> list[str]:
    return [k.value for k in TriggerKindName]


def require_inputs(definition: WorkflowDefinition, given: dict[str, Any]) -> dict[str, Any]:
    """Declared inputs with defaults applied; unknown, missing or mistyped inputs are refused."""
    unknown = sorted(set(given) - set(definition.inputs))
    if unknown:
        raise InvalidInput(
            f"Unknown inputs: {', '.join(unknown)} (declared: {', '.join(sorted(definition.inputs)) or 'none'}).",
            code="UNKNOWN_INPUTS",
            details={"unknown": unknown},
        )
    types: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "number": (int, float),
        "integer": (int,),
        "boolean": (bool,),
        "object": (dict,),
        "array": (list,),
    }
    resolved: dict[str, Any] = {}
    for name, spec in definition.inputs.items():
        if name in given:
            value = given[name]
            bad_bool = isinstance(value, bool) and spec.type in ("number", "integer")
            if value is not None and (bad_bool or not isinstance(value, types[spec.type])):
                raise InvalidInput(
                    f"Input {name!r} must be of type {spec.type}.", code="INVALID_INPUT_TYPE", details={"input": name}
                )
            resolved[name] = value
        elif spec.required:
            raise InvalidInput(f"Input {name!r} is required.", code="MISSING_INPUT", details={"input": name})
        else:
            resolved[name] = spec.default
    return resolved
