"""What a step's attempt ended in: succeeded, failed or skipped, recorded by the worker that ran it.

Each records the outcome only while that attempt still owns the step (a redelivery may have taken it
over) and advances the run (`machine.advance_run`); with `claim_next` the step this made ready is
claimed for the same worker in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.config import Settings
from atom.workflows import machine, state
from atom.workflows.definition import StepType, WorkflowDefinition
from atom.workflows.machine import (
    Advance,
    ClaimNext,
    QueuedStep,
    advance_run,
    fail_step,
    finish_step,
    load_steps,
    lock_run,
    save,
)
from atom.workflows.models import RunStatus, StepStatus
from atom.workflows.state import RunState, StepState


async def record_success(
    session: AsyncSession,
    *,
    run_id: str,
    step_run_id: str,
    attempt: int,
    output: dict[str, Any],
    logs: list[dict[str, Any]],
    definition: WorkflowDefinition,
    now: datetime,
    settings: Settings,
    claim_next: ClaimNext | None = None,
    known: Known | None = None,
    prepare: Callable[[AsyncSession, Advance], Awaitable[None]] | None = None,
) -> Advance | None:
    """None when this attempt no longer owns the step (a redelivery took it over, or it was cancelled).

    With `claim_next`, one step this completion made ready is claimed for the caller in the same
    transaction (`Advance.claimed`, with `Advance.run` and `Advance.steps`): a chain of steps then
    costs one transaction per step on one worker instead of a hand-over through the queue. `prepare`
    is awaited with the advance before it is written when it claimed a step (the caller renders that
    step's input on it); it may be awaited twice when `known` proves stale.
    `known` is the caller's snapshot of the run as its last transaction on it committed it (`Known`):
    while it is current the rows are not read again, and the whole record is one statement
    (`state.save_steps_at`): the run's lock, the step's conditional UPDATE and the claimed step's.
    """
    owned: dict[str, Any] = {"status": StepStatus.RUNNING.value, "attempt": attempt}

    def succeed(step: StepState) -> None:
        step.output, step.logs, step.error, step.error_code = output, logs, None, None
        finish_step(step, StepStatus.SUCCEEDED, now)

    # An approval made ready writes its proposal at once, which a stale snapshot must not have done.
    if known is not None and known.alone(step_run_id) and not _has_approvals(definition):
        run, steps = known.run, known.steps
        held = next(s for s in steps if s.id == step_run_id)
        succeed(held)
        result = await _advance(session, run, definition, steps, claim_next, prepare, now=now, settings=settings)
        if await state.save_steps_at(session, held, owned, run, [s for s in steps if s is not held]):
            await state.save_run(session, run)
            return result
        # stale (another transaction locked the run, or the attempt was taken over): nothing was written
    current = await _finish_owned(session, run_id, step_run_id, attempt, succeed)
    if current is None:
        return None
    run, steps = current
    result = await _advance(session, run, definition, steps, claim_next, prepare, now=now, settings=settings)
    await save(session, run, steps)
    return result


def _has_approvals(definition: WorkflowDefinition) -> bool:
    return any(s.type is StepType.APPROVAL for s in definition.steps)


async def _advance(
    session: AsyncSession,
    run: RunState,
    definition: WorkflowDefinition,
    steps: list[StepState],
    claim_next: ClaimNext | None,
    prepare: Callable[[AsyncSession, Advance], Awaitable[None]] | None,
    *,
    now: datetime,
    settings: Settings,
) -> Advance:
    result = await advance_run(session, run, definition, steps, now=now, settings=settings)
    if claim_next is not None:
        machine.claim_next(result, run, steps, claim_next, now)
    if prepare is not None and result.claimed is not None:
        await prepare(session, result)
    return result


async def _finish_owned(
    session: AsyncSession,
    run_id: str,
    step_run_id: str,
    attempt: int,
    finish: Callable[[StepState], None],
) -> tuple[RunState, list[StepState]] | None:
    """Lock the run, read its steps and write `finish` on the step if this attempt still owns it.

    The claim of a redelivery does not lock the run: only the step's row says who owns the attempt,
    so the step is written conditionally.
    """
    owned: dict[str, Any] = {"status": StepStatus.RUNNING.value, "attempt": attempt}
    run = await lock_run(session, run_id)
    if run is None:
        return None
    steps = await load_steps(session, run_id)
    step = next((s for s in steps if s.id == step_run_id), None)
    if step is None:
        return None
    finish(step)
    if not await state.save_step_if(session, step, owned):
        return None
    return run, steps


@dataclass(frozen=True)
class Known:
    """A run and its steps as the caller's last transaction on the run committed them.

    They are still the rows' state if nobody locked the run since (every transition of a run's steps
    but a claim locks it: `state.save_steps_at` checks) and no step but the caller's own could have been
    claimed meanwhile (`alone`: none other is queued, running or waiting).
    """

    run: RunState
    steps: list[StepState]

    def alone(self, step_run_id: str) -> bool:
        return all(s.id == step_run_id or s.status not in _CLAIMABLE_OR_HELD for s in self.steps)


_CLAIMABLE_OR_HELD = (StepStatus.QUEUED.value, StepStatus.RUNNING.value, StepStatus.WAITING.value)


async def record_failure(
    session: AsyncSession,
    *,
    run_id: str,
    step_run_id: str,
    attempt: int,
    error: str,
    code: str,
    retryable: bool,
    logs: list[dict[str, Any]],
    definition: WorkflowDefinition,
    now: datetime,
    settings: Settings,
) -> Advance | None:
    run = await lock_run(session, run_id)
    if run is None:
        return None
    steps = await load_steps(session, run_id)
    step = next((s for s in steps if s.id == step_run_id), None)
    if step is None or step.status != StepStatus.RUNNING.value or step.attempt != attempt:
        return None
    spec = definition.step(step.step_key)
    step.logs = logs
    result = Advance()
    owned: dict[str, Any] = {"status": StepStatus.RUNNING.value, "attempt": attempt}
    if retryable and attempt <= spec.retries.max and run.status == RunStatus.RUNNING.value:
        delay = spec.retries.delay(attempt)
        step.status = StepStatus.QUEUED.value
        step.error, step.error_code = error, code
        step.lease_expires_at = None
        step.queued_at = now
        step.due_at = now + timedelta(seconds=delay)
        step.dispatches += 1
        step.logs = [
            *logs,
            {"at": now.timestamp(), "message": f"attempt {attempt} failed ({code}); retry in {delay:g} s"},
        ]
        result.queued.append(QueuedStep(step.id, run.id, step.dispatches, delay_s=delay, inline=run.mode == "inline"))
        return result if await state.save_step_if(session, step, owned) else None
    if run.status != RunStatus.RUNNING.value:
        finish_step(step, StepStatus.FAILED, now, error=error, code=code)
        return result if await state.save_step_if(session, step, owned) else None
    finish_step(step, StepStatus.FAILED, now, error=error, code=code)
    if not await state.save_step_if(session, step, owned):
        return None
    await fail_step(
        session, run, definition, steps, step, error=error, code=code, now=now, settings=settings, result=result
    )
    result.merge(await advance_run(session, run, definition, steps, now=now, settings=settings))
    await save(session, run, steps)
    return result
