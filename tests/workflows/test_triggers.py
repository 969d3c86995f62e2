"""Triggers: cron in a timezone (DST), missed fires after downtime, one fire across processes,
signed webhooks (signature, replay window, size limit), internal events, and the trigger
interceptor's routing of automated starts by the agent's maturity."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from atom.config import Settings
from atom.db.session import Database
from atom.events.bus import get_bus
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.training import proposals as proposals_service
from atom.training import supervision
from atom.training.models import BlockedTriggerContext, ProposalStatus
from atom.workflows import app as workflows_app
from atom.workflows import cron, flows, signing
from atom.workflows.definition import MissedPolicy
from atom.workflows.models import TriggerFire, Workflow, WorkflowRun, WorkflowTrigger
from atom.workflows.runner import StepRunner
from atom.workflows.scheduler import Scheduler
from tests.conftest import MakeUser
from tests.support.agents import make_agent
from tests.workflows.conftest import make_workflow, put_secret, wait_for, wait_run

MAX_BODY = 2048


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_max_body_bytes": MAX_BODY, "supervised_queue_policy": "run-and-notify"}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- cron arithmetic ----------------------------------------------------------------------------


def test_cron_fires_at_local_time_across_daylight_saving_changes() -> None:
    # 09:00 in Paris is 08:00 UTC in winter time and 07:00 UTC from 29 March 2026 (clocks go forward)
    spring = cron.next_fire_times("0 9 * * *", "Europe/Paris", utc(2026, 3, 27, 12), 3)
    assert spring == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]
    # and back to 08:00 UTC after 25 October 2026 (clocks go back)
    autumn = cron.next_fire_times("0 9 * * *", "Europe/Paris", utc(2026, 10, 23, 12), 3)
    assert autumn == [utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)]
    # New York changes on other dates: 8 March and 1 November 2026
    ny = cron.next_fire_times("30 8 * * 1-5", "America/New_York", utc(2026, 3, 6, 0), 2)
    assert ny == [utc(2026, 3, 6, 13, 30), utc(2026, 3, 9, 12, 30)]
    # the next fire is strictly after the given time
    assert cron.next_fire_times("0 9 * * *", "UTC", utc(2026, 1, 1, 9), 1) == [utc(2026, 1, 2, 9)]


def test_a_daily_fire_in_the_repeated_or_skipped_hour_happens_once_that_day() -> None:
    # 02:30 happens twice in Paris on 25 October 2026: a daily schedule fires at the first one only
    autumn = cron.next_fire_times("30 2 * * *", "Europe/Paris", utc(2026, 10, 24, 12), 2)
    assert autumn == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # 02:30 does not exist on 29 March 2026: it fires once, right after the gap (03:00 local)
    spring = cron.next_fire_times("30 2 * * *", "Europe/Paris", utc(2026, 3, 28, 12), 2)
    assert spring == [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]
    # a schedule that runs every half hour keeps running through the repeated hour (time really passes)
    half_hourly = cron.next_fire_times("*/30 * * * *", "Europe/Paris", utc(2026, 10, 25, 0), 4)
    assert half_hourly == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 25, 2),
    ]


def test_missed_fire_plan_skip_versus_run_once() -> None:
    due = utc(2026, 5, 1, 10)
    grace = timedelta(seconds=60)
    on_time = cron.plan_fires(
        "0 * * * *", "UTC", due_since=due, now=due + timedelta(seconds=30), grace=grace, policy=MissedPolicy.SKIP
    )
    assert on_time.fire_at == due and on_time.missed == 0 and on_time.next_fire_at == utc(2026, 5, 1, 11)
    late = due + timedelta(hours=4, minutes=30)  # down from 10:00 to 14:30: 10, 11, 12, 13, 14 missed
    skipped = cron.plan_fires("0 * * * *", "UTC", due_since=due, now=late, grace=grace, policy=MissedPolicy.SKIP)
    assert skipped.fire_at is None and skipped.skipped and skipped.missed == 5
    assert skipped.next_fire_at == utc(2026, 5, 1, 15) and skipped.last_missed == utc(2026, 5, 1, 14)
    once = cron.plan_fires("0 * * * *", "UTC", due_since=due, now=late, grace=grace, policy=MissedPolicy.RUN_ONCE)
    assert once.fire_at == utc(2026, 5, 1, 14) and once.missed == 5 and once.next_fire_at == utc(2026, 5, 1, 15)


# --- the scheduler ------------------------------------------------------------------------------

SCHEDULED = """
name: {name}
agent: {agent}
steps:
  - id: tick
    action: noop
    with: {{scheduled: "{{{{ trigger.scheduled_at }}}}", missed: "{{{{ trigger.missed }}}}"}}
