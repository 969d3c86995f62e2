"""Multi-step workflow processes: starting runs (every start passes the trigger interceptor), trigger
fires (schedule, webhook, event) that happen exactly once, and a person's cancel / retry / approve / reject.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from atom.audit import service as audit
from atom.errors import Conflict, InvalidInput, NotFound
from atom.governance.policy import TriggerKind
from atom.observability.logging import get_logger
from atom.training import interceptor
from atom.training import proposals as proposals_service
from atom.training.plan import Plan
from atom.workflows import interventions, machine, service
from atom.workflows.definition import WorkflowDefinition
from atom.workflows.executor import WORKFLOW_EXECUTOR, build_plan
from atom.workflows.models import StepRun, StepStatus, TriggerFire, Workflow, WorkflowTrigger, WorkflowVersion
from atom.workflows.runner import StepRunner
from atom.workflows.state import StepState

log = get_logger("atom.workflows")
MAX_CHAIN_DEPTH = 5


@dataclass
class StartResult:
    route: str
    reason: str
    agent_id: str
    agent_level: str
    run_id: str | None = None
    proposal_id: str | None = None
    supervision_session_id: str | None = None
    blocked_trigger_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, routed: interceptor.RoutingResult, run_id: str | None = None) -> StartResult:
        return cls(
            route=routed.route.value,
            reason=routed.reason,
            agent_id=routed.agent_id,
            agent_level=routed.agent_level.value,
            run_id=run_id,
            proposal_id=routed.proposal_id,
            supervision_session_id=routed.supervision_session_id,
            blocked_trigger_id=routed.blocked_trigger_id,
            extra=dict(routed.extra),
        )


@dataclass(frozen=True)
class PlannedStart:
    """What the interceptor is asked to route: the workflow's agent, its plan and the trigger."""

    agent_id: str
    plan: Plan
    trigger: interceptor.TriggerInfo


def workflow_agent_id(runner: StepRunner, version: WorkflowVersion) -> str | None:
    """The agent a version's steps run as, unless a step names its own: the workflow's, else the default."""
    return version.agent_ids.get("") or runner.settings.default_agent_id


def plan_start(
    runner: StepRunner,
    *,
    workflow: Workflow,
    version: WorkflowVersion,
    definition: WorkflowDefinition,
    inputs: dict[str, Any],
    source: str,
    kind: TriggerKind,
    payload: dict[str, Any],
    trigger_id: str | None = None,
    actor_user_id: str | None = None,
    chain_depth: int = 0,
) -> PlannedStart:
    """The workflow's inputs checked, its agent resolved (422 when none) and the plan built."""
    resolved = service.require_inputs(definition, inputs)
    agent_id = workflow_agent_id(runner, version)
    if not agent_id:
        raise InvalidInput(
            f"Workflow {workflow.name!r} names no agent and ATOM_DEFAULT_AGENT_ID is not set.",
            code="NO_AGENT_RESOLVED",
        )
    plan = build_plan(
        workflow=workflow,
        version=version,
        definition=definition,
        inputs=resolved,
        payload=payload,
        source=source,
        trigger_id=trigger_id,
        chain_depth=chain_depth,
    )
    summary = {"workflow_id": workflow.id, "workflow": workflow.name, "version": version.version}
    trigger = interceptor.TriggerInfo(
        source=source, kind=kind, payload=summary, executor=WORKFLOW_EXECUTOR, actor_user_id=actor_user_id
    )
    return PlannedStart(agent_id, plan, trigger)


async def start_workflow(
    runner: StepRunner,
    *,
    workflow_ref: str,
    inputs: dict[str, Any],
    source: str,
    kind: TriggerKind,
    payload: dict[str, Any],
    trigger_id: str | None = None,
    actor_user_id: str | None = None,
    chain_depth: int = 0,
) -> StartResult:
    """Resolve the workflow and its agent, build the plan, and hand it to the trigger interceptor."""
    async with runner.db.session_scope() as session:
        workflow = await service.get_workflow(session=session, ref=workflow_ref)
        version = await service.get_version(session=session, workflow_id=workflow.id)
        definition = await runner.definition(session, workflow.id, version.version)
        planned = plan_start(
            runner,
            workflow=workflow,
            version=version,
            definition=definition,
            inputs=inputs,
            source=source,
            kind=kind,
            payload=payload,
            trigger_id=trigger_id,
            actor_user_id=actor_user_id,
            chain_depth=chain_depth,
        )
    routed = await interceptor.intercept(
        db=runner.db, settings=runner.settings, agent_id=planned.agent_id, trigger=planned.trigger, plan=planned.plan
    )
    result = StartResult.of(routed)
    if routed.run is not None:
        if not routed.run.ok:
            raise InvalidInput(f"The run did not start: {routed.run.error}", code="RUN_NOT_STARTED")
        result.run_id = (routed.run.steps[0].output or {}).get("run_id")
    return result


