"""Episodes and feedback (both databases): an episode's feedback score is the average (RULES.md: thumbs
+1 / -1, a rating r -> (r - 3) / 2) of the feedback on its agent runs and their messages; contextual
retrieval adds 0.2 when it is positive and takes 0.3 when negative; sequential retrieval shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from atom.audit import service as audit
from atom.chat.models import AgentExecution, ChatMessage, ChatSession
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.feedback import service as feedback_service
from atom.feedback.schemas import FeedbackCreate
from atom.memory import retrieval, service
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event
from atom.registries import build_registries
from atom.security.models import Role
from atom.security.principal import Principal
from atom.workflows import service as workflows_service
from atom.workflows.models import StepRun, WorkflowRun
from tests.support.agents import make_agent

REVIEWER = Principal(user_id="u-admin", username="ada", role=Role.ADMIN)


async def _run(db: Database, agent_id: str, task: str) -> tuple[str, str]:
    """A finished agent run in a chat, with its answer as a message: (execution id, message id)."""
    async with db.session_scope() as s:
        chat = ChatSession(agent_id=agent_id, user_id=REVIEWER.user_id, title=task)
        s.add(chat)
        await s.flush()
        started = utcnow() - timedelta(minutes=5)
        run = AgentExecution(
            agent_id=agent_id, input=task, output="done", started_at=started, finished_at=started, status="completed",
            trigger="chat", trigger_kind="manual", session_id=chat.id, user_id=REVIEWER.user_id,
        )  # fmt: skip
        s.add(run)
        await s.flush()
        answer = ChatMessage(
            session_id=chat.id, role="assistant", content="done", execution_id=run.id, created_at=started
        )
        s.add(answer)
        await s.flush()
        return run.id, answer.id


async def _episode(db: Database, memory: Memory, agent_id: str, execution_id: str, text: str) -> str:
    event = Event(agent_id, utcnow(), "message", text, "execution", execution_id, completes_task=True)
    async with db.session_scope() as s:
        [episode] = await service.record_events(session=s, memory=memory, events=[event])
    return episode.id


async def _give(db: Database, settings: Settings, target_type: str, target_id: str, **values: object) -> None:
    feedback = FeedbackCreate.model_validate({"target_type": target_type, "target_id": target_id, **values})
    async with db.session_scope() as s:
        await feedback_service.create(session=s, settings=settings, feedback_in=feedback, principal=REVIEWER)


async def test_feedback_on_an_episodes_runs_scores_it(settings: Settings, db: Database, memory: Memory) -> None:
    agent = await make_agent(db, settings)
    praised_run, praised_answer = await _run(db, agent.id, "Reconcile May's invoices")
    panned_run, _ = await _run(db, agent.id, "Email the overdue customers")
    mixed_run, mixed_answer = await _run(db, agent.id, "Summarise the support queue")
    quiet_run, _ = await _run(db, agent.id, "Archive last year's tickets")
    praised = await _episode(db, memory, agent.id, praised_run, "Reconcile May's invoices")
    panned = await _episode(db, memory, agent.id, panned_run, "Email the overdue customers")
    mixed = await _episode(db, memory, agent.id, mixed_run, "Summarise the support queue")
    quiet = await _episode(db, memory, agent.id, quiet_run, "Archive last year's tickets")

    await _give(db, settings, "execution", praised_run, kind="thumbs", thumbs=1)
    await _give(db, settings, "message", praised_answer, kind="rating", rating=4)  # (4 - 3) / 2 = 0.5
    await _give(db, settings, "execution", panned_run, kind="thumbs", thumbs=-1)
    await _give(db, settings, "execution", mixed_run, kind="rating", rating=1)  # -1
    await _give(db, settings, "message", mixed_answer, kind="rating", rating=5)  # +1
    await _give(db, settings, "execution", quiet_run, kind="comment", comment="fine")  # no score

    async with db.session_scope() as s:
        scores = await memory.feedback_hook(s, [praised, panned, mixed, quiet])
    assert scores == {praised: 0.75, panned: -1.0, mixed: 0.0}

    async with db.session_scope() as s:
        found = await retrieval.sequential(session=s, memory=memory, episode_id=panned, actor="test", reason="why")
    assert found.why["feedback"] == -1.0
    assert retrieval.contextual_score(temporal=1.0, semantic=1.0, canvas=False, feedback=0.75) == pytest.approx(1.2)
    assert retrieval.contextual_score(temporal=1.0, semantic=1.0, canvas=False, feedback=-1.0) == pytest.approx(0.7)


async def test_feedback_on_an_episodes_workflow_steps_scores_it(
    settings: Settings, db: Database, memory: Memory
) -> None:
    agent = await make_agent(db, settings, name="bookkeeper")
    source = "name: month-end\nagent: bookkeeper\nsteps:\n  - id: close\n    action: noop\n"
    now = utcnow()
    async with db.session_scope() as s:
        workflow, _ = await workflows_service.create_workflow(
            session=s, source=source, fmt=None, registry=build_registries().actions, actor=audit.Actor.system()
        )
        run = WorkflowRun(
            workflow_id=workflow.id, version=1, agent_id=agent.id, status="succeeded", trigger_kind="manual",
            source="manual", trigger_payload={}, inputs={}, created_at=now, finished_at=now,
        )  # fmt: skip
        s.add(run)
        await s.flush()
        step = StepRun(
            run_id=run.id, step_key="close", position=0, kind="action", action="noop", status="succeeded",
            idempotency_key=f"{run.id}:close", output={}, finished_at=now,
        )  # fmt: skip
        s.add(step)
        await s.flush()
        run_id, step_id = run.id, step.id
    events = [
        Event(agent.id, now, "workflow_step", "step close noop: succeeded", "workflow", step_id),
        Event(agent.id, now, "workflow_run", "workflow run succeeded", "workflow", run_id, completes_task=True),
    ]
    async with db.session_scope() as s:
        [episode] = await service.record_events(session=s, memory=memory, events=events)
    await _give(db, settings, "workflow_step", step_id, kind="rating", rating=2)  # (2 - 3) / 2
    async with db.session_scope() as s:
        assert await memory.feedback_hook(s, [episode.id]) == {episode.id: -0.5}
