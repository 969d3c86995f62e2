"""What a run's steps are given: their idempotency keys, the governance context they are checked in
and the values their templates render from (`inputs`, `trigger`, `run`, `steps`, `failure`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from atom.governance.policy import GovernanceContext, TriggerKind
from atom.workflows.definition import WorkflowDefinition
from atom.workflows.models import StepStatus, WorkflowRun
from atom.workflows.state import RunState, StepState


def idempotency_key(run_id: str, step_key: str, generation: int) -> str:
    """Stable across redeliveries and automatic retries of a step; new when a person retries the run."""
    return f"{run_id}:{step_key}:{generation}"


RunLike = RunState | WorkflowRun


def governance_context(run: RunLike) -> GovernanceContext:
    return GovernanceContext(
        trigger=TriggerKind(run.trigger_kind),
        source=run.source,
        proposal_id=run.proposal_id,
        supervision_session_id=run.supervision_session_id,
        actor_user_id=run.actor_user_id,
    )


def template_context(run: RunLike, steps: list[StepState], *, failure: dict[str, Any] | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "inputs": run.inputs,
        "trigger": run.trigger_payload,
        "run": {
            "id": run.id,
            "workflow_id": run.workflow_id,
            "version": run.version,
            "source": run.source,
            "agent_id": run.agent_id,
        },
        "steps": {
            s.step_key: {"status": s.status, "output": s.output, "error": s.error, "input": s.input} for s in steps
        },
    }
    if failure is not None:
        context["failure"] = failure
    return context


def failure_for_handler(definition: WorkflowDefinition, steps: list[StepState], handler_key: str) -> dict[str, Any]:
    failed = [
        s
        for s in steps
        if s.status == StepStatus.FAILED.value and definition.step(s.step_key).on_failure == handler_key
    ]
    failed.sort(key=lambda s: s.finished_at or s.started_at or s.queued_at or datetime.min)
    if not failed:
        return {}
    last = failed[-1]
    return {"step": last.step_key, "error": last.error, "error_code": last.error_code, "output": last.output}
