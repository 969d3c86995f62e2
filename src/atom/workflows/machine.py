"""The run state machine: what happens to a run and its steps, one committed transaction at a time.

Every change to a run starts by locking the run row with a write (`UPDATE ... SET lock_version =
lock_version + 1`): a row lock on PostgreSQL, the write lock on SQLite. So step completions of
parallel branches, cancels and retries of the same run are serialized, and each sees the others'
committed state. A step's transition out of `running` is a conditional UPDATE on its attempt
number: a worker whose lease was taken over by a redelivery cannot overwrite the newer attempt.

Functions here work on snapshots of the rows (`state.py`), write what changed (callers commit) and
return what to do after the commit: the steps to hand to workers (`Advance.queued`), the step this
worker claimed to run next itself (`Advance.claimed`), and the events to publish.

This module creates runs and advances them; the outcome of a step's attempt is recorded by
`outcomes.py`, changes from outside the steps (a wait due, an approval decided, cancel, retry) by
`interventions.py`, and what a step's templates render from is in `run_context.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.config import Settings
from atom.db.base import new_id
from atom.governance.policy import GovernanceContext
from atom.training import proposals
from atom.training.models import ProposalKind
from atom.workflows import state, templates
from atom.workflows.definition import StepDef, StepType, WorkflowDefinition, parse_duration, topological_order
from atom.workflows.models import ACTIVE_STEP_STATUSES, RunStatus, StepStatus, Workflow, WorkflowVersion
from atom.workflows.run_context import failure_for_handler, idempotency_key, template_context
from atom.workflows.state import RunState, StepState

WORKFLOW_COMPLETED = "workflow.completed"
RUN_CANCELLED = "workflow.run_cancelled"
RUN_CHANGED = "workflow.run_changed"
APPROVE_STEP_ACTION = "workflow.approve_step"


@dataclass(frozen=True)
class QueuedStep:
    step_run_id: str
    run_id: str
    dispatch: int
    delay_s: float = 0.0
    inline: bool = False


@dataclass
class Advance:
    queued: list[QueuedStep] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # set by `claim_next`: a step this worker took over from `queued` to run next itself
    claimed: StepState | None = None
    run: RunState | None = None
    steps: list[StepState] = field(default_factory=list)
    # set when this transaction ended the run: the run and its steps as it commits them
    ended: tuple[RunState, list[StepState]] | None = None

    def merge(self, other: Advance) -> Advance:
        self.queued += other.queued
        self.events += other.events
        self.ended = self.ended or other.ended
        return self


lock_run = state.lock_run
load_steps = state.load_steps


async def save(session: AsyncSession, run: RunState, steps: list[StepState]) -> None:
    await state.save_steps(session, steps)
    await state.save_run(session, run)


@dataclass(frozen=True)
class ClaimNext:
    worker: str
    lease_s: float


def claim_next(result: Advance, run: RunState, steps: list[StepState], claim: ClaimNext, now: datetime) -> None:
    """Take one step just queued for the pool (due now) off the hand-over list and claim it here."""
    if run.mode != "pool":
        return
    queued = next((q for q in result.queued if q.delay_s == 0 and not q.inline), None)
    if queued is None:
        return
    step = next(s for s in steps if s.id == queued.step_run_id)
    result.queued.remove(queued)
    step.status = StepStatus.RUNNING.value
    step.attempt += 1
    step.started_at = now
    step.finished_at = None
    step.lease_expires_at = now + timedelta(seconds=claim.lease_s)
    step.worker = claim.worker
    result.claimed, result.run, result.steps = step, run, steps


async def create_run(
    session: AsyncSession,
    *,
    workflow: Workflow,
    version: WorkflowVersion,
    definition: WorkflowDefinition,
    agent_id: str,
    inputs: dict[str, Any],
    payload: dict[str, Any],
    context: GovernanceContext,
    trigger_id: str | None,
    chain_depth: int,
    mode: str,
    now: datetime,
    settings: Settings,
    claim: ClaimNext | None = None,
    insert: bool = True,
) -> tuple[RunState, Advance]:
    """A new run, its first steps made ready; with `claim`, one of them claimed for the caller (`claim_next`).

    `insert=False` leaves the rows to the caller (`state.insert_runs`, several runs in one statement);
    `Advance.run` and `Advance.steps` are then always set."""
    run = RunState(
        id=new_id(),
        workflow_id=workflow.id,
        version=version.version,
        agent_id=agent_id,
        status=RunStatus.RUNNING.value,
        mode=mode,
        trigger_kind=context.trigger.value,
        source=context.source,
        trigger_id=trigger_id,
        trigger_payload=payload,
        inputs=inputs,
        proposal_id=context.proposal_id,
        supervision_session_id=context.supervision_session_id,
        actor_user_id=context.actor_user_id,
        chain_depth=chain_depth,
        lock_version=0,
        error=None,
        created_at=now,
        finished_at=None,
    )
    steps = []
    for position, key in enumerate(topological_order(definition)):
        step = definition.step(key)
        steps.append(
            StepState(
                id=new_id(),
                run_id=run.id,
                step_key=key,
                position=position,
                kind=step.type.value,
                action=step.action,
                status=StepStatus.PENDING.value,
                attempt=0,
                generation=0,
                dispatches=0,
                idempotency_key=idempotency_key(run.id, key, 0),
                input=None,
                output=None,
                error=None,
                error_code=None,
                logs=[],
                agent_id=version.agent_ids.get(key) or agent_id,
                worker=None,
                proposal_id=None,
                queued_at=None,
                started_at=None,
                finished_at=None,
                due_at=None,
                lease_expires_at=None,
            )
        )
    advance = await advance_run(session, run, definition, steps, now=now, settings=settings)
    if claim is not None:
        claim_next(advance, run, steps, claim, now)
    if insert:
        await state.insert_run(session, run, steps)  # as advanced: the first steps are inserted queued (or claimed)
    else:
        advance.run, advance.steps = run, steps
    return run, advance


def _resolved(step: StepState, spec: StepDef) -> bool:
    return step.status in (StepStatus.SUCCEEDED.value, StepStatus.SKIPPED.value) or (
        step.status == StepStatus.FAILED.value and spec.on_failure == "continue"
    )


def _blocking(step: StepState, spec: StepDef) -> bool:
    return step.status == StepStatus.CANCELLED.value or (
        step.status == StepStatus.FAILED.value and spec.on_failure != "continue"
    )


def finish_step(
    step: StepState, status: StepStatus, now: datetime, *, error: str | None = None, code: str | None = None
) -> None:
    step.status = status.value
    step.finished_at = now
    step.lease_expires_at = None
    step.due_at = None
    if error is not None:
        step.error = error
        step.error_code = code


async def advance_run(
    session: AsyncSession,
    run: RunState,
    definition: WorkflowDefinition,
    steps: list[StepState],
    *,
    now: datetime,
    settings: Settings,
) -> Advance:
    """Move every step whose needs are met forward; finish the run when nothing is left. Run must be locked."""
    result = Advance()
    if run.status != RunStatus.RUNNING.value:
        return result
    by_key = {s.step_key: s for s in steps}
    handlers = definition.handler_ids
    changed = True
    while changed and run.status == RunStatus.RUNNING.value:
        changed = False
        for step in steps:
            if step.status != StepStatus.PENDING.value:
                continue
            spec = definition.step(step.step_key)
            if step.step_key in handlers:
                triggered = any(
                    s.status == StepStatus.FAILED.value and definition.step(s.step_key).on_failure == step.step_key
                    for s in steps
                )
                if not triggered:
                    continue
            else:
                needs = [(by_key[n], definition.step(n)) for n in spec.needs]
                blocked = [n.step_key for n, nspec in needs if _blocking(n, nspec)]
                if blocked:
                    finish_step(step, StepStatus.CANCELLED, now, error=f"not run: {', '.join(blocked)} did not succeed")
                    changed = True
                    continue
                if not all(_resolved(n, nspec) for n, nspec in needs):
                    continue
            changed = True
            await _make_ready(session, run, definition, steps, step, spec, now=now, settings=settings, result=result)
    if run.status == RunStatus.RUNNING.value:
        await _maybe_finish(session, run, definition, steps, now=now, result=result)
    return result


async def _make_ready(
    session: AsyncSession,
    run: RunState,
    definition: WorkflowDefinition,
    steps: list[StepState],
    step: StepState,
    spec: StepDef,
    *,
    now: datetime,
    settings: Settings,
    result: Advance,
) -> None:
    failure = failure_for_handler(definition, steps, step.step_key) if step.step_key in definition.handler_ids else None
    context = template_context(run, steps, failure=failure)
    try:
        if spec.if_ is not None and not templates.evaluate_condition(spec.if_, context, field=f"steps.{spec.id}.if"):
            finish_step(step, StepStatus.SKIPPED, now)
            step.started_at = now
            return
        if spec.type is StepType.ACTION:
            step.status = StepStatus.QUEUED.value
            step.queued_at = now
            step.due_at = None
            step.dispatches += 1
            result.queued.append(QueuedStep(step.id, run.id, step.dispatches, inline=run.mode == "inline"))
        elif spec.type is StepType.WAIT:
            step.status = StepStatus.WAITING.value
            step.queued_at = step.started_at = now
            if spec.duration is not None:
                step.due_at = now + timedelta(seconds=spec.duration)
            else:
                until = templates.render_string(spec.until or "", context, field=f"steps.{spec.id}.until")
                step.due_at = _parse_until(str(until), spec.id, now)
            step.input = {"until": step.due_at.isoformat()}
        else:
            message = templates.render_value(
                spec.message or f"Approve step {spec.id!r} of this workflow?", context, field=f"steps.{spec.id}.message"
            )
            step.status = StepStatus.WAITING.value
            step.queued_at = step.started_at = now
            step.input = {"message": message}
            proposal = await proposals.create(
                session=session,
                agent_id=step.agent_id or run.agent_id,
                kind=ProposalKind.ACTION,
                plan=[
                    {
                        "action": APPROVE_STEP_ACTION,
                        "params": {
                            "run_id": run.id,
                            "step": step.step_key,
                            "generation": step.generation,
                            "message": message,
                        },
                    }
                ],
                source="workflow",
                blocked_trigger_id=None,
                settings=settings,
            )
            step.proposal_id = proposal.id
    except templates.TemplateError as exc:
        step.started_at = now
        await fail_step(
            session,
            run,
            definition,
            steps,
            step,
            error=exc.message,
            code=exc.code,
            now=now,
            settings=settings,
            result=result,
        )


def _parse_until(value: str, step_id: str, now: datetime) -> datetime:
    """An ISO time (aware, or UTC when naive), or a duration from now."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return now + timedelta(seconds=parse_duration(text))
        except ValueError:
            raise templates.TemplateError(
                f"steps.{step_id}.until: {value!r} is neither an ISO time nor a duration",
                details={"field": f"steps.{step_id}.until"},
            ) from None
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment


async def fail_step(
    session: AsyncSession,
    run: RunState,
    definition: WorkflowDefinition,
    steps: list[StepState],
    step: StepState,
    *,
    error: str,
    code: str,
    now: datetime,
    settings: Settings,
    result: Advance,
) -> None:
    """Mark the step failed and apply its on_failure: fail the run, continue, or trigger the handler."""
    finish_step(step, StepStatus.FAILED, now, error=error, code=code)
    spec = definition.step(step.step_key)
    if spec.on_failure == "fail":
        await end_run(
            session, run, steps, RunStatus.FAILED, now=now, error=f"step {step.step_key} failed: {error}", result=result
        )


async def end_run(
    session: AsyncSession,
    run: RunState,
    steps: list[StepState],
    status: RunStatus,
    *,
    now: datetime,
    error: str | None,
    result: Advance,
) -> None:
    run.status = status.value
    run.finished_at = now
    run.error = error
    result.ended = (run, steps)
    for other in steps:
        if other.status in (StepStatus.PENDING.value, StepStatus.QUEUED.value, StepStatus.WAITING.value):
            reason = "the run was cancelled" if status is RunStatus.CANCELLED else "the run failed"
            finish_step(other, StepStatus.CANCELLED, now, error=f"not run: {reason}")
    result.events.append(
        (
            WORKFLOW_COMPLETED,
            {
                "event_id": f"{run.id}:{run.lock_version}",
                "run_id": run.id,
                "workflow_id": run.workflow_id,
                "version": run.version,
                "status": status.value,
                "error": error,
                "chain_depth": run.chain_depth,
            },
        )
    )


async def _maybe_finish(
    session: AsyncSession,
    run: RunState,
    definition: WorkflowDefinition,
    steps: list[StepState],
    *,
    now: datetime,
    result: Advance,
) -> None:
    handlers = definition.handler_ids
    for step in steps:
        if step.status in ACTIVE_STEP_STATUSES and not (
            step.status == StepStatus.PENDING.value and step.step_key in handlers
        ):
            return
    for step in steps:
        if step.status == StepStatus.PENDING.value:  # a failure handler whose failure never happened
            finish_step(step, StepStatus.SKIPPED, now)
    failed = [
        s for s in steps if s.status == StepStatus.FAILED.value and definition.step(s.step_key).on_failure != "continue"
    ]
    if failed:
        first = failed[0]
        await end_run(
            session,
            run,
            steps,
            RunStatus.FAILED,
            now=now,
            error=f"step {first.step_key} failed: {first.error}",
            result=result,
        )
    else:
        await end_run(session, run, steps, RunStatus.SUCCEEDED, now=now, error=None, result=result)
