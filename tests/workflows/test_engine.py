"""The durable engine on SQLite and PostgreSQL: DAG order, parallel branches, conditions, failures,
retries, timeouts, cancel, retry-from-failed, and redelivery that never repeats a side effect."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.workflows import app as workflows_app
from atom.workflows import flows
from atom.workflows.models import StepRun
from atom.workflows.runner import StepRunner
from tests.support.agents import make_agent
from tests.support.integration_servers import HttpServer
from tests.workflows.conftest import FakeClock, load_run, make_workflow, start, wait_run, wait_step


def paths(server: HttpServer) -> list[str]:
    return [f"{r['path']}?{r['query'].get('step', '')}".rstrip("?") for r in server.requests]


async def test_steps_run_in_dag_order_and_outputs_flow_downstream(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    server, url = http_api
    agent = await make_agent(db, settings, MaturityLevel.STUDENT, name="reader")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: ordered
agent: reader
inputs:
  greeting: {{default: hello}}
steps:
  - id: last
    needs: [left, right]
    action: http_request
    with:
      url: "{url}/echo"
      query:
        step: last
        got: "{{{{ steps.left.output.json.query.step }}}}+{{{{ steps.right.output.json.query.step }}}}"
  - id: first
    action: http_request
    with: {{url: "{url}/echo", query: {{step: first, say: "{{{{ inputs.greeting }}}}"}}}}
  - id: left
    needs: [first]
    action: http_request
    with: {{url: "{url}/echo", query: {{step: left}}}}
  - id: right
    needs: [first]
    action: http_request
    with: {{url: "{url}/echo", query: {{step: right}}}}
""",
    )
    started = await start(engine, workflow, {"greeting": "hi"})
    assert started.route == "run" and started.agent_id == agent.id
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    assert view.status == "succeeded", view.run.error
    order = [r["query"]["step"] for r in server.requests]
    assert order[0] == "first" and order[-1] == "last" and sorted(order[1:3]) == ["left", "right"]
    assert server.requests[0]["query"]["say"] == "hi"
    assert view.steps["last"].input["query"]["got"] == "left+right"  # type: ignore[index]
    assert [s.position for s in view.steps.values()] == sorted(s.position for s in view.steps.values())
    assert all(s.attempt == 1 and s.started_at and s.finished_at for s in view.steps.values())


async def test_parallel_branches_run_at_the_same_time(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    _server, url = http_api
    await make_agent(db, settings, MaturityLevel.STUDENT, name="par")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: parallel
agent: par
steps:
  - id: a
    action: http_request
    with: {{url: "{url}/barrier", query: {{key: k, n: 3, timeout: 10}}}}
  - id: b
    action: http_request
    with: {{url: "{url}/barrier", query: {{key: k, n: 3, timeout: 10}}}}
  - id: c
    action: http_request
    with: {{url: "{url}/barrier", query: {{key: k, n: 3, timeout: 10}}}}
  - id: join
    needs: [a, b, c]
    action: noop
    with: {{total: "{{{{ steps.a.output.json.arrived + steps.b.output.json.arrived }}}}"}}
""",
    )
    started = await start(engine, workflow)
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    assert view.status == "succeeded", view.run.error  # each barrier answered only once all three were waiting
    assert view.steps["join"].output == {"total": 6}


async def test_conditions_skip_steps_and_dependents_still_run(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.STUDENT, name="cond")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: conditional
agent: cond
inputs:
  amount: {{type: integer, default: 5}}
steps:
  - id: big
    if: inputs.amount > 100
    action: http_request
    with: {{url: "{url}/echo", query: {{step: big}}}}
  - id: small
    if: "{{{{ inputs.amount <= 100 }}}}"
    action: http_request
    with: {{url: "{url}/echo", query: {{step: small}}}}
  - id: report
    needs: [big, small]
    action: noop
    with: {{big: "{{{{ steps.big.status }}}}", small: "{{{{ steps.small.status }}}}"}}
""",
    )
    started = await start(engine, workflow, {"amount": 7})
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    assert view.status == "succeeded"
    assert [r["query"]["step"] for r in server.requests] == ["small"]
    assert view.steps["big"].status == "skipped" and view.steps["big"].attempt == 0
    assert view.steps["report"].output == {"big": "skipped", "small": "succeeded"}


async def test_a_missing_template_variable_fails_the_step_not_renders_empty(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.STUDENT, name="tmpl")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: templated
agent: tmpl
steps:
  - id: send
    action: http_request
    with: {{url: "{url}/echo", query: {{id: "{{{{ trigger.body.order_id }}}}"}}}}
  - id: after
    needs: [send]
    action: noop