triggers:
  - id: hourly
    type: schedule
    cron: "0 * * * *"
    timezone: Europe/Paris
    missed: {missed}
"""


async def _trigger(db: Database, workflow: Workflow, key: str) -> WorkflowTrigger:
    async with db.session_scope() as s:
        row = await s.scalar(
            select(WorkflowTrigger).where(
                WorkflowTrigger.workflow_id == workflow.id, WorkflowTrigger.trigger_key == key
            )
        )
    assert row is not None
    return row


async def _runs(db: Database, workflow: Workflow) -> list[WorkflowRun]:
    async with db.session_scope() as s:
        rows = (
            await s.scalars(select(WorkflowRun).where(WorkflowRun.workflow_id == workflow.id).order_by(WorkflowRun.id))
        ).all()
    return list(rows)


async def _fires(db: Database, trigger_id: str) -> list[TriggerFire]:
    async with db.session_scope() as s:
        rows = (await s.scalars(select(TriggerFire).where(TriggerFire.trigger_id == trigger_id))).all()
    return list(rows)


async def _finish_all(db: Database, workflow: Workflow) -> None:
    for run in await _runs(db, workflow):
        await wait_run(db, run.id)


@pytest.mark.parametrize("policy", ["skip", "run_once"])
async def test_missed_fires_after_downtime_follow_the_triggers_policy(
    settings: Settings, db: Database, engine: StepRunner, policy: str
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="clockwork")
    workflow = await make_workflow(
        db, engine, SCHEDULED.format(name=f"hourly-{policy}", agent="clockwork", missed=policy)
    )
    trigger = await _trigger(db, workflow, "hourly")
    first = trigger.next_fire_at
    assert first is not None and first.minute == 0 and first.second == 0
    scheduler = Scheduler(engine)

    assert (await scheduler.tick(first - timedelta(seconds=1))).fired == []
    on_time = await scheduler.tick(first + timedelta(seconds=5))
    assert on_time.fired == [trigger.id]
    [run] = await _runs(db, workflow)
    view = await wait_run(db, run.id)
    assert view.status == "succeeded" and view.run.source == "schedule" and view.run.trigger_kind == "automated"
    assert view.steps["tick"].output == {"scheduled": first.isoformat(), "missed": 0}
    assert (await scheduler.tick(first + timedelta(seconds=6))).fired == []  # the same fire never runs twice

    # the process was down for five and a half hours: five fire times passed beyond the grace period
    back = first + timedelta(hours=5, minutes=30)
    report = await scheduler.tick(back)
    runs = await _runs(db, workflow)
    fires = await _fires(db, trigger.id)
    if policy == "skip":
        assert report.fired == [] and report.skipped == [trigger.id]
        assert len(runs) == 1
        skipped = [f for f in fires if f.outcome == "skipped"]
        assert len(skipped) == 1 and "5 missed" in (skipped[0].detail or "")
    else:
        assert report.fired == [trigger.id] and report.skipped == []
        assert len(runs) == 2
        caught_up = await wait_run(db, runs[1].id)
        assert caught_up.status == "succeeded"
        assert caught_up.steps["tick"].output == {
            "scheduled": (first + timedelta(hours=5)).isoformat(),
            "missed": 5,
        }
    # either way the schedule resumes at the next fire time after now, once
    assert (await _trigger(db, workflow, "hourly")).next_fire_at == first + timedelta(hours=6)
    assert (await scheduler.tick(back + timedelta(seconds=1))).fired == []
    await _finish_all(db, workflow)


async def test_a_cron_fire_happens_once_with_two_engines_ticking_together(settings: Settings, db: Database) -> None:
    """Two engine processes (separate engines and connection pools, one database) tick at the same time."""
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="twin")
    first_db, second_db = db, Database(settings)
    engines = [
        StepRunner(db=first_db, settings=settings, worker_id="one"),
        StepRunner(db=second_db, settings=settings, worker_id="two"),
    ]
    started_engines = [await workflows_app.start(e, scheduler=False) for e in engines]
    try:
        workflow = await make_workflow(db, engines[0], SCHEDULED.format(name="twins", agent="twin", missed="skip"))
        trigger = await _trigger(db, workflow, "hourly")
        assert trigger.next_fire_at is not None
        schedulers = [Scheduler(e) for e in engines]
        for hour in range(3):
            at = trigger.next_fire_at + timedelta(hours=hour, seconds=2)
            reports = await asyncio.gather(*(s.tick(at) for s in schedulers))
            assert sum(len(r.fired) for r in reports) == 1, reports
            assert len(await _runs(db, workflow)) == hour + 1
            await _finish_all(db, workflow)
        fires = await _fires(db, trigger.id)
        assert sorted(f.fire_key for f in fires) == [
            f"cron:{(trigger.next_fire_at + timedelta(hours=h)).isoformat()}" for h in range(3)
        ]
    finally:
        for started_engine in started_engines:
            await workflows_app.stop(started_engine)
        await second_db.dispose()


# --- webhooks -----------------------------------------------------------------------------------

HOOKED = """
name: hooked
agent: receiver
steps:
  - id: take
    action: noop
    with: {order: "{{ trigger.body.order_id }}", via: "{{ trigger.type }}"}
