"""The embedded engine's webhook intake and group commit: deliveries that arrive together are verified,
recorded and started in shared transactions, and each still gets its own answer (202, 401, 404, 409,
503), its own fire, its own run and audit records, with the audit chain intact. A delivery routed to
run has its first step claimed in the transaction that created the run (no queue hand-over), and a
body that fails in a group commit fails alone."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.errors import Conflict
from atom.governance.maturity import MaturityLevel
from atom.security import secrets_store
from atom.workflows import service, signing
from atom.workflows.commits import GroupCommitter
from atom.workflows.dispatch import EmbeddedPool
from atom.workflows.models import StepRun, TriggerFire, WorkflowRun
from atom.workflows.runner import StepRunner, is_transient
from tests.support.agents import make_agent
from tests.workflows.conftest import make_workflow, put_secret, wait_run

SECRET = "whsec-intake-5c3e"
HOOKED = """
name: {name}
agent: {agent}
{inputs}steps:
  - id: take
    action: noop
    with: {{n: "{{{{ trigger.body.n }}}}"}}
triggers:
  - id: hook
    type: webhook
    secret: intake_hook
"""


def delivery(n: int, *, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"n": n}).encode()
    return body, {**signing.headers(secret, str(int(time.time())), body), "Content-Type": "application/json"}


async def _hook(db: Database, engine: StepRunner, name: str, agent: str, inputs: str = "") -> str:
    workflow = await make_workflow(db, engine, HOOKED.format(name=name, agent=agent, inputs=inputs))
    return f"/hooks/{workflow.id}/hook"


async def _rows(db: Database, model: Any) -> list[Any]:
    async with db.session_scope() as s:
        return list((await s.scalars(select(model))).all())


async def test_deliveries_arriving_together_share_transactions_and_each_gets_its_own_answer(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="taker")
    await put_secret(db, settings, "intake_hook", SECRET)
    path = await _hook(db, engine, "taken", "taker")
    good = [delivery(n) for n in range(12)]
    forged = delivery(100, secret="not-the-secret")
    replay = good[3]  # the same body and signature as delivery 3, in the same batch
    unknown = delivery(101)
    answers = await asyncio.gather(
        *(client.post(path, content=body, headers=headers) for body, headers in good),
        client.post(path, content=forged[0], headers=forged[1]),
        client.post(path, content=replay[0], headers=replay[1]),
        client.post(path.replace("/hook", "/nope"), content=unknown[0], headers=unknown[1]),
    )
    statuses = [a.status_code for a in answers]
    assert statuses[:12] == [202] * 12, [a.text for a in answers]
    assert statuses[12:] == [401, 409, 404]
    assert answers[12].json()["error"]["code"] == "WEBHOOK_BAD_SIGNATURE"
    assert answers[13].json()["error"]["code"] == "WEBHOOK_REPLAYED"

    run_ids = [a.json()["run_id"] for a in answers[:12]]
    assert len(set(run_ids)) == 12
    for n, run_id in enumerate(run_ids):
        view = await wait_run(db, run_id)
        assert view.status == "succeeded" and view.steps["take"].output == {"n": n}
        step = view.steps["take"]
        # claimed by this process in the transaction that created the run: queued and started at once
        assert step.attempt == 1 and step.worker == engine.worker_id and step.started_at == step.queued_at
    fires = await _rows(db, TriggerFire)
    assert sorted(f.run_id for f in fires) == sorted(run_ids) and {f.outcome for f in fires} == {"run"}
    assert len({f.created_at for f in fires}) < len(fires)  # recorded together: a batch's fires share its time
    async with db.session_scope() as s:
        chain = await audit.verify_chain(session=s)
        events, _ = await audit.list_events(session=s, filters=audit.AuditFilter(), limit=200, cursor=None)
    assert chain.ok, chain.problem
    started = {e.resource_id for e in events if e.action == "workflow.run.start"}
    assert started == set(run_ids)
    assert sum(e.action == "trigger.route" for e in events) == 12


async def test_one_batch_routes_each_delivery_by_its_agents_maturity(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="runner-bot")
    await make_agent(db, settings, MaturityLevel.INTERN, name="intern-bot")
    await put_secret(db, settings, "intake_hook", SECRET)
    runs_path = await _hook(db, engine, "runs", "runner-bot")
    asks_path = await _hook(db, engine, "asks", "intern-bot")
    (body_a, headers_a), (body_b, headers_b) = delivery(1), delivery(2)
    ran, asked = await asyncio.gather(
        client.post(runs_path, content=body_a, headers=headers_a),
        client.post(asks_path, content=body_b, headers=headers_b),
    )
    assert ran.status_code == asked.status_code == 202
    assert ran.json()["route"] == "run" and ran.json()["run_id"]
    assert asked.json()["route"] == "proposal" and asked.json()["run_id"] is None and asked.json()["proposal_id"]
    assert (await wait_run(db, ran.json()["run_id"])).status == "succeeded"
    assert len(await _rows(db, WorkflowRun)) == 1
    assert {f.outcome for f in await _rows(db, TriggerFire)} == {"run", "proposal"}


async def test_a_delivery_that_cannot_start_fails_alone_and_its_fire_records_why(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="taker")
    await put_secret(db, settings, "intake_hook", SECRET)
    fine_path = await _hook(db, engine, "fine", "taker")
    needy_path = await _hook(db, engine, "needy", "taker", inputs="inputs:\n  region: {required: true}\n")
    fine = [delivery(n) for n in range(4)]
    needy = delivery(9)
    answers = await asyncio.gather(
        *(client.post(fine_path, content=b, headers=h) for b, h in fine[:2]),
        client.post(needy_path, content=needy[0], headers=needy[1]),  # no inputs from a webhook: cannot start
        *(client.post(fine_path, content=b, headers=h) for b, h in fine[2:]),
    )
    assert [a.status_code for a in answers] == [202, 202, 503, 202, 202]
    assert answers[2].json()["error"]["code"] == "RUN_NOT_STARTED"
    for answer in answers[:2] + answers[3:]:
        assert (await wait_run(db, answer.json()["run_id"])).status == "succeeded"
    outcomes = sorted(f.outcome for f in await _rows(db, TriggerFire))
    assert outcomes == ["error", "run", "run", "run", "run"]
    async with db.session_scope() as s:
        assert (await audit.verify_chain(session=s)).ok


async def test_a_body_that_fails_in_a_group_commit_fails_alone(settings: Settings, db: Database) -> None:
    committer = GroupCommitter(db, is_transient)
    await committer.start()
    try:

        def recorder(n: int, fail: bool = False) -> Any:
            async def body(session: Any) -> int:
                await audit.record(session=session, actor=audit.Actor.system(), action="test.group", resource_id=str(n))
                if fail:
                    raise Conflict("this one fails", code="TEST_FAILS")
                return n

            return body

        results = await asyncio.gather(
            *(committer.run(recorder(n, fail=n == 3)) for n in range(8)), return_exceptions=True
        )
    finally:
        await committer.stop()
    assert isinstance(results[3], Conflict) and results[3].code == "TEST_FAILS"
    assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5, 6, 7]
    assert committer.bodies == 7 and committer.batches < 7  # the others were committed together
    async with db.session_scope() as s:
        events, _ = await audit.list_events(
            session=s, filters=audit.AuditFilter(action="test.group"), limit=50, cursor=None
        )
        chain = await audit.verify_chain(session=s)
    assert sorted(e.resource_id for e in events) == ["0", "1", "2", "4", "5", "6", "7"]
    assert chain.ok, chain.problem


@pytest.mark.parametrize("rows", [1, 30])
async def test_group_commits_keep_the_steps_rows_consistent_under_concurrent_runs(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient, rows: int
) -> None:
    """Many runs whose creation, claim and completion share transactions: every step is recorded once."""
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="taker")
    await put_secret(db, settings, "intake_hook", SECRET)
    path = await _hook(db, engine, f"many-{rows}", "taker")
    answers = await asyncio.gather(*(client.post(path, content=b, headers=h) for b, h in map(delivery, range(rows))))
    run_ids = [a.json()["run_id"] for a in answers]
    for run_id in run_ids:
        assert (await wait_run(db, run_id)).status == "succeeded"
    steps = await _rows(db, StepRun)
    assert len(steps) == rows and all(s.status == "succeeded" and s.attempt == 1 for s in steps)


async def test_the_next_delivery_sees_a_rotated_secret_a_new_version_and_a_disabled_trigger(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    """The intake keeps a webhook's rows between batches: a change made meanwhile must not be missed."""
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="taker")
    await put_secret(db, settings, "intake_hook", SECRET)
    path = await _hook(db, engine, "kept", "taker")
    workflow_id = path.split("/")[2]
    first = await client.post(path, content=delivery(1)[0], headers=delivery(1)[1])
    assert first.status_code == 202
    assert (await wait_run(db, first.json()["run_id"])).steps["take"].output == {"n": 1}

    rotated = "whsec-intake-rotated"
    async with db.session_scope() as s:
        await secrets_store.rotate(
            session=s, cipher=engine.cipher, name="intake_hook", value=rotated, actor=audit.Actor.system()
        )
    old = delivery(2)
    assert (await client.post(path, content=old[0], headers=old[1])).status_code == 401

    source = HOOKED.format(name="kept", agent="taker", inputs="").replace('n: "', 'm: "')
    async with db.session_scope() as s:
        await service.update_workflow(
            session=s, workflow_id=workflow_id, source=source, fmt=None, registry=engine.registry,
            actor=audit.Actor.system(),
        )  # fmt: skip
    again = delivery(3, secret=rotated)
    answer = await client.post(path, content=again[0], headers=again[1])
    assert answer.status_code == 202, answer.text
    view = await wait_run(db, answer.json()["run_id"])
    assert view.run.version == 2 and view.steps["take"].output == {"m": 3}

    async with db.session_scope() as s:
        await service.update_workflow(
            session=s, workflow_id=workflow_id, source=source + "    enabled: false\n", fmt=None,
            registry=engine.registry, actor=audit.Actor.system(),
        )  # fmt: skip
    off = delivery(4, secret=rotated)
    refused = await client.post(path, content=off[0], headers=off[1])
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "WEBHOOK_NOT_FOUND"


async def test_the_pool_tells_a_producer_when_its_backlog_has_room() -> None:
    """The intake waits on `room` before each batch, so claimed steps do not pile up past the pool's backlog."""
    release = asyncio.Event()
    ran: list[int] = []

    def work(n: int) -> Any:
        async def step() -> None:
            await release.wait()
            ran.append(n)

        return step

    pool = EmbeddedPool(lambda _: asyncio.sleep(0), concurrency=2)
    for n in range(6):
        pool.run_now(work(n))
    await pool.start()
    try:
        waiting = asyncio.create_task(pool.room(2))
        for _ in range(10):
            await asyncio.sleep(0)
        assert not waiting.done()  # both workers are busy and four items still wait
        release.set()
        await asyncio.wait_for(waiting, 30)
        assert len(ran) >= 2  # room came from workers taking more, not from giving up
    finally:
        release.set()
        await pool.stop()