# --- trigger fires: each exactly once ---------------------------------------------------------


async def claim_fire(runner: StepRunner, trigger_id: str, fire_key: str, outcome: str = "pending") -> str | None:
    """Insert the fire row; None when this fire already happened (another process, a replay)."""
    try:
        async with runner.db.session_scope() as session:
            fire = TriggerFire(
                trigger_id=trigger_id, fire_key=fire_key[:128], outcome=outcome, created_at=runner.clock()
            )
            session.add(fire)
            await session.flush()
            return fire.id
    except IntegrityError:
        return None


async def finish_fire(runner: StepRunner, fire_id: str, outcome: str, run_id: str | None, detail: str | None) -> None:
    async with runner.db.session_scope() as session:
        await session.execute(
            update(TriggerFire)
            .where(TriggerFire.id == fire_id)
            .values(outcome=outcome[:16], run_id=run_id, detail=(detail or "")[:2000] or None)
        )


async def fire_trigger(
    runner: StepRunner,
    trigger: WorkflowTrigger,
    fire_id: str,
    *,
    source: str,
    payload: dict[str, Any],
    chain_depth: int = 0,
) -> StartResult | None:
    try:
        result = await start_workflow(
            runner,
            workflow_ref=trigger.workflow_id,
            inputs={},
            source=source,
            kind=TriggerKind.AUTOMATED,
            payload=payload,
            trigger_id=trigger.id,
            chain_depth=chain_depth,
        )
    except Exception as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        log.warning("workflow trigger could not start a run", trigger_id=trigger.id, error=message)
        await finish_fire(runner, fire_id, "error", None, message)
        return None
    await finish_fire(runner, fire_id, result.route, result.run_id, result.reason)
    return result


async def fire_schedule(
    runner: StepRunner, trigger: WorkflowTrigger, *, fire_at: datetime, missed: int, now: datetime
) -> StartResult | None:
    fire_id = await claim_fire(runner, trigger.id, f"cron:{fire_at.isoformat()}")
    if fire_id is None:
        return None
    payload = {
        "type": "schedule",
        "trigger": trigger.trigger_key,
        "scheduled_at": fire_at.isoformat(),
        "fired_at": now.isoformat(),
        "missed": missed,
    }
    return await fire_trigger(runner, trigger, fire_id, source="schedule", payload=payload)


async def record_skipped_fires(
    runner: StepRunner, trigger: WorkflowTrigger, *, last_missed: datetime, missed: int
) -> None:
    fire_id = await claim_fire(runner, trigger.id, f"missed:{last_missed.isoformat()}", outcome="skipped")
    if fire_id is not None:
        await finish_fire(runner, fire_id, "skipped", None, f"{missed} missed fire(s) skipped (policy skip)")
        log.info("missed cron fires skipped", trigger_id=trigger.id, missed=missed)


def event_fire_key(topic: str, payload: dict[str, Any]) -> str:
    """The event's own id when it has one, else a digest of its content."""
    for key in ("event_id", "id"):
        if isinstance(payload.get(key), str | int):
            return f"event:{topic}:{payload[key]}"
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return f"event:{topic}:{hashlib.sha256(canonical.encode()).hexdigest()}"


async def fire_event(runner: StepRunner, topic: str, payload: dict[str, Any]) -> list[StartResult]:
    async with runner.db.session_scope() as session:
        triggers = list(
            (
                await session.scalars(
                    select(WorkflowTrigger).where(
                        WorkflowTrigger.kind == "event",
                        WorkflowTrigger.event_topic == topic,
                        WorkflowTrigger.enabled.is_(True),
                    )
                )
            ).all()
        )
    depth = int(payload.get("chain_depth") or 0) + 1 if isinstance(payload.get("chain_depth"), int) else 1
    results = []
    for trigger in triggers:
        wanted = trigger.config.get("filter") or {}
        if any(payload.get(k) != v for k, v in wanted.items()):
            continue
        fire_id = await claim_fire(runner, trigger.id, event_fire_key(topic, payload))
        if fire_id is None:
            continue
        if depth > MAX_CHAIN_DEPTH:
            await finish_fire(runner, fire_id, "refused", None, f"event chain deeper than {MAX_CHAIN_DEPTH}")
            continue
        event_payload = {"type": "event", "trigger": trigger.trigger_key, "event": topic, "payload": payload}
        result = await fire_trigger(runner, trigger, fire_id, source="event", payload=event_payload, chain_depth=depth)
        if result is not None:
            results.append(result)
    return results