triggers:
  - id: orders
    type: webhook
    secret: orders_hook
"""
SECRET = "whsec-orders-7f1c"


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {**signing.headers(secret, timestamp, body), "Content-Type": "application/json"}


async def _state(db: Database, workflow: Workflow) -> tuple[int, int]:
    async with db.session_scope() as s:
        runs = await s.scalar(
            select(func.count()).select_from(WorkflowRun).where(WorkflowRun.workflow_id == workflow.id)
        )
        fires = await s.scalar(select(func.count()).select_from(TriggerFire))
    return int(runs or 0), int(fires or 0)


async def _hooked(settings: Settings, db: Database, engine: StepRunner) -> tuple[Workflow, str]:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="receiver")
    await put_secret(db, settings, "orders_hook", SECRET)
    workflow = await make_workflow(db, engine, HOOKED)
    return workflow, f"/hooks/{workflow.id}/orders"


async def test_a_signed_webhook_starts_a_run_with_the_body(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    workflow, path = await _hooked(settings, db, engine)
    viewer = await make_user(Role.VIEWER)
    shown = (await client.get(f"/api/workflows/{workflow.name}", headers=viewer.headers)).json()
    assert [t["webhook_path"] for t in shown["triggers"]] == [path]  # where the sender posts
    body = json.dumps({"order_id": "A-1001", "total": 12}).encode()
    response = await client.post(path, content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["route"] == "run" and started["run_id"]
    view = await wait_run(db, started["run_id"])
    assert view.status == "succeeded" and view.run.source == "webhook"
    assert view.steps["take"].output == {"order": "A-1001", "via": "webhook"}


async def test_bad_signatures_stale_timestamps_and_replays_are_refused_and_change_nothing(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    workflow, path = await _hooked(settings, db, engine)
    body = json.dumps({"order_id": "A-2"}).encode()
    before = await _state(db, workflow)

    wrong_secret = await client.post(path, content=body, headers=signed(body, secret="guessed"))
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"]["code"] == "WEBHOOK_BAD_SIGNATURE"
    tampered = signed(body)
    other = await client.post(path, content=body.replace(b"A-2", b"A-3"), headers=tampered)
    assert other.status_code == 401 and other.json()["error"]["code"] == "WEBHOOK_BAD_SIGNATURE"
    unsigned = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "WEBHOOK_SIGNATURE_REQUIRED"
    window = settings.webhook_replay_window_s
    stale = await client.post(path, content=body, headers=signed(body, at=time.time() - window - 5))
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "WEBHOOK_TIMESTAMP_OUT_OF_WINDOW"
    future = await client.post(path, content=body, headers=signed(body, at=time.time() + window + 5))
    assert future.status_code == 401
    unknown = await client.post(f"/hooks/{workflow.id}/nope", content=body, headers=signed(body))
    assert unknown.status_code == 404
    assert await _state(db, workflow) == before  # no run, no fire recorded

    delivery = signed(body)
    first = await client.post(path, content=body, headers=delivery)
    assert first.status_code == 202
    replayed = await client.post(path, content=body, headers=delivery)
    assert replayed.status_code == 409 and replayed.json()["error"]["code"] == "WEBHOOK_REPLAYED"
    assert await _state(db, workflow) == (before[0] + 1, before[1] + 1)
    await wait_run(db, first.json()["run_id"])


async def test_an_oversized_webhook_body_is_refused_with_413_and_changes_nothing(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    workflow, path = await _hooked(settings, db, engine)
    body = json.dumps({"order_id": "big", "pad": "x" * MAX_BODY}).encode()
    before = await _state(db, workflow)
    declared = await client.post(path, content=body, headers=signed(body))
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "WEBHOOK_BODY_TOO_LARGE"

    async def chunks() -> Any:  # no Content-Length: the limit is enforced while reading
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    streamed = await client.post(path, content=chunks(), headers=signed(body))
    assert streamed.status_code == 413
    assert await _state(db, workflow) == before
    small = json.dumps({"order_id": "small"}).encode()
    assert (await client.post(path, content=small, headers=signed(small))).status_code == 202


# --- internal events ------------------------------------------------------------------------------

ON_FEEDBACK = """
name: triage-feedback
agent: triager
steps:
  - id: triage
    action: noop
    with: {said: "{{ trigger.payload.text }}", topic: "{{ trigger.event }}"}
