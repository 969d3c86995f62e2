"""Automated triggers are routed by maturity; manual ones only pass per-action governance."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from atom.agents.models import AgentStatus
from atom.audit.models import AuditEvent
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.training.models import AgentProposal, BlockedTriggerContext, SupervisionSession
from tests.conftest import UserWithKey
from tests.support.agents import make_agent
from tests.training.conftest import SideEffects

PLAN = {"steps": [{"action": "test_read_record", "params": {"value": "a"}}, {"action": "analyze", "params": {}}]}
READ_ONLY = {"steps": [{"action": "test_read_record", "params": {"value": "a"}}]}


async def _fire(
    client: httpx.AsyncClient, who: UserWithKey, agent_id: str, plan: dict[str, object] = READ_ONLY, **extra: object
) -> dict[str, object]:
    response = await client.post(
        "/api/triggers", json={"agent_id": agent_id, "plan": plan, "source": "schedule", **extra}, headers=who.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_student_is_blocked_and_routed_to_training(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.STUDENT)
    routed = await _fire(client, admin, agent.id)
    assert routed["route"] == "training" and effects.calls == []
    assert routed["extra"]["estimate_hours"] == 40.0 and routed["extra"]["range"] == [28.0, 60.0]  # type: ignore[index]
    async with db.sessionmaker() as s:
        blocked = (await s.scalars(select(BlockedTriggerContext))).one()
        proposal = (await s.scalars(select(AgentProposal))).one()
    assert blocked.routed_to == "training" and blocked.source == "schedule" and blocked.agent_level == "STUDENT"
    assert proposal.kind == "training" and proposal.status == "pending" and proposal.blocked_trigger_id == blocked.id


async def test_intern_gets_a_proposal_holding_the_exact_plan(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN)
    routed = await _fire(client, admin, agent.id, PLAN)
    assert routed["route"] == "proposal" and effects.calls == []
    proposal = (await client.get(f"/api/proposals/{routed['proposal_id']}", headers=admin.headers)).json()
    assert proposal["plan"] == PLAN["steps"] and proposal["status"] == "pending" and len(proposal["plan_hash"]) == 64


async def test_supervised_waits_in_the_queue_without_a_supervisor(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    routed = await _fire(client, admin, agent.id)
    assert routed["route"] == "supervised"
    session = (await client.get(f"/api/supervision/{routed['supervision_session_id']}", headers=admin.headers)).json()
    assert session["status"] == "queued" and effects.calls == []


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", {}))


@pytest.mark.parametrize("settings_overrides", [{"supervised_queue_policy": "run-and-notify"}], indirect=True)
async def test_supervised_runs_and_notifies_when_policy_says_so(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    from atom.training import supervision

    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    routed = await _fire(client, admin, agent.id)
    await supervision.wait_for_run(str(routed["supervision_session_id"]))
    session = (await client.get(f"/api/supervision/{routed['supervision_session_id']}", headers=admin.headers)).json()
    assert session["status"] == "completed" and session["notified"] is True
    assert effects.calls == [("test_read_record", "a")]
    notify = (await client.get("/api/audit?action=supervision.notify", headers=admin.headers)).json()["items"]
    assert len(notify) == 1


async def test_autonomous_runs(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS)
    routed = await _fire(client, admin, agent.id)
    assert routed["route"] == "run" and routed["run"]["ok"] is True  # type: ignore[index]
    assert effects.calls == [("test_read_record", "a")]
    unknown = await _fire(client, admin, agent.id, PLAN)
    failed = unknown["run"]["steps"][-1]  # type: ignore[index]
    # RULES.md classifies `analyze` but nothing implements it: governance denies it as not available
    assert failed["status"] == "denied" and failed["reason_code"] == "UNKNOWN_ACTION"


@pytest.mark.parametrize("level", list(MaturityLevel))
async def test_manual_triggers_get_per_action_governance_only(
    client: httpx.AsyncClient,
    admin: UserWithKey,
    db: Database,
    settings: Settings,
    effects: SideEffects,
    level: MaturityLevel,
) -> None:
    agent = await make_agent(db, settings, level)
    plan = {
        "steps": [
            {"action": "test_read_record", "params": {"value": "m"}},
            {"action": "test_create_record", "params": {"value": "c"}},
        ]
    }
    routed = await _fire(client, admin, agent.id, plan, kind="manual")
    assert routed["route"] == "run"
    run = routed["run"]
    assert isinstance(run, dict)
    if level.rank >= 3:
        assert run["ok"] and effects.count("test_create_record") == 1
    else:
        assert not run["ok"] and run["steps"][-1]["status"] == "denied"
        assert run["steps"][-1]["reason_code"] == "COMPLEXITY_EXCEEDS_MATURITY"
        assert effects.count("test_create_record") == 0
    assert effects.count("test_read_record") == 1


async def test_paused_agent_is_refused(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS, AgentStatus.PAUSED)
    routed = await _fire(client, admin, agent.id)
    assert routed["route"] == "refused" and effects.calls == []


async def test_every_route_is_audited(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    for level in MaturityLevel:
        agent = await make_agent(db, settings, level)
        await _fire(client, admin, agent.id)
    async with db.sessionmaker() as s:
        decisions = sorted(
            (await s.scalars(select(AuditEvent.decision).where(AuditEvent.action == "trigger.route"))).all()
        )
    assert decisions == ["proposal", "run", "supervised", "training"]


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        ({"steps": []}, "body.plan.steps"),
        ({"steps": [{"action": "bad action!"}]}, "body.plan.steps.0.action"),
        ({}, "body.plan.steps"),
    ],
)
async def test_malformed_plan_is_422(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, plan: dict[str, object], field: str
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS)
    response = await client.post("/api/triggers", json={"agent_id": agent.id, "plan": plan}, headers=admin.headers)
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["details"]["fields"]]


async def test_unknown_agent_is_404(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    response = await client.post("/api/triggers", json={"agent_id": "nope", "plan": READ_ONLY}, headers=admin.headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "AGENT_NOT_FOUND"


async def test_only_automated_triggers_of_supervised_agents_record_supervision_sessions(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    """Every other route (training, proposal, run, manual) leaves no supervision session row behind."""
    for level in (MaturityLevel.STUDENT, MaturityLevel.INTERN, MaturityLevel.AUTONOMOUS):
        await _fire(client, admin, (await make_agent(db, settings, level)).id)
    supervised = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    assert (await _fire(client, admin, supervised.id, kind="manual"))["route"] == "run"
    async with db.sessionmaker() as s:
        assert (await s.scalars(select(SupervisionSession))).all() == []
    routed = await _fire(client, admin, supervised.id)
    async with db.sessionmaker() as s:
        rows = (await s.scalars(select(SupervisionSession))).all()
    assert [(r.id, r.agent_id) for r in rows] == [(routed["supervision_session_id"], supervised.id)]
