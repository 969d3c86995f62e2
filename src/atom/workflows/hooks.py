"""The webhook receiver, mounted at `/hooks/{workflow_id}/{trigger_id}` outside `/api`.

`/api` routes require an API key; a webhook sender has none. Webhooks authenticate instead with
an HMAC-SHA256 signature over `<timestamp>.<body>` made with the trigger's secret (a named secret in
the secrets store): `X-Atom-Timestamp` and `X-Atom-Signature: sha256=<hex>`. A timestamp outside
the replay window is refused (401), a signature seen before within the window is refused (409),
a body over ATOM_WEBHOOK_MAX_BODY_BYTES is refused (413); none of these writes anything. What the
answer carries is the trigger's `respond` (see `webhooks.py`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from atom.errors import PayloadTooLarge
from atom.workflows import webhooks
from atom.workflows.definition import RespondMode
from atom.workflows.models import RunStatus
from atom.workflows.routes import engine_dep
from atom.workflows.schemas import RunStarted, WebhookFinished

router = APIRouter(prefix="/hooks", tags=["webhooks"])


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_large = PayloadTooLarge(
        f"The webhook body is larger than {limit} bytes.", code="WEBHOOK_BODY_TOO_LARGE", details={"limit": limit}
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


@router.post(
    "/{workflow_id}/{trigger_id}",
    status_code=202,
    response_model=RunStarted,
    responses={
        200: {"model": WebhookFinished, "description": "respond: on_finish: the run succeeded; its output."},
        202: {"model": RunStarted, "description": "Accepted (on_finish: still running when the timeout passed)."},
        502: {"description": "respond: on_finish: the run failed or was cancelled (error RUN_FAILED)."},
    },
)
async def receive(workflow_id: str, trigger_id: str, request: Request) -> Response:
    """Receive a signed delivery and start the workflow (through the trigger interceptor).

    The trigger's `respond` decides the answer: `on_accept` (default) answers 202 once the run has
    started; `on_finish` waits up to its `timeout` and answers 200 with the run's output, 502 when the
    run failed, or 202 with the run id when the timeout passed first."""
    engine = engine_dep(request)
    body = await _read_body(request, engine.settings.webhook_max_body_bytes)
    delivery = webhooks.Delivery(workflow_id, trigger_id, body, {k.lower(): v for k, v in request.headers.items()})
    accepted = await webhooks.receive(engine, delivery)
    result = accepted.result
    started = RunStarted(
        route=result.route,
        reason=result.reason,
        agent_id=result.agent_id,
        agent_level=result.agent_level,
        run_id=result.run_id,
        proposal_id=result.proposal_id,
        supervision_session_id=result.supervision_session_id,
    )
    if accepted.respond is not RespondMode.ON_FINISH or result.run_id is None:
        return _json(202, started.model_dump(mode="json"))
    end = await webhooks.wait_for_end(engine, result.run_id, accepted.timeout_s, accepted.ended)
    if end is None:
        return _json(202, {**started.model_dump(mode="json"), "status": "running"})
    if end.status != RunStatus.SUCCEEDED.value:
        raise webhooks.failure(end)
    return _json(200, {**started.model_dump(mode="json"), "status": end.status, "output": end.output})


def _json(status: int, content: dict[str, Any]) -> Response:
    return JSONResponse(content, status_code=status)