""",
    )
    started = await start(engine, workflow, payload={"body": {"other": 1}})
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    assert view.status == "failed"
    send = view.steps["send"]
    assert send.status == "failed" and send.error_code == "TEMPLATE_ERROR"
    assert "order_id" in (send.error or "") and "steps.send.with.query.id" in (send.error or "")
    assert view.steps["after"].status == "cancelled"
    assert server.requests == []  # nothing was sent with an empty id


async def test_retries_back_off_until_success_then_exhaust(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.STUDENT, name="retry")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: flaky
agent: retry
steps:
  - id: recovers
    action: http_request
    with: {{url: "{url}/flaky/one", query: {{fail: 2}}}}
    retries: {{max: 3, backoff: 0.05, factor: 2}}
  - id: gives_up
    needs: [recovers]
    action: http_request
    with: {{url: "{url}/flaky/two", query: {{fail: 5}}}}
    retries: {{max: 1, backoff: 0.05}}
""",
    )
    started = await start(engine, workflow)
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    recovers, gives_up = view.steps["recovers"], view.steps["gives_up"]
    assert recovers.status == "succeeded" and recovers.attempt == 3 and recovers.output["json"] == {"attempts": 3}  # type: ignore[index]
    assert sum("retry in" in line["message"] for line in recovers.logs) == 2
    assert gives_up.status == "failed" and gives_up.attempt == 2 and gives_up.error_code == "INTEGRATION_UNAVAILABLE"
    assert server.failures["two"] == 2
    assert view.status == "failed" and "gives_up" in (view.run.error or "")


async def test_a_step_that_runs_too_long_times_out(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    _, url = http_api
    await make_agent(db, settings, MaturityLevel.STUDENT, name="slow")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: slowpoke
agent: slow
steps:
  - id: wait_for_it
    action: http_request
    timeout: 0.2s
    with: {{url: "{url}/slow", query: {{delay: 5}}}}
""",
    )
    started = await start(engine, workflow)
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    step = view.steps["wait_for_it"]
    assert step.status == "failed" and step.error_code == "STEP_TIMEOUT" and "0.2" in (step.error or "")


async def test_on_failure_continue_and_failure_handlers(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.STUDENT, name="handler")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: failures
agent: handler
steps:
  - id: optional
    action: http_request
    on_failure: continue
    with: {{url: "{url}/status/404"}}
  - id: still_runs
    needs: [optional]
    action: noop
    with: {{saw: "{{{{ steps.optional.status }}}}"}}
  - id: important
    needs: [still_runs]
    action: http_request
    on_failure: alert
    with: {{url: "{url}/status/500"}}
  - id: never
    needs: [important]
    action: noop
  - id: alert
    action: http_request
    with: {{url: "{url}/echo", query: {{failed: "{{{{ failure.step }}}}", code: "{{{{ failure.error_code }}}}"}}}}
""",
    )
    started = await start(engine, workflow)
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    assert view.steps["optional"].status == "failed"
    assert view.steps["still_runs"].output == {"saw": "failed"}
    assert view.steps["important"].status == "failed"
    assert view.steps["never"].status == "cancelled"
    assert view.steps["alert"].status == "succeeded"
    assert server.requests[-1]["query"] == {"failed": "important", "code": "INTEGRATION_UNAVAILABLE"}
    assert view.status == "failed"


async def test_governance_refuses_a_step_beyond_the_agents_level(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.STUDENT, name="student")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: too-much
agent: student
steps:
  - id: pay
    action: http_request
    with: {{method: POST, url: "{url}/charge", json: {{amount: 1}}}}
""",
    )
    started = await start(engine, workflow)
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    assert view.steps["pay"].status == "failed" and view.steps["pay"].error_code == "COMPLEXITY_EXCEEDS_MATURITY"
    assert server.requests == []


async def test_cancel_stops_a_running_step_and_the_rest(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.STUDENT, name="cancel")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: cancellable
agent: cancel
steps:
  - id: long
    action: http_request
    with: {{url: "{url}/slow", query: {{delay: 30}}}}
  - id: next
    needs: [long]
    action: http_request
    with: {{url: "{url}/echo"}}
""",
    )
    started = await start(engine, workflow)
    assert started.run_id is not None
    await wait_step(db, started.run_id, "long", "running")
    await flows.cancel(engine, run_id=started.run_id, actor=audit.Actor.system())
    view = await wait_step(db, started.run_id, "long", "failed")
    assert view.status == "cancelled"
    assert view.steps["long"].error_code == "CANCELLED" and view.steps["next"].status == "cancelled"
    assert [r["path"] for r in server.requests] == ["/slow"]


