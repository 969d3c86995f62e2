"""Changes to a run that come from outside its steps: a wait that came due or an approval a person
decided, a cancel and a retry. Each locks the run first, as every change in `machine.py` does, and
returns what to do after the commit (`machine.Advance`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.config import Settings
from atom.errors import Conflict, NotFound
from atom.workflows.definition import WorkflowDefinition
from atom.workflows.machine import (
    RUN_CANCELLED,
    Advance,
    advance_run,
    end_run,
    fail_step,
    finish_step,
    load_steps,
    lock_run,
    save,
)
from atom.workflows.models import RunStatus, StepStatus
from atom.workflows.run_context import idempotency_key
from atom.workflows.state import RunState


async def resolve_waiting(
    session: AsyncSession,
    *,
    run_id: str,
    step_run_id: str,
    definition: WorkflowDefinition,
    approved: bool,
    output: dict[str, Any],
    error: str | None,
    code: str | None,
    now: datetime,
    settings: Settings,
) -> Advance | None:
    """A wait came due, or a person decided an approval step. None when the step is no longer waiting."""
    run = await lock_run(session, run_id)
    if run is None or run.status != RunStatus.RUNNING.value:
        return None
    steps = await load_steps(session, run_id)
    step = next((s for s in steps if s.id == step_run_id), None)
    if step is None or step.status != StepStatus.WAITING.value:
        return None
    result = Advance()
    step.output = output
    if approved:
        finish_step(step, StepStatus.SUCCEEDED, now)
    else:
        await fail_step(
            session,
            run,
            definition,
            steps,
            step,
            error=error or "refused",
            code=code or "REFUSED",
            now=now,
            settings=settings,
            result=result,
        )
    result.merge(await advance_run(session, run, definition, steps, now=now, settings=settings))
    await save(session, run, steps)
    return result


async def cancel_run(session: AsyncSession, *, run_id: str, actor: audit.Actor, now: datetime) -> Advance:
    run = await _lock_existing(session, run_id)
    if run.status != RunStatus.RUNNING.value:
        raise Conflict(f"The run is already {run.status}.", code="RUN_FINISHED", details={"status": run.status})
    steps = await load_steps(session, run_id)
    result = Advance()
    await end_run(session, run, steps, RunStatus.CANCELLED, now=now, error="cancelled", result=result)
    result.events.append((RUN_CANCELLED, {"run_id": run.id}))
    await save(session, run, steps)
    await audit.record(
        session=session,
        actor=actor,
        action="workflow.run.cancel",
        resource_type="workflow_run",
        resource_id=run.id,
        decision="done",
        details={"running_steps": [s.step_key for s in steps if s.status == StepStatus.RUNNING.value]},
    )
    return result


async def retry_run(
    session: AsyncSession,
    *,
    run_id: str,
    definition: WorkflowDefinition,
    actor: audit.Actor,
    now: datetime,
    settings: Settings,
) -> Advance:
    """Run again from the steps that failed or never ran; steps that succeeded keep their outputs."""
    run = await _lock_existing(session, run_id)
    if run.status not in (RunStatus.FAILED.value, RunStatus.CANCELLED.value):
        raise Conflict(
            f"Only a failed or cancelled run can be retried; this one is {run.status}.",
            code="RUN_NOT_RETRYABLE",
            details={"status": run.status},
        )
    steps = await load_steps(session, run_id)
    handlers = definition.handler_ids
    reset = []
    for step in steps:
        rerun = step.status in (StepStatus.FAILED.value, StepStatus.CANCELLED.value) or (
            step.step_key in handlers and step.status != StepStatus.RUNNING.value
        )
        if not rerun:
            continue
        step.generation += 1
        step.status = StepStatus.PENDING.value
        step.attempt = 0
        step.idempotency_key = idempotency_key(run.id, step.step_key, step.generation)
        step.input = step.output = step.error = step.error_code = None
        step.queued_at = step.started_at = step.finished_at = step.due_at = step.lease_expires_at = None
        step.proposal_id = None
        step.logs = []
        reset.append(step.step_key)
    run.status = RunStatus.RUNNING.value
    run.error = None
    run.finished_at = None
    await audit.record(
        session=session,
        actor=actor,
        action="workflow.run.retry",
        resource_type="workflow_run",
        resource_id=run.id,
        decision="done",
        details={"steps": reset},
    )
    result = await advance_run(session, run, definition, steps, now=now, settings=settings)
    await save(session, run, steps)
    return result


async def _lock_existing(session: AsyncSession, run_id: str) -> RunState:
    run = await lock_run(session, run_id)
    if run is None:
        raise NotFound(f"No workflow run {run_id!r}.", code="RUN_NOT_FOUND", details={"run_id": run_id})
    return run