triggers:
  - id: low_ratings
    type: event
    event: feedback.created
    filter: {rating: 1}
"""


async def test_an_event_on_the_bus_starts_the_workflow_once(
    settings: Settings, db: Database, engine: StepRunner
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="triager")
    workflow = await make_workflow(db, engine, ON_FEEDBACK)
    scheduler = Scheduler(engine)
    await scheduler.refresh_event_topics()  # what every engine's scheduler does at start and every few seconds

    event = {"id": "fb-41", "rating": 1, "text": "the export is broken"}
    await get_bus().publish("feedback.created", event)

    async def one_run() -> bool:
        return len(await _runs(db, workflow)) == 1

    await wait_for(one_run, what="the event to start a run")
    [run] = await _runs(db, workflow)
    view = await wait_run(db, run.id)
    assert view.status == "succeeded" and view.run.source == "event" and view.run.trigger_kind == "automated"
    assert view.steps["triage"].output == {"said": "the export is broken", "topic": "feedback.created"}

    # the same event delivered again (at-least-once bus) and an event the filter excludes start nothing
    assert await flows.fire_event(engine, "feedback.created", event) == []
    assert await flows.fire_event(engine, "feedback.created", {"id": "fb-42", "rating": 5, "text": "great"}) == []
    assert len(await _runs(db, workflow)) == 1


# --- the trigger interceptor --------------------------------------------------------------------

ROUTED = """
name: routed-{level}
agent: {level}-bot
steps:
  - id: note
    action: noop
    with: {{team: "{{{{ trigger.payload.team }}}}"}}
