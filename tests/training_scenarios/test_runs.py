"""A STUDENT's training session runs its category's scenarios as dry runs of the real agent runtime against
the local OpenAI-wire server: scored by rules, reference and the LLM judge; side effects recorded, not run;
p moves confidence by RULES.md's band; a person may override; failures give no score."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.training import run_tasks
from atom.training.sessions import performance_delta
from tests.chat.conftest import WatchedOpenAIServer
from tests.conftest import MakeUser, UserWithKey
from tests.support.agents import make_agent
from tests.support.llm_servers import ScriptedToolCall, error_reply, text_reply, tool_reply
from tests.training.conftest import SideEffects
from tests.training_scenarios.support import (
    add_scenario,
    audit_rows,
    run_to_the_end,
    scheduled_training,
    training_ledger,
)

RULES_SCENARIO: dict[str, Any] = {
    "name": "create-order",
    "category": "sales",
    "task": "Look Ann up, then create order-5 for her.",
    "tools": ["test_read_record", "test_create_record"],
    "expect": {
        "rules": [
            {
                "id": "created-order-5",
                "condition": "calls.exists(c, c.name == 'test_create_record' && c.params.value == 'order-5')",
            },
            {"id": "said-so", "condition": "answer.contains('created')"},
            {"id": "read-twice", "condition": "calls.filter(c, c.name == 'test_read_record').size() == 2"},
        ]
    },
}
REFERENCE_SCENARIO: dict[str, Any] = {
    "name": "greet",
    "category": "sales",
    "task": "Greet Ann.",
    "tools": [],
    "expect": {"reference": {"answer": "Hello Ann", "match": "contains"}},
}
JUDGE_SCENARIO: dict[str, Any] = {
    "name": "summarize",
    "category": "sales",
    "task": "Summarize this week's sales in one sentence.",
    "tools": [],
    "expect": {"judge": {"rubric": "One factual sentence that names the trend."}},
}


def script_agent_runs(server: WatchedOpenAIServer, judge: str) -> None:
    """The replies, in the order the run asks: create-order (3 model calls), greet, summarize and its judge."""
    server.queue(
        tool_reply(ScriptedToolCall("test_read_record", ('{"value": "ann"}',))),
        tool_reply(ScriptedToolCall("test_create_record", ('{"value": ', '"order-5"}'))),
        text_reply("Order 5 was ", "created."),
        text_reply("Hello Ann, welcome back!"),
        text_reply("Sales rose 5% this week."),
        text_reply(judge),
    )


@pytest.fixture
async def approver(make_user: MakeUser) -> UserWithKey:
    return await make_user(Role.APPROVER)


@pytest.fixture
async def student(db: Database, settings: Settings) -> str:
    return (await make_agent(db, settings, MaturityLevel.STUDENT, category="sales", name="seller")).id


async def test_scenarios_are_run_recorded_scored_and_move_confidence(
    chat_app: FastAPI,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    approver: UserWithKey,
    student: str,
    effects: SideEffects,
) -> None:
    for scenario in (RULES_SCENARIO, REFERENCE_SCENARIO, JUDGE_SCENARIO):
        await add_scenario(client, approver, scenario)
    training_id = await scheduled_training(client, approver, student)
    script_agent_runs(llm_server, '{"score": 0.5, "reason": "Names the trend but no figures for context."}')

    done = await run_to_the_end(chat_app, client, approver, training_id)
    assert done["status"] == "completed", done
    assert (done["progress_done"], done["progress_total"]) == (3, 3) and done["run_error"] is None
    by_name = {r["scenario"]: r for r in done["results"]}

    created = by_name["create-order"]
    assert [(c["name"], c["status"]) for c in created["calls"]] == [
        ("test_read_record", "ok"),
        ("test_create_record", "recorded"),
    ]
    assert effects.calls == [("test_read_record", "ann")]  # the read ran; the side-effecting call did not
    assert created["recorded"] == 1
    rules = created["measures"]["rules"]
    assert [(r["id"], r["passed"]) for r in rules["rules"]] == [
        ("created-order-5", True),
        ("said-so", True),
        ("read-twice", False),
    ]
    assert created["score"] == rules["score"] == 0.6667
    # The exam's judgement of the calls, at the level the training prepares for.
    evidence = created["evidence"]
    assert evidence["target_level"] == "INTERN"
    assert [g["governance"] for g in evidence["governance"]] == ["allow", "deny"]
    assert [v["reason_code"] for v in evidence["violations"]] == ["COMPLEXITY_EXCEEDS_MATURITY"]

    assert by_name["greet"]["measures"] == {"reference": {"score": 1.0, "match": "contains"}}
    judged = by_name["summarize"]["measures"]["judge"]
    assert judged == {
        "score": 0.5,
        "reason": "Names the trend but no figures for context.",
        "provider": "local",
        "model": "test-model",
    }
    judge_request = llm_server.requests[-1].body
    prompt = judge_request["messages"][-1]["content"]
    assert "One factual sentence that names the trend." in prompt and "Sales rose 5% this week." in prompt
    assert not judge_request.get("tools")

    p = round((0.6667 + 1.0 + 0.5) / 3, 4)
    assert done["performance"] == done["scenario_performance"] == p and done["scored_by"] == "scenarios"
    ledger = await training_ledger(client, approver, student)
    (row,) = ledger
    assert row["source_id"] == training_id and row["delta"] == pytest.approx(0.20)  # p >= 0.7: +0.20
    assert row["delta"] == pytest.approx(performance_delta(p, Settings(_env_file=None)))  # type: ignore[call-arg]
    everything = (await client.get(f"/api/agents/{student}/confidence", headers=approver.headers)).json()["items"]
    assert not [r for r in everything if r["source"] == "action"]  # a dry run writes no action-outcome rows

    run = (await client.get(f"/api/chat/executions/{created['execution_id']}", headers=approver.headers)).json()
    assert run["trigger"] == "training" and [c["status"] for c in run["tool_calls"]] == ["ok", "recorded"]
    (started,) = await audit_rows(client, approver, "training.run.start")
    assert started["actor_id"] == approver.id and started["resource_id"] == training_id
    (completed,) = await audit_rows(client, approver, "training.complete")
    assert completed["details"]["scored_by"] == "scenarios" and completed["details"]["performance"] == p


async def test_a_garbage_judge_answer_stops_the_run_without_a_score(
    chat_app: FastAPI,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    approver: UserWithKey,
    student: str,
    effects: SideEffects,
) -> None:
    for scenario in (RULES_SCENARIO, REFERENCE_SCENARIO, JUDGE_SCENARIO):
        await add_scenario(client, approver, scenario)
    training_id = await scheduled_training(client, approver, student)
    script_agent_runs(llm_server, "Great work, I'd say 9 out of 10!")

    failed = await run_to_the_end(chat_app, client, approver, training_id)
    assert failed["status"] == "scheduled" and failed["performance"] is None and failed["scored_by"] is None
    assert "summarize" in failed["run_error"] and "did not answer with JSON" in failed["run_error"]
    assert failed["progress_done"] == 2 and [r.get("score") for r in failed["results"]] == [0.6667, 1.0, None]
    assert "did not answer with JSON" in failed["results"][2]["error"]
    assert await training_ledger(client, approver, student) == []  # no made-up score, no confidence change
    (record,) = await audit_rows(client, approver, "training.run.failed")
    assert "did not answer with JSON" in record["reason"]

    # Given back: the session runs again, and this time the judge answers properly.
    script_agent_runs(llm_server, json.dumps({"score": 1, "reason": "Exactly right."}))
    again = await run_to_the_end(chat_app, client, approver, training_id)
    assert again["status"] == "completed" and again["run_error"] is None
    assert again["performance"] == round((0.6667 + 1.0 + 1.0) / 3, 4)
    assert len(await training_ledger(client, approver, student)) == 1


async def test_an_approver_overrides_the_score_and_confidence_follows_the_band(
    chat_app: FastAPI,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    approver: UserWithKey,
    make_user: MakeUser,
    student: str,
    effects: SideEffects,
) -> None:
    await add_scenario(client, approver, REFERENCE_SCENARIO)
    training_id = await scheduled_training(client, approver, student)
    body = {"performance": 0.2, "reason": "The greeting was rude in context."}
    early = await client.post(f"/api/training/{training_id}/score", json=body, headers=approver.headers)
    assert early.status_code == 409 and early.json()["error"]["code"] == "TRAINING_NOT_SCORED"

    llm_server.queue(text_reply("Hello Ann!"))
    done = await run_to_the_end(chat_app, client, approver, training_id)
    assert done["performance"] == 1.0

    operator = await make_user(Role.OPERATOR)
    assert (
        await client.post(f"/api/training/{training_id}/score", json=body, headers=operator.headers)
    ).status_code == 403
    bad = await client.post(
        f"/api/training/{training_id}/score", json={"performance": 1.5, "reason": "x"}, headers=approver.headers
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"]["fields"][0]["field"] == "body.performance"

    overridden = await client.post(f"/api/training/{training_id}/score", json=body, headers=approver.headers)
    assert overridden.status_code == 200, overridden.text
    shown = overridden.json()
    assert shown["performance"] == 0.2 and shown["scored_by"] == "person" and shown["scenario_performance"] == 1.0
    ledger = await training_ledger(client, approver, student)
    assert sorted(round(r["delta"], 4) for r in ledger) == [-0.15, 0.2]  # net: 0.05, the band of 0.2
    (record,) = await audit_rows(client, approver, "training.score.override")
    assert record["actor_id"] == approver.id and record["reason"] == body["reason"]
    assert record["details"]["before"] == 1.0 and record["details"]["after"] == 0.2
    assert record["details"]["confidence_delta"] == pytest.approx(-0.15)

    rerun = await client.post(f"/api/training/{training_id}/run", headers=approver.headers)
    assert rerun.status_code == 409 and rerun.json()["error"]["code"] == "TRAINING_FINISHED"


@pytest.mark.parametrize("settings_overrides", [{"chat_max_steps": 1}])
async def test_a_run_stopped_by_the_agents_bounds_scores_zero_and_a_provider_failure_none(
    chat_app: FastAPI,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    approver: UserWithKey,
    student: str,
    effects: SideEffects,
) -> None:
    await add_scenario(client, approver, RULES_SCENARIO)
    training_id = await scheduled_training(client, approver, student)
    llm_server.queue(error_reply(400, "the model is overloaded with nonsense"))
    failed = await run_to_the_end(chat_app, client, approver, training_id)
    assert failed["status"] == "scheduled" and "the agent's run failed" in failed["run_error"]
    assert failed["performance"] is None

    llm_server.queue(tool_reply(ScriptedToolCall("test_read_record", ('{"value": "ann"}',))))  # never answers
    done = await run_to_the_end(chat_app, client, approver, training_id)
    (result,) = done["results"]
    assert result["run_status"] == "failed" and result["error_code"] == "STEP_LIMIT"
    assert result["score"] == 0.0 and done["performance"] == 0.0 and done["status"] == "completed"
    (row,) = await training_ledger(client, approver, student)
    assert row["delta"] == pytest.approx(0.05)  # RULES.md: p < 0.3 -> +0.05


async def test_a_run_is_refused_when_it_cannot_start_and_nothing_changes(
    chat_app: FastAPI,
    client: httpx.AsyncClient,
    approver: UserWithKey,
    make_user: MakeUser,
    student: str,
    effects: SideEffects,
) -> None:
    training_id = await scheduled_training(client, approver, student)
    viewer = await make_user(Role.VIEWER)
    assert (await client.post(f"/api/training/{training_id}/run", headers=viewer.headers)).status_code == 403
    none = await client.post(f"/api/training/{training_id}/run", headers=approver.headers)
    assert none.status_code == 409 and none.json()["error"]["code"] == "NO_SCENARIOS"
    assert none.json()["error"]["details"]["category"] == "sales"
    await add_scenario(client, approver, {**REFERENCE_SCENARIO, "category": "support"})  # another category
    assert (await client.post(f"/api/training/{training_id}/run", headers=approver.headers)).status_code == 409
    shown = (await client.get(f"/api/training/{training_id}", headers=approver.headers)).json()
    assert shown["status"] == "scheduled" and shown["progress_total"] == 0 and shown["run_started_at"] is None
    missing = await client.post("/api/training/nope/run", headers=approver.headers)
    assert missing.status_code == 404

    await add_scenario(client, approver, REFERENCE_SCENARIO)
    admin = await make_user(Role.ADMIN)
    jump = {"to_level": "INTERN", "reason": "needed now", "override": True}
    assert (await client.post(f"/api/agents/{student}/promote", json=jump, headers=admin.headers)).status_code == 200
    refused = await client.post(f"/api/training/{training_id}/run", headers=approver.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "TRAINING_NOT_STUDENT"


async def test_without_a_provider_the_run_is_refused_before_anything_changes(
    app: FastAPI, client: httpx.AsyncClient, approver: UserWithKey, student: str, effects: SideEffects
) -> None:
    await add_scenario(client, approver, REFERENCE_SCENARIO)
    training_id = await scheduled_training(client, approver, student)
    refused = await client.post(f"/api/training/{training_id}/run", headers=approver.headers)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "LLM_NO_PROVIDER"
    assert (await client.get(f"/api/training/{training_id}", headers=approver.headers)).json()["status"] == "scheduled"


async def test_a_run_cancelled_by_the_server_stopping_gives_its_session_back(
    chat_app: FastAPI,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    approver: UserWithKey,
    student: str,
    effects: SideEffects,
) -> None:
    await add_scenario(client, approver, REFERENCE_SCENARIO)
    training_id = await scheduled_training(client, approver, student)
    llm_server.queue(text_reply("Hello Ann!", delay_before=30))  # the model is still thinking at shutdown
    started = await client.post(f"/api/training/{training_id}/run", headers=approver.headers)
    assert started.status_code == 202 and started.json()["status"] == "running"
    await run_tasks.stop(chat_app.state)  # what the app's shutdown does
    shown = (await client.get(f"/api/training/{training_id}", headers=approver.headers)).json()
    assert shown["status"] == "scheduled" and "cancelled" in shown["run_error"] and shown["performance"] is None
    assert await training_ledger(client, approver, student) == []
    assert len(await audit_rows(client, approver, "training.run.failed")) == 1
