"""ORM rows -> API shapes (shared by the routes and the CLI)."""

from __future__ import annotations

from datetime import datetime

from atom.db.base import utcnow
from atom.workflows import cron
from atom.workflows.models import StepRun, Workflow, WorkflowRun, WorkflowTrigger, WorkflowVersion
from atom.workflows.schemas import RunDetail, RunRead, StepRead, TriggerRead, WorkflowDetail

NEXT_FIRES_SHOWN = 5


def webhook_path(workflow_id: str, trigger_key: str) -> str:
    return f"/hooks/{workflow_id}/{trigger_key}"


def trigger_reads(workflow_id: str, triggers: list[WorkflowTrigger], now: datetime | None = None) -> list[TriggerRead]:
    reads = []
    for trigger in triggers:
        read = TriggerRead.model_validate(trigger)
        if trigger.kind == "schedule" and trigger.enabled:
            start = trigger.next_fire_at or now or utcnow()
            config = trigger.config
            read.next_fire_times = [
                start,
                *cron.next_fire_times(config["cron"], config.get("timezone", "UTC"), start, NEXT_FIRES_SHOWN - 1),
            ]
        if trigger.kind == "webhook":
            read.webhook_path = webhook_path(workflow_id, trigger.trigger_key)
        reads.append(read)
    return reads


def workflow_detail(workflow: Workflow, version: WorkflowVersion, triggers: list[WorkflowTrigger]) -> WorkflowDetail:
    return WorkflowDetail(
        id=workflow.id,
        name=workflow.name,
        description=workflow.description,
        current_version=workflow.current_version,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
        definition=version.definition,
        source=version.source,
        source_format=version.source_format,
        definition_hash=version.definition_hash,
        agent_ids=version.agent_ids,
        triggers=trigger_reads(workflow.id, triggers),
    )


def step_read(step: StepRun) -> StepRead:
    read = StepRead.model_validate(step)
    if step.started_at is not None and step.finished_at is not None:
        read.duration_ms = round((step.finished_at - step.started_at).total_seconds() * 1000, 3)
    return read


def run_detail(run: WorkflowRun, steps: list[StepRun]) -> RunDetail:
    return RunDetail(
        **RunRead.model_validate(run).model_dump(),
        inputs=run.inputs,
        trigger_payload=run.trigger_payload,
        steps=[step_read(s) for s in steps],
    )
