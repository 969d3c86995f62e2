"""Approval steps (proposals a person decides, listed with every other proposal) and wait steps."""

from __future__ import annotations

from datetime import timedelta

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.training import proposals as proposals_service
from atom.training.models import ProposalStatus
from atom.workflows import app as workflows_app
from atom.workflows import flows
from atom.workflows.runner import StepRunner
from atom.workflows.scheduler import Scheduler
from tests.conftest import MakeUser
from tests.support.agents import make_agent
from tests.support.integration_servers import HttpServer
from tests.workflows.conftest import FakeClock, load_run, make_workflow, start, wait_run, wait_step

APPROVAL = """
name: {name}
agent: approver-bot
inputs:
  amount: {{type: integer, default: 120}}
steps:
  - id: quote
    action: noop
    with: {{amount: "{{{{ inputs.amount }}}}"}}
  - id: sign_off
    type: approval
    needs: [quote]
    message: "Pay {{{{ steps.quote.output.amount }}}} EUR?"
  - id: pay
    needs: [sign_off]
    action: http_request
    with: {{method: POST, url: "{url}/charge", json: {{amount: "{{{{ steps.quote.output.amount }}}}"}}}}
"""


async def _pending_proposals(db: Database) -> list[proposals_service.AgentProposal]:
    async with db.session_scope() as s:
        rows, _ = await proposals_service.list_proposals(
            session=s, status=ProposalStatus.PENDING, kind=None, agent_id=None, limit=50, cursor=None
        )
    return rows


async def test_an_approval_step_waits_in_the_proposals_list_until_approved(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str], make_user: MakeUser
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.SUPERVISED, name="approver-bot")
    approver = await make_user(Role.APPROVER)
    workflow = await make_workflow(db, engine, APPROVAL.format(name="pay-approved", url=url))
    started = await start(engine, workflow)
    assert started.run_id is not None
    view = await wait_step(db, started.run_id, "sign_off", "waiting")
    assert view.steps["sign_off"].input == {"message": "Pay 120 EUR?"}
    [proposal] = await _pending_proposals(db)
    assert proposal.id == view.steps["sign_off"].proposal_id and proposal.source == "workflow"
    assert proposal.plan[0]["params"]["message"] == "Pay 120 EUR?"
    assert server.requests == []  # nothing paid while waiting

    await flows.approve_step(engine, run_id=started.run_id, step_key="sign_off", approver_id=approver.id, reason="ok")
    done = await wait_run(db, started.run_id)
    assert done.status == "succeeded"
    assert done.steps["sign_off"].output == {"approved": True, "approved_by": approver.id, "proposal_id": proposal.id}
    assert len(server.applied) == 1
    assert await _pending_proposals(db) == []


async def test_approving_from_the_proposals_list_continues_the_run(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str], make_user: MakeUser
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.SUPERVISED, name="approver-bot")
    approver = await make_user(Role.APPROVER)
    workflow = await make_workflow(db, engine, APPROVAL.format(name="pay-listed", url=url))
    started = await start(engine, workflow)
    assert started.run_id is not None
    view = await wait_step(db, started.run_id, "sign_off", "waiting")
    proposal_id = view.steps["sign_off"].proposal_id
    assert proposal_id is not None
    async with db.sessionmaker() as s:
        shown = (await proposals_service.get(session=s, proposal_id=proposal_id)).plan_hash  # what the list shows
    approval = await proposals_service.approve(
        db=db, settings=settings, proposal_id=proposal_id, approver_id=approver.id, seen_hash=shown, reason="fine"
    )
    assert approval.run is not None and approval.run.ok
    assert (await wait_run(db, started.run_id)).status == "succeeded"
    assert len(server.applied) == 1


async def test_a_rejected_approval_fails_the_run_and_nothing_is_paid(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str], make_user: MakeUser
) -> None:
    server, url = http_api
    await make_agent(db, settings, MaturityLevel.SUPERVISED, name="approver-bot")
    approver = await make_user(Role.APPROVER)
    workflow = await make_workflow(db, engine, APPROVAL.format(name="pay-rejected", url=url))
    started = await start(engine, workflow)
    assert started.run_id is not None
    await wait_step(db, started.run_id, "sign_off", "waiting")
    await flows.reject_step(
        engine, run_id=started.run_id, step_key="sign_off", approver_id=approver.id, reason="too much"
    )
    view = await wait_run(db, started.run_id)
    assert view.status == "failed"
    assert view.steps["sign_off"].error_code == "APPROVAL_REJECTED" and "too much" in (
        view.steps["sign_off"].error or ""
    )
    assert view.steps["pay"].status == "cancelled"
    assert server.requests == []


async def test_a_rejection_in_the_proposals_list_is_noticed_by_the_scheduler(
    settings: Settings, db: Database, engine: StepRunner, http_api: tuple[HttpServer, str], make_user: MakeUser
) -> None:
    _, url = http_api
    await make_agent(db, settings, MaturityLevel.SUPERVISED, name="approver-bot")
    approver = await make_user(Role.APPROVER)
    workflow = await make_workflow(db, engine, APPROVAL.format(name="pay-elsewhere", url=url))
    started = await start(engine, workflow)
    assert started.run_id is not None
    view = await wait_step(db, started.run_id, "sign_off", "waiting")
    async with db.session_scope() as s:
        await proposals_service.reject(
            session=s,
            proposal_id=view.steps["sign_off"].proposal_id or "",
            approver_id=approver.id,
            reason="no",
            settings=settings,
        )
    report = await Scheduler(engine).tick()
    assert report.approvals_settled == 1
    assert (await load_run(db, started.run_id)).status == "failed"


async def test_wait_steps_wait_for_a_duration_or_a_time(settings: Settings, db: Database) -> None:
    await make_agent(db, settings, MaturityLevel.STUDENT, name="waiter")
    clock = FakeClock()
    engine = StepRunner(db=db, settings=settings, clock=clock)
    engine_started = await workflows_app.start(engine, scheduler=False)
    try:
        workflow = await make_workflow(
            db,
            engine,
            """
name: waiting
agent: waiter
inputs:
  resume_at: {default: "2026-03-28T09:00:00+00:00"}
steps:
  - id: cool_off
    type: wait
    duration: 1h
  - id: until_morning
    type: wait
    needs: [cool_off]
    until: "{{ inputs.resume_at }}"
  - id: done
    needs: [until_morning]
    action: noop
""",
        )
        scheduler = Scheduler(engine)
        started = await start(engine, workflow)
        assert started.run_id is not None
        view = await wait_step(db, started.run_id, "cool_off", "waiting")
        assert view.steps["cool_off"].due_at == clock.now + timedelta(hours=1)
        assert (await scheduler.tick(clock.advance(minutes=59))).waits_released == 0
        assert (await scheduler.tick(clock.advance(minutes=1))).waits_released == 1
        view = await wait_step(db, started.run_id, "until_morning", "waiting")
        assert view.steps["until_morning"].due_at is not None
        assert view.steps["until_morning"].due_at.isoformat() == "2026-03-28T09:00:00+00:00"
        assert (await scheduler.tick(clock.advance(hours=1))).waits_released == 0
        clock.now = view.steps["until_morning"].due_at
        assert (await scheduler.tick()).waits_released == 1
        assert (await wait_run(db, started.run_id)).status == "succeeded"
    finally:
        await workflows_app.stop(engine_started)
