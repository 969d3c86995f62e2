"""`/api/llm` and the gateway on SQLite and PostgreSQL: provider configs, keys kept secret, health,
usage and cost accounting, budgets, and the no-provider error."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from atom.audit.models import AuditEvent
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.llm.gateway import LLMGateway
from atom.llm.models import LLMUsage
from atom.llm.providers.base import (
    BudgetExceeded,
    Message,
    NoProviderConfigured,
    ProviderAuthError,
    TextDelta,
    UnknownModel,
)
from atom.security.models import Role, Secret
from tests.conftest import MakeUser, UserWithKey
from tests.llm.conftest import ANTHROPIC_KEY, OPENAI_KEY
from tests.support.agents import make_agent
from tests.support.llm_servers import AnthropicServer, OpenAIServer, error_reply, text_reply
from tests.support.logs import captured_logs

HELLO = (Message("user", "hi"),)


def provider_body(
    name: str, server: OpenAIServer | AnthropicServer, key: str | None, **extra: object
) -> dict[str, object]:
    kind = "openai" if isinstance(server, OpenAIServer) else "anthropic"
    model = "gpt-test" if kind == "openai" else "claude-test"
    body: dict[str, object] = {"name": name, "kind": kind, "base_url": server.base_url, "models": [model], **extra}
    if key is not None:
        body["api_key"] = key
    return body


async def add(client: httpx.AsyncClient, admin: UserWithKey, body: dict[str, object]) -> dict[str, object]:
    response = await client.post("/api/llm/providers", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_provider_configs_roles_validation_and_the_key_never_comes_back(
    client: httpx.AsyncClient, admin: UserWithKey, make_user: MakeUser, db: Database, openai_server: OpenAIServer
) -> None:
    viewer = await make_user(Role.VIEWER)
    created = await add(client, admin, provider_body("openai-main", openai_server, OPENAI_KEY))
    assert created["has_key"] is True and created["healthy"] is None
    assert created["base_url"] == openai_server.base_url and created["models"] == ["gpt-test"]

    listed = await client.get("/api/llm/providers", headers=viewer.headers)
    shown = await client.get("/api/llm/providers/openai-main", headers=viewer.headers)
    assert listed.status_code == 200 and shown.status_code == 200
    assert [p["name"] for p in listed.json()["items"]] == ["openai-main"]
    for response in (listed, shown):
        assert OPENAI_KEY not in response.text and "api_key" not in response.text

    forbidden = await client.post(
        "/api/llm/providers", json=provider_body("x", openai_server, "k"), headers=viewer.headers
    )
    assert forbidden.status_code == 403
    assert (await client.delete("/api/llm/providers/openai-main", headers=viewer.headers)).status_code == 403
    assert (await client.get("/api/llm/providers")).status_code == 401

    duplicate = await client.post(
        "/api/llm/providers", json=provider_body("openai-main", openai_server, "k"), headers=admin.headers
    )
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "LLM_PROVIDER_EXISTS"

    bad_inputs = [
        ({"kind": "litellm"}, "LLM_UNKNOWN_KIND"),
        ({"models": ["bad model name!"]}, "LLM_UNKNOWN_MODEL"),
        ({"models": []}, "VALIDATION_ERROR"),
        ({"base_url": "file:///etc/passwd"}, "LLM_INVALID_BASE_URL"),
        ({"name": "Bad Name"}, "VALIDATION_ERROR"),
    ]
    for change, code in bad_inputs:
        body = {**provider_body("other", openai_server, "sk-x"), **change}
        response = await client.post("/api/llm/providers", json=body, headers=admin.headers)
        assert response.status_code == 422, (change, response.text)
        assert response.json()["error"]["code"] == code
        assert "sk-x" not in response.text

    async with db.session_scope() as s:
        secret = await s.scalar(select(Secret).where(Secret.name == "llm.provider.openai-main"))
        assert secret is not None and OPENAI_KEY not in secret.ciphertext
        audit_text = " ".join(str(e.details) for e in (await s.scalars(select(AuditEvent))).all())
        assert "llm.provider" not in audit_text or OPENAI_KEY not in audit_text

    replaced = await client.put(
        "/api/llm/providers/openai-main",
        json={"kind": "openai", "base_url": openai_server.base_url, "models": ["gpt-test", "gpt-other"]},
        headers=admin.headers,
    )
    assert replaced.status_code == 200 and replaced.json()["has_key"] is True  # no key given: the stored one stays
    assert replaced.json()["models"] == ["gpt-test", "gpt-other"]

    assert (await client.delete("/api/llm/providers/openai-main", headers=admin.headers)).status_code == 204
    gone = await client.get("/api/llm/providers/openai-main", headers=admin.headers)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "LLM_PROVIDER_NOT_FOUND"
    async with db.session_scope() as s:
        assert await s.scalar(select(Secret).where(Secret.name == "llm.provider.openai-main")) is None


async def test_provider_test_marks_401_unhealthy_naming_the_provider_and_never_logging_keys(
    client: httpx.AsyncClient,
    admin: UserWithKey,
    settings: Settings,
    db: Database,
    openai_server: OpenAIServer,
    anthropic_server: AnthropicServer,
) -> None:
    wrong_key = "sk-wrong-9c1e7a55b0d24f"
    with captured_logs(settings) as logs:
        await add(client, admin, provider_body("good", openai_server, OPENAI_KEY))
        await add(client, admin, provider_body("revoked", anthropic_server, wrong_key))
        gateway = LLMGateway(db, settings)
        try:
            llm = await gateway.client()
            with pytest.raises(UnknownModel):
                llm.stream(HELLO, model="claude-test-missing")
            with pytest.raises(ProviderAuthError) as caught:  # a chat call meets the revoked key
                [e async for e in llm.stream(HELLO, model="claude-test")]
        finally:
            await gateway.aclose()
        after_call = (await client.get("/api/llm/providers/revoked", headers=admin.headers)).json()
        openai_server.queue(text_reply("OK"))
        good = await client.post("/api/llm/providers/good/test", headers=admin.headers)
        bad = await client.post("/api/llm/providers/revoked/test", headers=admin.headers)
        unknown_model = await client.post("/api/llm/providers/good/test", json={"model": "nope"}, headers=admin.headers)
        listed = await client.get("/api/llm/providers", headers=admin.headers)

    assert "revoked" in caught.value.message and wrong_key not in str(caught.value.details)
    assert after_call["healthy"] is False and "LLM_PROVIDER_AUTH" in after_call["last_error"]
    assert good.status_code == 200 and good.json()["healthy"] is True and good.json()["reply"] == "OK"
    assert bad.status_code == 200, bad.text
    result = bad.json()
    assert result["healthy"] is False and result["error_code"] == "LLM_PROVIDER_AUTH"
    assert "revoked" in result["error"] and "401" in result["error"]
    assert unknown_model.status_code == 422 and unknown_model.json()["error"]["code"] == "LLM_UNKNOWN_MODEL"
    health = {p["name"]: (p["healthy"], p["last_error"]) for p in listed.json()["items"]}
    assert health["good"] == (True, None)
    assert health["revoked"][0] is False and "revoked" in health["revoked"][1]
    assert "llm.provider_unhealthy" in logs.getvalue() and "revoked" in logs.getvalue()
    # The scripted server echoes the presented key in its 401 message, as real providers do.
    for text in (bad.text, listed.text, logs.getvalue()):
        assert wrong_key not in text and OPENAI_KEY not in text and ANTHROPIC_KEY not in text
    assert anthropic_server.last_request.headers.get("authorization", "").endswith(wrong_key) or (
        anthropic_server.last_request.headers.get("x-api-key") == wrong_key
    )


async def test_gateway_meters_usage_and_cost_with_fallback_and_reports_it(
    client: httpx.AsyncClient,
    admin: UserWithKey,
    settings: Settings,
    db: Database,
    openai_server: OpenAIServer,
    anthropic_server: AnthropicServer,
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN)
    await add(client, admin, provider_body("primary", openai_server, OPENAI_KEY, priority=1))
    await add(client, admin, provider_body("backup", anthropic_server, ANTHROPIC_KEY, priority=2))
    gateway = LLMGateway(db, settings)
    try:
        llm = await gateway.client(agent_id=agent.id, execution_id="exec-1")
        openai_server.queue(text_reply("Hello", " there", usage=(12, 7)))
        first = llm.stream(HELLO, max_tokens=64)
        assert "".join([e.text async for e in first if isinstance(e, TextDelta)]) == "Hello there"
        assert first.provider == "primary" and first.usage is not None and first.usage.output_tokens == 7
        assert first.cost_usd == Decimal("0.026")  # 12 * 1000 / 1e6 + 7 * 2000 / 1e6

        openai_server.queue(error_reply(500), error_reply(500))
        anthropic_server.queue(text_reply("fallback", usage=(30, 4)))
        second = llm.stream(HELLO, max_tokens=64)
        assert [e.text async for e in second if isinstance(e, TextDelta)] == ["fallback"]
        assert (second.provider, second.model) == ("backup", "claude-test")
        assert second.cost_usd is None  # claude-test has no price

        openai_server.queue(text_reply("a", "b", "c", delay_between=0.05))
        cancelled = llm.stream(HELLO, max_tokens=64)
        async for event in cancelled:
            if isinstance(event, TextDelta):
                break
        await cancelled.aclose()
    finally:
        await gateway.aclose()

    async with db.session_scope() as s:
        rows = (await s.scalars(select(LLMUsage).order_by(LLMUsage.created_at))).all()
    assert [(r.provider, r.status, r.input_tokens, r.output_tokens) for r in rows[:2]] == [
        ("primary", "ok", 12, 7),
        ("backup", "ok", 30, 4),
    ]
    assert rows[2].status == "cancelled" and rows[2].estimated and rows[2].output_tokens >= 1
    assert {r.agent_id for r in rows} == {agent.id} and {r.execution_id for r in rows} == {"exec-1"}

    report = await client.get("/api/llm/usage", params={"group_by": "agent,provider"}, headers=admin.headers)
    assert report.status_code == 200, report.text
    by_provider = {r["provider"]: r for r in report.json()["rows"]}
    assert by_provider["backup"]["calls"] == 1 and by_provider["backup"]["unpriced_calls"] == 1
    assert by_provider["primary"]["calls"] == 2 and by_provider["primary"]["input_tokens"] >= 12
    assert Decimal(by_provider["primary"]["cost_usd"]) >= Decimal("0.026")
    total = report.json()["total"]
    assert total["calls"] == 3 and total["output_tokens"] == sum(r.output_tokens for r in rows)
    per_day = await client.get("/api/llm/usage", params={"group_by": "day"}, headers=admin.headers)
    assert len(per_day.json()["rows"]) == 1 and per_day.json()["rows"][0]["calls"] == 3
    bad_group = await client.get("/api/llm/usage", params={"group_by": "colour"}, headers=admin.headers)
    assert bad_group.status_code == 422


async def test_budget_refuses_a_call_that_would_exceed_it(
    client: httpx.AsyncClient, admin: UserWithKey, settings: Settings, db: Database, openai_server: OpenAIServer
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN)
    await add(client, admin, provider_body("primary", openai_server, OPENAI_KEY))
    budget = await client.put(f"/api/llm/budgets/{agent.id}", json={"daily_usd": "0.04"}, headers=admin.headers)
    assert budget.status_code == 200 and budget.json()["source"] == "agent"
    gateway = LLMGateway(db, settings)
    try:
        llm = await gateway.client(agent_id=agent.id)
        openai_server.queue(text_reply("first", usage=(12, 7)))  # costs 0.026
        assert [e async for e in llm.stream(HELLO, max_tokens=5)]
        with pytest.raises(BudgetExceeded) as caught:  # 0.026 spent + up to 0.005 in + 0.01 out > 0.04
            [e async for e in llm.stream(HELLO, max_tokens=5)]
    finally:
        await gateway.aclose()
    assert len(openai_server.requests) == 1  # refused before any request
    error = caught.value
    assert error.status_code == 402 and error.code == "LLM_BUDGET_EXCEEDED"
    assert "daily LLM budget" in error.message and error.details["agent_id"] == agent.id
    state = await client.get(f"/api/llm/budgets/{agent.id}", headers=admin.headers)
    assert Decimal(state.json()["spent_today_usd"]) == Decimal("0.026")
    missing = await client.put("/api/llm/budgets/no-such-agent", json={"daily_usd": 1}, headers=admin.headers)
    assert missing.status_code == 404


async def test_a_monthly_budget_alone_refuses_a_call_that_would_exceed_it(
    client: httpx.AsyncClient, admin: UserWithKey, settings: Settings, db: Database, openai_server: OpenAIServer
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN)
    await add(client, admin, provider_body("primary", openai_server, OPENAI_KEY))
    budget = await client.put(f"/api/llm/budgets/{agent.id}", json={"monthly_usd": "0.04"}, headers=admin.headers)
    assert budget.status_code == 200 and budget.json()["daily_usd"] is None
    gateway = LLMGateway(db, settings)
    try:
        llm = await gateway.client(agent_id=agent.id)
        openai_server.queue(text_reply("first", usage=(12, 7)))  # costs 0.026
        assert [e async for e in llm.stream(HELLO, max_tokens=5)]
        with pytest.raises(BudgetExceeded) as caught:
            [e async for e in llm.stream(HELLO, max_tokens=5)]
    finally:
        await gateway.aclose()
    assert len(openai_server.requests) == 1
    assert "monthly LLM budget" in caught.value.message
    assert Decimal(caught.value.details["spent_usd"]) == Decimal("0.026")


async def test_no_provider_configured_says_how_to_add_one(settings: Settings, db: Database) -> None:
    gateway = LLMGateway(db, settings)
    with pytest.raises(NoProviderConfigured) as caught:
        await gateway.client()
    assert "atom-os llm add" in caught.value.message and caught.value.status_code == 503


async def test_a_replaced_key_is_used_by_the_next_call_without_restart(
    client: httpx.AsyncClient, admin: UserWithKey, settings: Settings, db: Database, openai_server: OpenAIServer
) -> None:
    await add(client, admin, provider_body("primary", openai_server, "sk-old-revoked"))
    gateway = LLMGateway(db, settings)
    try:
        with pytest.raises(ProviderAuthError):
            [e async for e in (await gateway.client()).stream(HELLO)]
        body = {"kind": "openai", "base_url": openai_server.base_url, "models": ["gpt-test"], "api_key": OPENAI_KEY}
        replaced = await client.put("/api/llm/providers/primary", json=body, headers=admin.headers)
        assert replaced.status_code == 200 and replaced.json()["healthy"] is None
        openai_server.queue(text_reply("new key works"))
        events = [e async for e in (await gateway.client()).stream(HELLO)]
    finally:
        await gateway.aclose()
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["new key works"]
    assert openai_server.last_request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
