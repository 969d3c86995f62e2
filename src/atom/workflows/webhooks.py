"""Signed webhook deliveries: verify, start the workflow once, and answer as the trigger says.

A delivery is checked in this order, and every refusal happens before anything is written: the
webhook exists and is enabled (404), it is signed (401), its timestamp is within the replay window
(401), the HMAC-SHA256 of `<timestamp>.<body>` with the trigger's secret matches (401), the body
parses (422). Its signature is then recorded as the fire's key, so a replay is refused (409), and the
workflow starts through the trigger interceptor.

`respond: on_accept` (the default) answers 202 at once. `respond: on_finish` waits up to the trigger's
`timeout` for the run to end and answers with its output (200), the run's failure (502), or 202 and the
run id when the timeout passes first (docs/workflows.md, Synchronous webhooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.errors import AtomError, Conflict, InvalidInput, NotFound, Unauthorized, Unavailable
from atom.observability.logging import get_logger
from atom.security import secrets_store
from atom.workflows import flows, service, signing
from atom.workflows.definition import DEFAULT_RESPOND_TIMEOUT_S, RESPOND_STEP, RespondMode
from atom.workflows.models import RunStatus, StepRun, StepStatus, Workflow, WorkflowTrigger
from atom.workflows.runner import StepRunner
from atom.workflows.state import StepState
from atom.workflows.watch import Ended

log = get_logger("atom.workflows")
FORWARDED_HEADERS = ("content-type", "user-agent", "x-request-id", "x-github-event", "x-github-delivery")


class RunFailed(AtomError):
    """A `respond: on_finish` webhook's run failed or was cancelled before the timeout."""

    status_code = 502
    default_code = "RUN_FAILED"


@dataclass(frozen=True)
class Delivery:
    """What the route read from the request."""

    workflow_ref: str
    trigger_key: str
    body: bytes
    headers: dict[str, str]  # lower-case names


@dataclass(frozen=True)
class Accepted:
    """A verified delivery that started (or was routed by) the interceptor, and how to answer it."""

    result: flows.StartResult
    respond: RespondMode
    timeout_s: float
    ended: asyncio.Future[Ended] | None = None  # respond: on_finish, registered before the run could end


@dataclass(frozen=True)
class RunEnd:
    run_id: str
    status: str
    output: Any = None
    error: str | None = None
    failed_step: str | None = None
    error_code: str | None = None