# --- a person acts on a run -------------------------------------------------------------------


async def cancel(runner: StepRunner, *, run_id: str, actor: audit.Actor) -> None:
    async def body(session: Any) -> machine.Advance:
        return await interventions.cancel_run(session, run_id=run_id, actor=actor, now=runner.clock())

    await runner.transact(body)


async def retry(runner: StepRunner, *, run_id: str, actor: audit.Actor) -> None:
    async def body(session: Any) -> machine.Advance:
        run = await service.get_run(session=session, run_id=run_id)
        definition = await runner.definition(session, run.workflow_id, run.version)
        return await interventions.retry_run(
            session, run_id=run_id, definition=definition, actor=actor, now=runner.clock(), settings=runner.settings
        )

    await runner.transact(body)


async def _waiting_approval(runner: StepRunner, run_id: str, step_key: str) -> StepState:
    async with runner.db.session_scope() as session:
        steps = await machine.load_steps(session, run_id)
    step = next((s for s in steps if s.step_key == step_key), None)
    if step is None:
        raise NotFound(f"The run has no step {step_key!r}.", code="STEP_NOT_FOUND")
    if step.kind != "approval" or step.status != StepStatus.WAITING.value or step.proposal_id is None:
        raise Conflict(f"Step {step_key!r} is not waiting for approval ({step.status}).", code="STEP_NOT_WAITING")
    return step


async def approve_step(runner: StepRunner, *, run_id: str, step_key: str, approver_id: str, reason: str | None) -> None:
    """Approve through the proposal service: the same claim, audit and confidence as any proposal."""
    step = await _waiting_approval(runner, run_id, step_key)
    assert step.proposal_id is not None
    async with runner.db.session_scope() as session:
        # The approver decides the step as the definition shows it; its stored hash is what they approve.
        seen_hash = (await proposals_service.get(session=session, proposal_id=step.proposal_id)).plan_hash
    approval = await proposals_service.approve(
        db=runner.db,
        settings=runner.settings,
        proposal_id=step.proposal_id,
        approver_id=approver_id,
        seen_hash=seen_hash,
        reason=reason,
    )
    if approval.run is not None and not approval.run.ok:
        raise Conflict(f"Approved, but the run did not continue: {approval.run.error}", code="STEP_NOT_WAITING")


async def reject_step(runner: StepRunner, *, run_id: str, step_key: str, approver_id: str, reason: str) -> None:
    step = await _waiting_approval(runner, run_id, step_key)
    assert step.proposal_id is not None
    async with runner.db.session_scope() as session:
        await proposals_service.reject(
            session=session,
            proposal_id=step.proposal_id,
            approver_id=approver_id,
            reason=reason,
            settings=runner.settings,
        )
    await settle_approval(runner, step)


async def settle_approval(runner: StepRunner, step: StepRun | StepState) -> None:
    """Apply a decision taken in the proposals list (approved, rejected, expired) to the waiting step."""
    from atom.training.models import ProposalStatus

    async def body(session: Any) -> machine.Advance | None:
        assert step.proposal_id is not None
        proposal = await proposals_service.get(session=session, proposal_id=step.proposal_id)
        status = ProposalStatus(proposal.status)
        if status is ProposalStatus.PENDING:
            return None
        run = await service.get_run(session=session, run_id=step.run_id)
        definition: WorkflowDefinition = await runner.definition(session, run.workflow_id, run.version)
        approved = status in (ProposalStatus.APPROVED, ProposalStatus.EXECUTED, ProposalStatus.EXECUTION_FAILED)
        decider = "approved_by" if approved else "rejected_by"  # the same output shape as executor._approve_step
        if approved:
            error, code = None, None
        elif status is ProposalStatus.REJECTED:
            error = f"rejected by {proposal.decided_by}: {proposal.decision_reason or 'no reason given'}"
            code = "APPROVAL_REJECTED"
        else:
            error, code = "the approval request expired", "APPROVAL_EXPIRED"
        return await interventions.resolve_waiting(
            session,
            run_id=step.run_id,
            step_run_id=step.id,
            definition=definition,
            approved=approved,
            output={"approved": approved, decider: proposal.decided_by, "proposal_id": proposal.id},
            error=error,
            code=code,
            now=runner.clock(),
            settings=runner.settings,
        )

    await runner.transact(body)