async def test_retry_from_the_failed_step_keeps_completed_side_effects(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str]
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.SUPERVISED, name="retrier")
    workflow = await make_workflow(
        db,
        engine,
        f"""
name: resumable
agent: retrier
steps:
  - id: charge
    action: http_request
    with: {{method: POST, url: "{url}/charge", json: {{amount: 10}}}}
  - id: ship
    needs: [charge]
    action: http_request
    with:
      method: POST
      url: "{url}/flaky/ship"
      query: {{fail: 1}}
      json: {{charge: "{{{{ steps.charge.output.json.id }}}}"}}
""",
    )
    started = await start(engine, workflow)
    assert started.run_id is not None
    failed = await wait_run(db, started.run_id)
    assert failed.status == "failed" and failed.steps["ship"].status == "failed"
    await flows.retry(engine, run_id=started.run_id, actor=audit.Actor.system())
    view = await wait_run(db, started.run_id)
    assert view.status == "succeeded"
    assert server.applied == [f"{started.run_id}:charge:0"]  # charged once, not again on retry
    assert view.steps["charge"].generation == 0 and view.steps["ship"].generation == 1
    assert view.steps["ship"].idempotency_key == f"{started.run_id}:ship:1"
    ship_keys = [r["headers"]["idempotency-key"] for r in server.requests if r["path"] == "/flaky/ship"]
    assert ship_keys == [f"{started.run_id}:ship:0", f"{started.run_id}:ship:1"]
    assert '"charge":"ch_1"' in server.requests[-1]["body"].replace(" ", "")


async def test_a_step_lost_with_its_worker_is_redelivered_and_never_repeats_its_side_effect(
    settings: Settings, db: Database, http_api: tuple[HttpServer, str]
) -> None:
    """Worker A sends the charge and dies before recording it; worker B takes the step over after the
    lease and sends it again with the same idempotency key: the charge happens once."""
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.SUPERVISED, name="durable")
    clock = FakeClock()
    clock.now = clock.now.replace(year=2030)
    first = StepRunner(db=db, settings=settings, clock=clock, worker_id="worker-a")
    first_started = await workflows_app.start(first, scheduler=False)
    workflow = await make_workflow(
        db,
        first,
        f"""
name: durable
agent: durable
steps:
  - id: charge
    action: http_request
    with: {{method: POST, url: "{url}/charge", query: {{delay_after: 30}}, json: {{amount: 5}}}}
  - id: receipt
    needs: [charge]
    action: noop
    with: {{charge: "{{{{ steps.charge.output.json.id }}}}"}}
""",
    )
    started = await start(first, workflow)
    assert started.run_id is not None
    view = await wait_step(db, started.run_id, "charge", "running")
    while not server.applied:  # noqa: ASYNC110 - the fixture server exposes a list, not an event
        await asyncio.sleep(0.01)
    await workflows_app.stop(first_started)  # the worker dies mid-step: nothing recorded, the step stays claimed
    assert (await load_run(db, started.run_id)).steps["charge"].status == "running"

    second = StepRunner(db=db, settings=settings, clock=clock, worker_id="worker-b")
    second_started = await workflows_app.start(second, scheduler=False)
    try:
        from atom.workflows.scheduler import Scheduler

        sweeper = Scheduler(second)
        early = await sweeper.tick(clock.now)
        assert early.redispatched == 0  # the lease has not expired yet
        clock.advance(seconds=settings.workflow_visibility_timeout_s + 1)
        late = await sweeper.tick(clock.now)
        assert late.redispatched == 1
        view = await wait_run(db, started.run_id)
    finally:
        await workflows_app.stop(second_started)
    assert view.status == "succeeded"
    charge = view.steps["charge"]
    assert charge.attempt == 2 and charge.worker == "worker-b"
    assert server.applied == [f"{started.run_id}:charge:0"]
    assert [r["headers"]["idempotency-key"] for r in server.requests] == [f"{started.run_id}:charge:0"] * 2
    assert view.steps["receipt"].output == {"charge": "ch_1"}
    async with db.session_scope() as s:
        assert await s.scalar(select(func.count()).select_from(StepRun)) == 2
