"""A/B tests: deterministic assignment, validation, variants live in real agent runs, statistics."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from scipy import stats as scipy_stats

from atom.config import Settings
from atom.db.session import Database
from atom.feedback import abtests
from atom.feedback import stats as ab_stats
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import MakeUser, UserWithKey
from tests.support.llm_servers import text_reply


def test_assignment_is_the_rules_hash_and_stable() -> None:
    for subject in ("u1", "u2", "0199a-user", "anonymous"):
        digest = int(hashlib.sha256(f"t-42:{subject}".encode()).hexdigest(), 16)
        expected = "B" if (digest % 10000) / 10000 < 0.3 else "A"
        assert abtests.assign("t-42", subject, 0.3) == expected
        assert {abtests.assign("t-42", subject, 0.3) for _ in range(5)} == {expected}
    share_b = sum(abtests.assign("t-7", f"user-{i}", 0.3) == "B" for i in range(20_000)) / 20_000
    assert 0.28 < share_b < 0.32


def test_two_proportion_z_test_against_the_textbook() -> None:
    # 30/100 vs 45/100: pooled p = 0.375, SE = sqrt(0.375 * 0.625 * 0.02) = 0.068465, z = 0.15 / SE.
    result = ab_stats.two_proportions(30, 100, 45, 100)
    assert result.statistic == pytest.approx(2.19089, abs=1e-4)
    assert result.p_value == pytest.approx(0.028459, abs=1e-5)
    assert result.difference == pytest.approx(0.15)
    se = (0.3 * 0.7 / 100 + 0.45 * 0.55 / 100) ** 0.5
    assert result.ci_low == pytest.approx(0.15 - 1.959964 * se, abs=1e-5)
    assert result.ci_high == pytest.approx(0.15 + 1.959964 * se, abs=1e-5)
    assert ab_stats.two_proportions(0, 0, 3, 10).p_value is None


def test_welch_t_test_against_a_published_example() -> None:
    # The classic unequal-variance example (t = -2.46, df = 24.99, p = 0.021 for A1 - A2).
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    result = ab_stats.welch(a1, a2)  # b - a = A2 - A1
    assert result.statistic == pytest.approx(2.4554, abs=1e-3)
    assert result.p_value == pytest.approx(0.02138, abs=1e-4)
    assert result.difference == pytest.approx(sum(a2) / 15 - sum(a1) / 15)
    assert result.ci_low is not None and result.ci_high is not None
    assert 0 < result.ci_low < result.difference < result.ci_high
    assert result.p_value == pytest.approx(scipy_stats.ttest_ind(a2, a1, equal_var=False).pvalue)
    assert ab_stats.welch([4.0], [5.0, 3.0]).p_value is None


def subject_for(test_id: str, variant: str, users: list[UserWithKey]) -> UserWithKey:
    return next(u for u in users if abtests.assign(test_id, u.id, 0.5) == variant)


async def test_a_running_test_changes_the_prompt_per_user_and_counts_results(
    chat_app: Any,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    make_user: MakeUser,
    db: Database,
    settings: Settings,
) -> None:
    llm_server.default = text_reply("done", usage=(4, 1))
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "writer")
    approver, operator = await make_user("approver"), await make_user("operator")
    base = {"name": "tone", "agent_id": "writer", "variant_b": {"system_prompt": "Answer like a pirate."}}
    for bad, field in (
        ({**base, "traffic_share": 1.0}, "traffic_share"),
        ({**base, "traffic_share": 0}, "traffic_share"),
        ({**base, "traffic_share": 0.5, "variant_b": {}}, "variant_b"),
        ({**base, "traffic_share": 0.5, "variant_b": {"colour": "red"}}, "colour"),
    ):
        refused = await client.post("/api/abtests", json=bad, headers=approver.headers)
        assert refused.status_code == 422 and field in refused.text, refused.text
    assert (
        await client.post("/api/abtests", json={**base, "traffic_share": 0.5}, headers=operator.headers)
    ).status_code == 403
    created = await client.post(
        "/api/abtests", json={**base, "traffic_share": 0.5, "min_sample": 2}, headers=approver.headers
    )
    assert created.status_code == 201, created.text
    test_id = created.json()["id"]
    second = await client.post(
        "/api/abtests", json={**base, "name": "other", "traffic_share": 0.5}, headers=approver.headers
    )
    assert second.status_code == 409

    users = [await make_user("operator") for _ in range(4)]
    while {abtests.assign(test_id, u.id, 0.5) for u in users} != {"A", "B"}:  # ids are random: until both
        users.append(await make_user("operator"))
    user_a, user_b = subject_for(test_id, "A", users), subject_for(test_id, "B", users)
    prompts = {}
    for variant, user in (("A", user_a), ("B", user_b)):
        for _ in range(2):
            response = await client.post(
                "/api/chat/execute", json={"agent": "writer", "task": "hello", "stream": False}, headers=user.headers
            )
            assert response.status_code == 200, response.text
            system = llm_server.last_request.body["messages"][0]["content"]
            prompts.setdefault(variant, set()).add(system)
    assert prompts["B"] == {"Answer like a pirate."}
    assert len(prompts["A"]) == 1 and "pirate" not in next(iter(prompts["A"]))

    results = await client.get(f"/api/abtests/{test_id}/results", headers=operator.headers)
    assert results.status_code == 200, results.text
    body = results.json()
    assert body["a"]["runs"] == 2 and body["b"]["runs"] == 2
    assert body["a"]["value"] == 1.0 and body["b"]["value"] == 1.0
    assert body["test_used"] == "two-proportion z-test" and body["enough_data"] is True
    assert body["winner"] is None and body["p_value"] == 1.0

    stopped = await client.post("/api/abtests/tone/stop", headers=operator.headers)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    await client.post(
        "/api/chat/execute", json={"agent": "writer", "task": "hi", "stream": False}, headers=user_b.headers
    )
    assert llm_server.last_request.body["messages"][0]["content"] != "Answer like a pirate."


async def test_no_winner_below_the_minimum_sample(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, make_user: MakeUser, db: Database,
    settings: Settings,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "tiny")
    approver = await make_user("approver")
    created = await client.post(
        "/api/abtests",
        json={"name": "small", "agent_id": "tiny", "traffic_share": 0.5, "variant_b": {"temperature": 0.1}},
        headers=approver.headers,
    )
    assert created.status_code == 201 and created.json()["min_sample"] == settings.ab_min_sample
    results = await client.get("/api/abtests/small/results", headers=approver.headers)
    body = results.json()
    assert body["enough_data"] is False and body["winner"] is None and "Not enough data" in body["suggestion"]
    assert (await client.get("/api/abtests/nope/results", headers=approver.headers)).status_code == 404
