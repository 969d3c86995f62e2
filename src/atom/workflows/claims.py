"""Claiming a step: exactly one delivery wins it, then its inputs are rendered and validated and its
action is checked by governance for the step's agent, in the claim's transaction (`runner.py` step 1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.config import Settings
from atom.db.base import UTCDateTime
from atom.errors import InvalidInput
from atom.governance import service as governance
from atom.workflows import outcomes, run_context, state, templates
from atom.workflows.actions import ActionRegistry, WorkflowAction
from atom.workflows.definition import WorkflowDefinition
from atom.workflows.models import StepStatus
from atom.workflows.state import STEPS, RunState, StepState

_NOW = bindparam("now", type_=UTCDateTime())
# Exactly one delivery wins a step: queued and due, or running with an expired lease (its worker died).
_CLAIM = (
    update(STEPS)
    .where(
        STEPS.c.id == bindparam("step_id"),
        or_(
            and_(
                STEPS.c.status == StepStatus.QUEUED.value,
                or_(STEPS.c.due_at.is_(None), STEPS.c.due_at <= _NOW),
            ),
            and_(STEPS.c.status == StepStatus.RUNNING.value, STEPS.c.lease_expires_at < _NOW),
        ),
    )
    .values(
        status=StepStatus.RUNNING.value,
        attempt=STEPS.c.attempt + 1,
        started_at=_NOW,
        finished_at=None,
        lease_expires_at=bindparam("lease_expires_at", type_=UTCDateTime()),
        worker=bindparam("worker"),
    )
    .returning(*STEPS.columns)
)


@dataclass
class Claim:
    run: RunState
    step: StepState
    attempt: int
    definition: WorkflowDefinition
    action: WorkflowAction | None
    params: Any
    timeout_s: float
    failure: tuple[str, str] | None = None  # (message, code): refused before acting, not retryable
    known: outcomes.Known | None = None  # a delivery's claim: the run's rows as its transaction left them


async def claim_step(
    session: AsyncSession, step_run_id: str, *, now: datetime, lease_s: float, worker: str
) -> StepState | None:
    """The step, claimed for `worker` until the lease ends; None when another delivery holds it or it is not due."""
    conn = await session.connection()
    claimed = await conn.execute(
        _CLAIM,
        {"step_id": step_run_id, "now": now, "lease_expires_at": now + timedelta(seconds=lease_s), "worker": worker},
    )
    row = claimed.mappings().first()
    return None if row is None else state.step_from(dict(row))


async def prepare(
    session: AsyncSession,
    *,
    run: RunState,
    steps: list[StepState],
    step: StepState,
    definition: WorkflowDefinition,
    registry: ActionRegistry,
    settings: Settings,
    override_input: dict[str, Any] | None,
    save: bool = True,
) -> Claim:
    """A claimed step's inputs rendered and validated and its action checked by governance
    (`save=False`: the step's row is not written here, the caller inserts it)."""
    spec = definition.step(step.step_key)
    timeout = min(spec.timeout or settings.workflow_job_timeout_s, settings.workflow_job_timeout_s)
    claim = Claim(run, step, step.attempt, definition, None, None, timeout)
    try:
        try:
            if override_input is not None:
                rendered = override_input
            else:
                failure = (
                    run_context.failure_for_handler(definition, steps, step.step_key)
                    if step.step_key in definition.handler_ids
                    else None
                )
                context = run_context.template_context(run, steps, failure=failure)
                rendered = templates.render_value(spec.with_, context, field=f"steps.{spec.id}.with")
            step.input = rendered
            action = registry.get(spec.action or "")
            if action is None:
                claim.failure = (f"no registered action {spec.action!r}", "UNKNOWN_ACTION")
                return claim
            claim.action = action
            claim.params = action.validate(rendered)
        except (templates.TemplateError, InvalidInput) as exc:
            claim.failure = (exc.message, exc.code)
            return claim
        decision = await governance.check(
            session=session,
            agent_id=step.agent_id or run.agent_id,
            action=action.governance_action(claim.params),
            context=run_context.governance_context(run),
            settings=settings,
        )
        if not decision.allowed:
            claim.failure = (f"governance: {decision.reason}", decision.reason_code)
        return claim
    finally:
        if save:
            await state.save_steps(session, [step])
