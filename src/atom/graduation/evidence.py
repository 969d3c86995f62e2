"""What an agent's episodes show: the actions it took (structured) and whether a person intervened.

Read through the memory, chat, workflows, training and feedback services from each episode's
segments: an execution's tool calls (name, arguments, status), a workflow step's action and input,
a supervision session's interventions, a proposal's decision, corrections on the agent's runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.chat import service as chat_service
from atom.errors import NotFound
from atom.feedback import service as feedback_service
from atom.memory import service as memory_service
from atom.memory.models import Episode
from atom.training import proposals as proposals_service
from atom.training import supervision as supervision_service
from atom.workflows import service as workflows_service

FAILED_STATUSES = {"failed", "error", "timeout", "unknown_tool", "invalid_params"}


@dataclass(frozen=True)
class Action:
    name: str
    params: dict[str, Any]
    status: str
    trigger: str
    source: str  # execution | workflow_step
    source_id: str


@dataclass
class EpisodeEvidence:
    episode_id: str
    actions: list[Action] = field(default_factory=list)
    interventions: int = 0
    corrections: int = 0
    failures: int = 0

    @property
    def intervened(self) -> bool:
        return self.interventions > 0 or self.corrections > 0

    @property
    def edge_case(self) -> bool:
        """Failures, interventions and corrections: what the exam replays."""
        return self.intervened or self.failures > 0


async def for_episode(session: AsyncSession, episode: Episode) -> EpisodeEvidence:
    evidence = EpisodeEvidence(episode_id=episode.id)
    executions: set[str] = set()
    for segment in await memory_service.segments(session=session, episode_id=episode.id):
        if segment.source_id is None:
            continue
        try:
            if segment.kind == "tool_call" and segment.source_id not in executions:
                executions.add(segment.source_id)
                await _execution(session, segment.source_id, evidence)
            elif segment.kind == "workflow_step":
                await _step(session, segment.source_id, evidence)
            elif segment.kind == "supervision":
                row = await supervision_service.get(session=session, session_id=segment.source_id)
                evidence.interventions += row.interventions or 0
            elif segment.kind == "decision":
                proposal = await proposals_service.get(session=session, proposal_id=segment.source_id)
                if proposal.status == "rejected":
                    evidence.interventions += 1
        except NotFound:  # the record was deleted since; its episode still stands
            continue
    corrections = await feedback_service.feedback_for_executions(session=session, execution_ids=sorted(executions))
    evidence.corrections = sum(1 for row in corrections if row.kind == "correction" and row.status != "rejected")
    return evidence


async def _execution(session: AsyncSession, execution_id: str, evidence: EpisodeEvidence) -> None:
    row = await chat_service.get_execution(session=session, execution_id=execution_id)
    if row.status in FAILED_STATUSES:
        evidence.failures += 1
    for call in row.tool_calls or []:
        status = str(call.get("status", ""))
        if status in FAILED_STATUSES:
            evidence.failures += 1
        if "model_arguments" in call:  # a supervisor corrected the call
            evidence.interventions += 1
        arguments = call.get("arguments")
        evidence.actions.append(
            Action(
                name=str(call.get("name", "")),
                params=arguments if isinstance(arguments, dict) else {},
                status=status,
                trigger=row.trigger_kind,
                source="execution",
                source_id=row.id,
            )
        )


async def _step(session: AsyncSession, step_id: str, evidence: EpisodeEvidence) -> None:
    step, run = await workflows_service.get_step(session=session, step_id=step_id)
    if step.kind != "action" or not step.action:
        return
    if step.status == "failed":
        evidence.failures += 1
    params = step.input if isinstance(step.input, dict) else {}
    evidence.actions.append(
        Action(
            name=step.action, params=params, status=step.status, trigger=run.trigger_kind,
            source="workflow_step", source_id=step.id,
        )
    )  # fmt: skip