def check_signed(runner: StepRunner, headers: dict[str, str]) -> tuple[str, str]:
    """The timestamp and signature headers, present and within the replay window (no database)."""
    timestamp = headers.get(signing.TIMESTAMP_HEADER.lower(), "")
    signature = headers.get(signing.SIGNATURE_HEADER.lower(), "")
    if not timestamp or not signature:
        raise Unauthorized(
            f"Sign the request: {signing.TIMESTAMP_HEADER} and {signing.SIGNATURE_HEADER} are required.",
            code="WEBHOOK_SIGNATURE_REQUIRED",
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Unauthorized("The timestamp must be Unix seconds.", code="WEBHOOK_BAD_TIMESTAMP") from None
    window = runner.settings.webhook_replay_window_s
    if abs(runner.clock().timestamp() - sent_at) > window:
        raise Unauthorized(f"The timestamp is outside the {window} s window.", code="WEBHOOK_TIMESTAMP_OUT_OF_WINDOW")
    return timestamp, signature


def fire_key(signature: str) -> str:
    return "sig:" + hashlib.sha256(signature.strip().encode()).hexdigest()


def respond_settings(config: dict[str, Any]) -> tuple[RespondMode, float]:
    """The trigger's answer mode and timeout (a trigger stored before `respond` existed answers on accept)."""
    mode = RespondMode(config.get("respond") or RespondMode.ON_ACCEPT.value)
    timeout = config.get("timeout")
    return mode, float(timeout) if timeout is not None else DEFAULT_RESPOND_TIMEOUT_S


def parse_body(body: bytes, content_type: str) -> Any:
    if "json" in content_type or (not content_type and body[:1] in (b"{", b"[")):
        try:
            return json.loads(body) if body else None
        except ValueError:
            raise InvalidInput("The body is not valid JSON.", code="WEBHOOK_INVALID_JSON") from None
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise InvalidInput("The body is neither JSON nor UTF-8 text.", code="WEBHOOK_INVALID_BODY") from None


def trigger_payload(runner: StepRunner, trigger_key: str, delivery: Delivery) -> dict[str, Any]:
    """`trigger` in the run's templates."""
    return {
        "type": "webhook",
        "trigger": trigger_key,
        "body": parse_body(delivery.body, delivery.headers.get("content-type", "")),
        "headers": {k: v for k, v in delivery.headers.items() if k in FORWARDED_HEADERS},
        "received_at": runner.clock().isoformat(),
    }


async def receive(runner: StepRunner, delivery: Delivery) -> Accepted:
    """Verify the delivery, record it once and start the workflow through the interceptor.

    A started embedded engine takes deliveries in batches (`intake.py`); otherwise each has its own
    transactions (`receive_one`)."""
    if runner.intake is not None:
        accepted: Accepted = await runner.intake.receive(delivery)
        return accepted
    return await receive_one(runner, delivery)


@dataclass(frozen=True)
class Webhook:
    """A webhook trigger that exists and is enabled, with its workflow and its secret in clear."""

    workflow: Workflow
    trigger: WorkflowTrigger
    secret: str


async def find_webhook(runner: StepRunner, session: AsyncSession, workflow_ref: str, trigger_key: str) -> Webhook:
    """The webhook a delivery is addressed to: 404 when there is none (or it is disabled), 503 when
    its secret is missing on this server."""
    try:
        workflow = await service.get_workflow(session=session, ref=workflow_ref)
        trigger = await service.get_trigger(session=session, workflow_id=workflow.id, key=trigger_key)
    except NotFound:
        raise NotFound("No such webhook.", code="WEBHOOK_NOT_FOUND") from None
    if trigger.kind != "webhook" or not trigger.enabled:
        raise NotFound("No such webhook.", code="WEBHOOK_NOT_FOUND")
    secret_name = str(trigger.config.get("secret"))
    try:
        secret = await secrets_store.reveal(session=session, cipher=runner.cipher, name=secret_name)
    except NotFound:
        log.error("webhook secret missing", trigger_id=trigger.id, secret=secret_name)
        raise Unavailable("The webhook's secret is missing on this server.", code="WEBHOOK_SECRET_MISSING") from None
    return Webhook(workflow, trigger, secret)


def verify(webhook: Webhook, timestamp: str, delivery: Delivery, signature: str) -> None:
    """401 unless the signature is the HMAC of the delivery with the webhook's secret."""
    if not signing.verify(webhook.secret, timestamp, delivery.body, signature):
        log.warning("webhook signature refused", trigger_id=webhook.trigger.id)
        raise Unauthorized("The signature does not match.", code="WEBHOOK_BAD_SIGNATURE")


def replayed() -> Conflict:
    return Conflict("This delivery was already received (same signature).", code="WEBHOOK_REPLAYED")


async def receive_one(runner: StepRunner, delivery: Delivery) -> Accepted:
    """One delivery on its own: verification, fire, and the interceptor's start, each committed."""
    timestamp, signature = check_signed(runner, delivery.headers)
    async with runner.db.session_scope() as session:
        webhook = await find_webhook(runner, session, delivery.workflow_ref, delivery.trigger_key)
    verify(webhook, timestamp, delivery, signature)
    trigger = webhook.trigger
    payload = trigger_payload(runner, trigger.trigger_key, delivery)
    fire_id = await flows.claim_fire(runner, trigger.id, fire_key(signature))
    if fire_id is None:
        raise replayed()
    result = await flows.fire_trigger(runner, trigger, fire_id, source="webhook", payload=payload)
    if result is None:
        raise Unavailable(
            "The webhook was verified but the run could not start; see the server log.", code="RUN_NOT_STARTED"
        )
    mode, timeout_s = respond_settings(trigger.config)
    return Accepted(result, mode, timeout_s)


# --- respond: on_finish -------------------------------------------------------------------------


def final_output(steps: Sequence[StepRun | StepState]) -> Any:
    """The `respond` step's output when the workflow has one, else every succeeded step's output by id."""
    for step in steps:
        if step.step_key == RESPOND_STEP:
            return step.output
    return {s.step_key: s.output for s in steps if s.status == StepStatus.SUCCEEDED.value}


def run_end(run_id: str, status: str, error: str | None, steps: Sequence[StepRun | StepState]) -> RunEnd:
    failed = next((s for s in steps if s.status == StepStatus.FAILED.value), None)
    return RunEnd(
        run_id=run_id,
        status=status,
        output=final_output(steps) if status == RunStatus.SUCCEEDED.value else None,
        error=error,
        failed_step=failed.step_key if failed is not None else None,
        error_code=failed.error_code if failed is not None else None,
    )


async def read_end(runner: StepRunner, run_id: str) -> RunEnd | None:
    """How the run ended, or None while it runs."""
    async with runner.db.session_scope() as session:
        run = await service.get_run(session=session, run_id=run_id)
        if run.status == RunStatus.RUNNING.value:
            return None
        steps = await service.list_steps(session=session, run_id=run_id)
    return run_end(run.id, run.status, run.error, steps)


async def wait_for_end(
    runner: StepRunner, run_id: str, timeout_s: float, ended: asyncio.Future[Ended] | None = None
) -> RunEnd | None:
    """The run's end, or None if it is still running after `timeout_s`.

    `ended` is a wait registered before the run could end (the intake's); without one, the run is
    looked at once after registering, in case it ended before."""
    if ended is None:
        ended = runner.watch.register(run_id)
        end = await read_end(runner, run_id)
        if end is not None:
            runner.watch.forget(run_id, ended)
            return end
    try:
        with contextlib.suppress(TimeoutError):
            done = await asyncio.wait_for(asyncio.shield(ended), timeout_s)
            if done.steps is not None:  # this process ended it: its steps as committed, nothing to read
                return run_end(done.run_id, done.status, done.error, done.steps)
    finally:
        runner.watch.forget(run_id, ended)
    return await read_end(runner, run_id)  # looked at again: an end whose event was lost still counts


def failure(end: RunEnd) -> RunFailed:
    return RunFailed(
        f"The run {end.status}" + (f": {end.error}" if end.error else "."),
        details={
            "run_id": end.run_id,
            "status": end.status,
            "error": end.error,
            "step": end.failed_step,
            "error_code": end.error_code,
        },
    )
