"""The webhook receiver, mounted at `/hooks/{workflow_id}/{trigger_id}` outside `/api`.

`/api` routes require an API key; a webhook sender has none. Webhooks authenticate instead with
an HMAC-SHA256 signature over `<timestamp>.<body>` made with the trigger's secret (a named secret in
the secrets store): `X-Atom-Timestamp` and `X-Atom-Signature: sha256=<hex>`. A timestamp outside
the replay window is refused (401), a signature seen before within the window is refused (409),
a body over ATOM_WEBHOOK_MAX_BODY_BYTES is refused (413); none of these writes anything.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from atom.errors import PayloadTooLarge
from atom.workflows import flows
from atom.workflows.routes import engine_dep
from atom.workflows.schemas import RunStarted

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


@router.post("/{workflow_id}/{trigger_id}", response_model=RunStarted, status_code=202)
async def receive(workflow_id: str, trigger_id: str, request: Request) -> RunStarted:
    """Receive a signed delivery and start the workflow (through the trigger interceptor)."""
    engine = engine_dep(request)
    body = await _read_body(request, engine.settings.webhook_max_body_bytes)
    result = await flows.receive_webhook(
        engine,
        workflow_ref=workflow_id,
        trigger_key=trigger_id,
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
    )
    return RunStarted(
        route=result.route,
        reason=result.reason,
        agent_id=result.agent_id,
        agent_level=result.agent_level,
        run_id=result.run_id,
        proposal_id=result.proposal_id,
        supervision_session_id=result.supervision_session_id,
    )
