"""Chains: a step's completion claims the next ready step for the same worker in the same transaction.

The dispatcher here only collects what the engine hands to workers, so each test sees exactly which
steps went through the queue and which a worker went on with by itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.workflows import app as workflows_app
from atom.workflows.runner import StepRunner
from tests.support.agents import make_agent
from tests.workflows.conftest import Collected, load_run, make_workflow, start

LINE = """
name: line
agent: runner
steps:
  - {id: one, action: noop, with: {n: 1}}
  - {id: two, needs: [one], action: noop, with: {n: "{{ steps.one.output.n }}"}}
  - {id: three, needs: [two], action: noop, with: {n: "{{ steps.two.output.n }}"}}
"""

FORK = """
name: fork
agent: runner
steps:
  - {id: root, action: noop, with: {n: 1}}
  - {id: left, needs: [root], action: noop, with: {n: 2}}
  - {id: right, needs: [root], action: noop, with: {n: 3}}
  - {id: join, needs: [left, right], action: noop, with: {n: "{{ steps.left.output.n }}{{ steps.right.output.n }}"}}
"""


@pytest.fixture
async def collected(settings: Settings, db: Database) -> AsyncIterator[tuple[StepRunner, Collected]]:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="runner")
    queue = Collected()
    engine = StepRunner(db=db, settings=settings, dispatcher=queue, worker_id="w1")
    engine_started = await workflows_app.start(engine, scheduler=False)
    yield engine, queue
    await workflows_app.stop(engine_started)


async def test_a_line_of_steps_runs_on_one_worker_without_the_queue(
    db: Database, collected: tuple[StepRunner, Collected]
) -> None:
    engine, queue = collected
    started = await start(engine, await make_workflow(db, engine, LINE))
    assert started.run_id is not None
    assert len(queue.jobs) == 1

    first = await engine.run_step(queue.jobs[0].step_run_id)

    assert first is not None and first.ok and first.output == {"n": 1}
    view = await load_run(db, started.run_id)
    assert view.status == "succeeded"
    assert len(queue.jobs) == 1  # steps two and three never went through the queue
    assert {s.worker for s in view.steps.values()} == {"w1"}
    assert [view.steps[k].attempt for k in ("one", "two", "three")] == [1, 1, 1]
    assert view.steps["three"].input == {"n": 1}  # each step saw its predecessor's committed output


async def test_a_worker_that_may_not_go_on_hands_the_next_step_to_the_queue(
    db: Database, collected: tuple[StepRunner, Collected]
) -> None:
    engine, queue = collected
    engine.may_continue = lambda: False  # as a stopping worker
    started = await start(engine, await make_workflow(db, engine, LINE))
    assert started.run_id is not None

    await engine.run_step(queue.jobs[0].step_run_id)

    view = await load_run(db, started.run_id)
    assert view.steps["one"].status == "succeeded"
    assert view.steps["two"].status == "queued"
    assert [j.step_run_id for j in queue.jobs[1:]] == [view.steps["two"].id]

    engine.may_continue = lambda: True
    await engine.run_step(queue.jobs[1].step_run_id)
    assert (await load_run(db, started.run_id)).status == "succeeded"


async def test_of_two_steps_made_ready_one_goes_on_here_and_the_other_to_the_queue(
    db: Database, collected: tuple[StepRunner, Collected]
) -> None:
    engine, queue = collected
    started = await start(engine, await make_workflow(db, engine, FORK))
    assert started.run_id is not None

    await engine.run_step(queue.jobs[0].step_run_id)  # root, then one branch on this worker

    view = await load_run(db, started.run_id)
    branches = {view.steps["left"].status, view.steps["right"].status}
    assert branches == {"succeeded", "queued"}
    assert view.steps["join"].status == "pending"
    queued = [j.step_run_id for j in queue.jobs[1:]]
    assert len(queued) == 1

    await engine.run_step(queued[0])  # the other branch, then the join it made ready

    view = await load_run(db, started.run_id)
    assert view.status == "succeeded"
    assert view.steps["join"].input == {"n": "23"}
    assert len(queue.jobs) == 2


def cancelling_at(step: str) -> str:
    actions = {key: "noop, with: {n: 1}" for key in ("one", "two", "three")}
    actions[step] = "test_cancel_own_run"
    return f"""
name: cancelled-midway
agent: runner
steps:
  - {{id: one, action: {actions["one"]}}}
  - {{id: two, needs: [one], action: {actions["two"]}}}
  - {{id: three, needs: [two], action: {actions["three"]}}}
"""


@pytest.mark.parametrize(("at", "after"), [("one", "two"), ("two", "three")])
async def test_a_run_cancelled_elsewhere_during_a_step_stops_after_it(
    settings: Settings, db: Database, at: str, after: str
) -> None:
    """The worker's snapshot of the run (from the delivery's claim at step one, from the chain at step
    two) is stale once another process locked the run: the record reads the run again.

    The step's action cancels its own run in a transaction of its own and publishes nothing, as a
    person cancelling through another server whose event has not arrived yet.
    """
    from pydantic import BaseModel

    from atom.audit import service as audit
    from atom.db.base import utcnow
    from atom.workflows import actions as workflow_actions
    from atom.workflows import interventions
    from atom.workflows.actions import ActionContext, NoopParams, WorkflowAction

    async def cancel_own_run(params: BaseModel, ctx: ActionContext) -> dict[str, str]:
        async with db.session_scope() as s:
            await interventions.cancel_run(s, run_id=ctx.run_id, actor=audit.Actor.system(), now=utcnow())
        return {"cancelled": ctx.run_id}

    registry = workflow_actions.current()
    registry.register(
        WorkflowAction("test_cancel_own_run", 1, "Cancels its own run (tests).", NoopParams, cancel_own_run)
    )
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="runner")
    queue = Collected()
    engine = StepRunner(db=db, settings=settings, dispatcher=queue, registry=registry)
    engine_started = await workflows_app.start(engine, scheduler=False)
    try:
        started = await start(engine, await make_workflow(db, engine, cancelling_at(at)))
        assert started.run_id is not None
        await engine.run_step(queue.jobs[0].step_run_id)
    finally:
        await workflows_app.stop(engine_started)

    view = await load_run(db, started.run_id)
    assert view.status == "cancelled"
    assert view.steps[at].status == "succeeded"  # it ran; its completion is still recorded
    assert view.steps[after].status == "cancelled"
    assert view.steps[after].attempt == 0  # never claimed: the record saw the cancel
    assert len(queue.jobs) == 1
