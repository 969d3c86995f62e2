"""The real integration clients against local servers speaking Slack's, Asana's, SMTP's and HTTP's wire formats."""

from __future__ import annotations

from typing import Any

import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.governance import catalogue
from atom.workflows import actions as workflow_actions
from atom.workflows.integrations import email as email_action
from atom.workflows.integrations.errors import (
    IntegrationAuthError,
    IntegrationNotConfigured,
    IntegrationNotFound,
    IntegrationRateLimited,
    IntegrationRequestError,
    IntegrationUnavailable,
)
from atom.workflows.signing import verify
from tests.support.integration_servers import AsanaServer, HttpServer, SlackServer, SmtpServer
from tests.workflows.conftest import MakeContext, put_secret


async def run_action(name: str, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    action = workflow_actions.current().get(name)
    assert action is not None
    return await action.handler(action.validate(params), ctx)


def test_every_integration_action_is_in_the_governance_catalogue() -> None:
    expected = {
        "slack_post_message": 3,
        "slack_list_channels": 1,
        "asana_create_task": 3,
        "asana_list_projects": 1,
        "send_email": 3,
        "http_get": 1,
        "http_post": 3,
        "http_put": 3,
        "http_patch": 3,
        "http_delete": 4,
        "webhook_call": 3,
        "noop": 1,
    }
    assert {name: catalogue.current().classify(name) for name in expected} == {
        n: (c, True) for n, c in expected.items()
    }
    http = workflow_actions.current().get("http_request")
    assert http is not None
    assert http.governance_action(http.validate({"url": "http://x.test/a", "method": "delete"})) == "http_delete"
    assert http.governance_action(http.validate({"url": "http://x.test/a"})) == "http_get"


# --- Slack --------------------------------------------------------------------------------------


@pytest.fixture
async def slack_settings(
    settings: Settings, db: Database, slack: tuple[SlackServer, str]
) -> tuple[Settings, SlackServer]:
    server, url = slack
    await put_secret(db, settings, "slack_bot_token", server.token)
    tuned = settings.model_copy(update={"slack_api_base_url": url, "integration_max_retry_after_s": 2.0})
    return tuned, server


async def test_slack_post_message_lands_with_the_idempotency_key(
    slack_settings: tuple[Settings, SlackServer], make_context: MakeContext
) -> None:
    settings, server = slack_settings
    ctx = await make_context(settings, key="run9:notify:0")
    output = await run_action("slack_post_message", {"channel": "#ops", "text": "deploy done"}, ctx)
    assert output["channel"] == "C00000002" and output["ts"] and output["text"] == "deploy done"
    [message] = server.messages
    assert message["text"] == "deploy done" and message["channel"] == "C00000002"
    assert message["metadata"]["event_payload"]["idempotency_key"] == "run9:notify:0"
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {server.token}"


async def test_slack_ok_false_bodies_become_typed_errors(
    slack_settings: tuple[Settings, SlackServer], make_context: MakeContext, db: Database
) -> None:
    settings, server = slack_settings
    ctx = await make_context(settings)
    with pytest.raises(IntegrationNotFound) as missing:
        await run_action("slack_post_message", {"channel": "#nowhere", "text": "hi"}, ctx)
    assert missing.value.code == "SLACK_CHANNEL_NOT_FOUND" and not missing.value.retryable
    with pytest.raises(IntegrationRequestError) as archived:
        await run_action("slack_post_message", {"channel": "old", "text": "hi"}, ctx)
    assert archived.value.details["slack_error"] == "is_archived"
    server.token = "xoxb-rotated"
    with pytest.raises(IntegrationAuthError) as auth:
        await run_action("slack_post_message", {"channel": "#ops", "text": "hi"}, ctx)
    assert auth.value.code == "SLACK_INVALID_AUTH"
    assert server.messages == []


async def test_slack_429_retry_after_is_honoured_then_bounded(
    slack_settings: tuple[Settings, SlackServer], make_context: MakeContext
) -> None:
    settings, server = slack_settings
    server.rate_limit_next, server.retry_after = 2, "0"
    ctx = await make_context(settings)
    await run_action("slack_post_message", {"channel": "#ops", "text": "after the storm"}, ctx)
    assert len(server.messages) == 1 and len(server.requests) == 3

    server.rate_limit_next = 10
    with pytest.raises(IntegrationRateLimited) as limited:
        await run_action("slack_post_message", {"channel": "#ops", "text": "again"}, ctx)
    assert limited.value.retryable
    assert len(server.requests) == 3 + settings.integration_max_retries + 1

    server.rate_limit_next, server.retry_after = 1, "120"  # longer than we wait in place: fail at once
    with pytest.raises(IntegrationRateLimited) as long_wait:
        await run_action("slack_post_message", {"channel": "#ops", "text": "later"}, ctx)
    assert long_wait.value.retry_after == 120
    assert len(server.messages) == 1


async def test_slack_list_channels_follows_cursors(
    slack_settings: tuple[Settings, SlackServer], make_context: MakeContext
) -> None:
    settings, server = slack_settings
    ctx = await make_context(settings)
    output = await run_action("slack_list_channels", {"limit": 2}, ctx)
    assert [c["name"] for c in output["channels"]] == ["general", "ops", "random", "alerts"]
    assert output["next_cursor"] is None
    assert len([r for r in server.requests if r["method"] == "conversations.list"]) == 2
    capped = await run_action("slack_list_channels", {"limit": 1, "max_pages": 2, "exclude_archived": False}, ctx)
    assert [c["name"] for c in capped["channels"]] == ["general", "ops"] and capped["next_cursor"]


async def test_slack_without_a_token_secret_is_a_configuration_error(
    settings: Settings, slack: tuple[SlackServer, str], make_context: MakeContext
) -> None:
    server, url = slack
    ctx = await make_context(settings.model_copy(update={"slack_api_base_url": url}))
    with pytest.raises(IntegrationNotConfigured) as missing:
        await run_action("slack_post_message", {"channel": "#ops", "text": "x"}, ctx)
    assert "slack_bot_token" in missing.value.message and server.requests == []


# --- Asana --------------------------------------------------------------------------------------


@pytest.fixture
async def asana_settings(
    settings: Settings, db: Database, asana: tuple[AsanaServer, str]
) -> tuple[Settings, AsanaServer]:
    server, url = asana
    await put_secret(db, settings, "asana_pat", server.token)
    return settings.model_copy(update={"asana_api_base_url": url, "integration_max_retry_after_s": 2.0}), server


async def test_asana_create_task_and_list_projects(
    asana_settings: tuple[Settings, AsanaServer], make_context: MakeContext
) -> None:
    settings, server = asana_settings
    ctx = await make_context(settings)
    project = server.projects[0]["gid"]
    task = await run_action(
        "asana_create_task", {"name": "Call the customer", "notes": "re: invoice", "projects": [project]}, ctx
    )
    assert task["gid"] == server.tasks[0]["gid"] and task["projects"] == [project]
    assert server.tasks[0]["notes"] == "re: invoice"
    listed = await run_action("asana_list_projects", {"workspace": server.workspace, "limit": 2}, ctx)
    assert [p["name"] for p in listed["projects"]] == ["Project 1", "Project 2", "Project 3", "Project 5"]
    assert listed["next_offset"] is None


async def test_asana_error_envelopes_become_typed_errors(
    asana_settings: tuple[Settings, AsanaServer], make_context: MakeContext
) -> None:
    settings, server = asana_settings
    ctx = await make_context(settings)
    with pytest.raises(IntegrationNotFound) as unknown:
        await run_action("asana_create_task", {"name": "x", "projects": ["999"]}, ctx)
    assert "Unknown object: 999" in unknown.value.message and unknown.value.status == 404
    server.fail_next_with = 500
    with pytest.raises(IntegrationUnavailable) as down:
        await run_action("asana_create_task", {"name": "x", "workspace": server.workspace}, ctx)
    assert down.value.retryable
    server.rate_limit_next, server.retry_after = 1, "0"
    await run_action("asana_create_task", {"name": "after 429", "workspace": server.workspace}, ctx)
    server.token = "revoked"
    with pytest.raises(IntegrationAuthError) as auth:
        await run_action("asana_list_projects", {"workspace": server.workspace}, ctx)
    assert auth.value.details["asana_errors"] == ["Not Authorized"]
    assert [t["name"] for t in server.tasks] == ["after 429"]


def test_asana_needs_a_place_for_the_task() -> None:
    action = workflow_actions.current().get("asana_create_task")
    assert action is not None
    with pytest.raises(Exception, match="projects` or `workspace"):
        action.validate({"name": "orphan"})


# --- HTTP and webhooks --------------------------------------------------------------------------


async def test_http_request_sends_idempotency_key_on_writes_only(
    settings: Settings, http_api: tuple[HttpServer, str], make_context: MakeContext
) -> None:
    server, url = http_api
    ctx = await make_context(settings, key="r1:charge:0")
    got = await run_action("http_request", {"url": f"{url}/echo", "query": {"q": "1"}}, ctx)
    assert got["status"] == 200 and got["json"]["query"] == {"q": "1"}
    assert "idempotency-key" not in server.requests[0]["headers"]
    first = await run_action("http_request", {"method": "POST", "url": f"{url}/charge", "json": {"amount": 5}}, ctx)
    again = await run_action("http_request", {"method": "POST", "url": f"{url}/charge", "json": {"amount": 5}}, ctx)
    assert first["status"] == 201 and again["status"] == 200 and again["json"] == first["json"]
    assert again["headers"]["idempotent-replayed"] == "true"
    assert len(server.idempotent) == 1 and server.requests[1]["headers"]["idempotency-key"] == "r1:charge:0"


async def test_http_status_classes_map_to_retryable_or_not(
    settings: Settings, http_api: tuple[HttpServer, str], make_context: MakeContext
) -> None:
    _, url = http_api
    ctx = await make_context(settings)
    with pytest.raises(IntegrationUnavailable) as unavailable:
        await run_action("http_request", {"url": f"{url}/status/503"}, ctx)
    assert unavailable.value.retryable and unavailable.value.status == 503
    with pytest.raises(IntegrationRequestError) as rejected:
        await run_action("http_request", {"method": "PUT", "url": f"{url}/status/422", "json": {}}, ctx)
    assert not rejected.value.retryable
    with pytest.raises(IntegrationUnavailable):
        await run_action("http_request", {"url": "http://127.0.0.1:9/nothing-listens-here"}, ctx)


async def test_webhook_call_is_signed_with_the_named_secret(
    settings: Settings, db: Database, http_api: tuple[HttpServer, str], make_context: MakeContext
) -> None:
    server, url = http_api
    await put_secret(db, settings, "partner_hook", "s3cret")
    ctx = await make_context(settings, key="r2:hook:0")
    await run_action(
        "webhook_call", {"url": f"{url}/echo", "payload": {"event": "done"}, "secret": "partner_hook"}, ctx
    )
    sent = server.requests[0]
    assert sent["headers"]["idempotency-key"] == "r2:hook:0"
    assert verify(
        "s3cret", sent["headers"]["x-atom-timestamp"], sent["body"].encode(), sent["headers"]["x-atom-signature"]
    )
    assert not verify(
        "other", sent["headers"]["x-atom-timestamp"], sent["body"].encode(), sent["headers"]["x-atom-signature"]
    )


# --- email --------------------------------------------------------------------------------------


def smtp_settings(settings: Settings, smtp: SmtpServer, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_username": smtp.username,
        "smtp_from": "Atom <atom@example.com>",
        "smtp_ca_file": smtp.cert_path,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


async def test_send_email_uses_starttls_and_auth(
    settings: Settings, db: Database, smtp: SmtpServer, make_context: MakeContext
) -> None:
    await put_secret(db, settings, "smtp_password", smtp.password)
    ctx = await make_context(smtp_settings(settings, smtp), key="r3:mail:0")
    output = await run_action(
        "send_email",
        {"to": "Ops <ops@example.com>", "cc": ["boss@example.com"], "subject": "Weekly report", "text": "All green."},
        ctx,
    )
    [mail] = smtp.messages
    assert mail.tls and mail.authenticated_as == smtp.username
    assert sorted(mail.rcpt_tos) == ["boss@example.com", "ops@example.com"]
    assert mail.message["Subject"] == "Weekly report" and mail.message.get_payload().strip() == "All green."
    assert (
        mail.message["Message-ID"] == output["message_id"] == email_action.message_id("r3:mail:0", "atom@example.com")
    )
    assert output["accepted"] == ["ops@example.com", "boss@example.com"]


async def test_send_email_wrong_password_is_an_auth_error(
    settings: Settings, db: Database, smtp: SmtpServer, make_context: MakeContext
) -> None:
    await put_secret(db, settings, "smtp_password", "wrong")
    ctx = await make_context(smtp_settings(settings, smtp))
    with pytest.raises(IntegrationAuthError):
        await run_action("send_email", {"to": "ops@example.com", "subject": "x", "text": "y"}, ctx)
    assert smtp.messages == [] and smtp.auth_failures >= 1


async def test_send_email_refuses_an_untrusted_certificate(
    settings: Settings, db: Database, smtp: SmtpServer, make_context: MakeContext
) -> None:
    await put_secret(db, settings, "smtp_password", smtp.password)
    ctx = await make_context(smtp_settings(settings, smtp, smtp_ca_file=None))
    with pytest.raises(IntegrationUnavailable):
        await run_action("send_email", {"to": "ops@example.com", "subject": "x", "text": "y"}, ctx)
    assert smtp.messages == []


async def test_send_email_without_a_server_is_not_configured(settings: Settings, make_context: MakeContext) -> None:
    ctx = await make_context(settings)
    with pytest.raises(IntegrationNotConfigured):
        await run_action("send_email", {"to": "ops@example.com", "subject": "x", "text": "y"}, ctx)


def test_email_inputs_are_validated() -> None:
    action = workflow_actions.current().get("send_email")
    assert action is not None
    for bad in (
        {"to": "not-an-address", "subject": "s", "text": "t"},
        {"to": "a@b.co", "subject": "a\nBcc: x@y.z", "text": "t"},
    ):
        with pytest.raises(Exception, match="Invalid inputs for send_email"):
            action.validate(bad)