triggers:
  - id: on_invoice
    type: event
    event: invoice.received
    filter: {{team: {level}}}
"""


async def _blocked(db: Database, agent_id: str) -> list[BlockedTriggerContext]:
    async with db.session_scope() as s:
        rows = (await s.scalars(select(BlockedTriggerContext).where(BlockedTriggerContext.agent_id == agent_id))).all()
    return list(rows)


async def test_automated_triggers_are_routed_by_the_agents_maturity(
    settings: Settings, db: Database, engine: StepRunner, make_user: MakeUser
) -> None:
    agents, workflows = {}, {}
    for level in MaturityLevel:
        agents[level] = await make_agent(db, settings, level, name=f"{level.value.lower()}-bot")
        workflows[level] = await make_workflow(db, engine, ROUTED.format(level=level.value.lower()))

    async def fire(level: MaturityLevel) -> flows.StartResult:
        team = level.value.lower()
        [result] = await flows.fire_event(engine, "invoice.received", {"id": f"inv-{team}", "team": team})
        return result

    # STUDENT: does not run; the blocked trigger is recorded and a training proposal made
    student = await fire(MaturityLevel.STUDENT)
    assert student.route == "training" and student.run_id is None and student.proposal_id
    assert await _runs(db, workflows[MaturityLevel.STUDENT]) == []
    [blocked] = await _blocked(db, agents[MaturityLevel.STUDENT].id)
    assert blocked.routed_to == "training" and blocked.source == "event"
    [fire_row] = await _fires(db, (await _trigger(db, workflows[MaturityLevel.STUDENT], "on_invoice")).id)
    assert fire_row.outcome == "training" and fire_row.run_id is None

    # INTERN: a proposal a person approves; only then the run starts
    intern = await fire(MaturityLevel.INTERN)
    assert intern.route == "proposal" and intern.run_id is None and intern.proposal_id
    assert await _runs(db, workflows[MaturityLevel.INTERN]) == []
    assert [b.routed_to for b in await _blocked(db, agents[MaturityLevel.INTERN].id)] == ["proposal"]
    async with db.session_scope() as s:
        proposal = await proposals_service.get(session=s, proposal_id=intern.proposal_id)
    assert proposal.status == ProposalStatus.PENDING.value and proposal.plan[0]["action"] == "workflow.start"
    approver = await make_user(Role.APPROVER)
    approval = await proposals_service.approve(
        db=db,
        settings=settings,
        proposal_id=intern.proposal_id,
        approver_id=approver.id,
        seen_hash=proposal.plan_hash,
        reason="ok",
    )
    assert approval.run is not None and approval.run.ok
    [intern_run] = await _runs(db, workflows[MaturityLevel.INTERN])
    assert intern_run.proposal_id == intern.proposal_id
    assert (await wait_run(db, intern_run.id)).status == "succeeded"

    # SUPERVISED: runs inside a supervision session (no supervisor connected: run-and-notify here)
    supervised = await fire(MaturityLevel.SUPERVISED)
    assert supervised.route == "supervised" and supervised.supervision_session_id
    await supervision.wait_for_run(supervised.supervision_session_id)
    [supervised_run] = await _runs(db, workflows[MaturityLevel.SUPERVISED])
    assert supervised_run.supervision_session_id == supervised.supervision_session_id
    assert supervised_run.mode == "inline"
    view = await wait_run(db, supervised_run.id)
    assert view.status == "succeeded" and view.steps["note"].output == {"team": "supervised"}

    # AUTONOMOUS: runs
    autonomous = await fire(MaturityLevel.AUTONOMOUS)
    assert autonomous.route == "run" and autonomous.run_id
    assert await _blocked(db, agents[MaturityLevel.AUTONOMOUS].id) == []
    view = await wait_run(db, autonomous.run_id)
    assert view.status == "succeeded" and view.run.trigger_kind == "automated"
