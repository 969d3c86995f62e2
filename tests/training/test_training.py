"""Training: estimate from history, scheduling on approval, completion moves confidence."""

from __future__ import annotations

import httpx
import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.training.sessions import performance_delta
from atom.training.supervision import rating_delta
from tests.conftest import MakeUser, UserWithKey
from tests.support.agents import make_agent
from tests.support.proposals import approve
from tests.training.conftest import SideEffects

PLAN = {"steps": [{"action": "test_read_record", "params": {}}]}


@pytest.fixture
async def approver(make_user: MakeUser) -> UserWithKey:
    return await make_user(Role.APPROVER)


async def _train(
    client: httpx.AsyncClient, who: UserWithKey, agent_id: str, performance: float, hours: float
) -> dict[str, object]:
    routed = (await client.post("/api/triggers", json={"agent_id": agent_id, "plan": PLAN}, headers=who.headers)).json()
    approval = (await approve(client, routed["proposal_id"], who.headers)).json()
    training_id = approval["training_id"]
    assert approval["proposal"]["kind"] == "training" and training_id
    done = await client.post(
        f"/api/training/{training_id}/complete",
        json={"performance": performance, "duration_hours": hours},
        headers=who.headers,
    )
    assert done.status_code == 200, done.text
    return dict(done.json())


@pytest.mark.parametrize(
    ("p", "delta"), [(0.1, 0.05), (0.3, 0.10), (0.49, 0.10), (0.5, 0.15), (0.69, 0.15), (0.7, 0.20), (1.0, 0.20)]
)
def test_performance_bands(p: float, delta: float) -> None:
    assert performance_delta(p, Settings(_env_file=None)) == delta  # type: ignore[call-arg]  # RULES' defaults


def test_training_bands_and_supervision_formula_are_settings() -> None:
    custom = Settings(  # type: ignore[call-arg]
        _env_file=None,
        confidence_training_bands=[(0, 0.01), (0.9, 0.3)],
        confidence_supervision_rating_divisor=20,
        confidence_supervision_intervention_penalty=0.02,
        confidence_supervision_penalty_cap=0.03,
    )
    assert [performance_delta(p, custom) for p in (0.0, 0.8, 0.9, 1.0)] == [0.01, 0.01, 0.3, 0.3]
    assert rating_delta(5, 1, custom) == pytest.approx(4 / 20 - 0.02)
    assert rating_delta(5, 9, custom) == pytest.approx(4 / 20 - 0.03)  # the penalty's cap
    assert rating_delta(1, 0, custom) == 0.0
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert rating_delta(5, 2, defaults) == pytest.approx(4 / 40 - 0.02)


@pytest.mark.parametrize("bands", ["[[0.1, 0.05]]", "[[0, 0.1], [0, 0.2]]", "[[0, 0.1], [1.5, 0.2]]", "[]"])
def test_bad_training_bands_are_refused_naming_the_setting(bands: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("ATOM_CONFIDENCE_TRAINING_BANDS", bands)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert caught.value.errors()[0]["loc"][0] == "confidence_training_bands"


@pytest.mark.parametrize("settings_overrides", [{"confidence_training_bands": [(0, 0.02), (0.75, 0.07)]}])
async def test_completion_uses_the_configured_bands(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.STUDENT)
    await _train(client, approver, agent.id, performance=0.8, hours=2)
    after = (await client.get(f"/api/agents/{agent.id}", headers=approver.headers)).json()
    assert round(after["confidence"], 4) == round(0.3 + 0.07, 4)


async def test_completion_moves_confidence_and_history_drives_the_estimate(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    first = await make_agent(db, settings, MaturityLevel.STUDENT, category="support")
    done = await _train(client, approver, first.id, performance=0.8, hours=20)
    assert done["status"] == "completed" and done["duration_hours"] == 20
    agent = (await client.get(f"/api/agents/{first.id}", headers=approver.headers)).json()
    assert (
        round(agent["confidence"], 4) == 0.5 and agent["maturity_level"] == "STUDENT"
    )  # level rises only by promotion
    await _train(client, approver, (await make_agent(db, settings, category="support")).id, performance=0.4, hours=30)

    newcomer = await make_agent(db, settings, category="support", confidence=0.3)
    routed = (
        await client.post("/api/triggers", json={"agent_id": newcomer.id, "plan": PLAN}, headers=approver.headers)
    ).json()
    # median of 20 h and 30 h = 25 h; distance (0.5 - 0.3) / 0.2 = 1; one capability gap: x1.1
    assert routed["extra"]["estimate_hours"] == 27.5 and routed["extra"]["range"] == [19.2, 41.2]

    other = await make_agent(db, settings, category="finance")
    routed = (
        await client.post("/api/triggers", json={"agent_id": other.id, "plan": PLAN}, headers=approver.headers)
    ).json()
    assert routed["extra"]["estimate_hours"] == 40.0


async def test_override_and_double_completion(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent = await make_agent(db, settings)
    routed = (
        await client.post("/api/triggers", json={"agent_id": agent.id, "plan": PLAN}, headers=approver.headers)
    ).json()
    training_id = (await approve(client, routed["proposal_id"], approver.headers)).json()["training_id"]
    overridden = await client.post(
        f"/api/training/{training_id}/override", json={"hours": 12}, headers=approver.headers
    )
    assert overridden.json()["override_hours"] == 12 and overridden.json()["estimate_hours"] == 40
    body = {"performance": 0.9}
    assert (
        await client.post(f"/api/training/{training_id}/complete", json=body, headers=approver.headers)
    ).status_code == 200
    again = await client.post(f"/api/training/{training_id}/complete", json=body, headers=approver.headers)
    assert again.status_code == 409
    bad = await client.post(
        f"/api/training/{training_id}/complete", json={"performance": 1.5}, headers=approver.headers
    )
    assert bad.status_code == 422
    assert effects.calls == []  # training never runs the blocked plan
