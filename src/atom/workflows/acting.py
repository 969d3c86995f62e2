"""Acting on a claimed step: its action's handler, bounded by the step's timeout, and what it ended in
as an `Outcome` the runner records (`runner.py` step 2)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from atom.errors import AtomError, InvalidInput
from atom.observability.logging import get_logger
from atom.workflows.actions import ActionContext
from atom.workflows.claims import Claim
from atom.workflows.integrations.errors import IntegrationError

log = get_logger("atom.workflows")
Running = dict[str, tuple[str, "asyncio.Task[Any]"]]  # step run id -> (run id, the action's task): cancel finds it


@dataclass
class Outcome:
    ok: bool
    output: dict[str, Any] | None = None
    error: str | None = None
    code: str | None = None
    retryable: bool = False
    cancelled: bool = False


def _jsonable(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        value = {"result": value}
    loaded: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return loaded


async def act(claim: Claim, context: ActionContext, running: Running) -> Outcome:
    """Run the claim's action in `context`; a refusal found at the claim ends here without acting."""
    if claim.failure is not None:
        return Outcome(ok=False, error=claim.failure[0], code=claim.failure[1], retryable=False)
    assert claim.action is not None
    action_task = asyncio.ensure_future(claim.action.handler(claim.params, context))
    running[claim.step.id] = (claim.run.id, action_task)
    try:
        output = await asyncio.wait_for(action_task, timeout=claim.timeout_s)
        return Outcome(ok=True, output=_jsonable(output))
    except TimeoutError:
        return Outcome(False, error=f"timed out after {claim.timeout_s:g} s", code="STEP_TIMEOUT", retryable=True)
    except IntegrationError as exc:
        return Outcome(False, error=exc.message, code=exc.code, retryable=exc.retryable)
    except InvalidInput as exc:
        return Outcome(False, error=exc.message, code=exc.code, retryable=False)
    except AtomError as exc:
        return Outcome(False, error=exc.message, code=exc.code, retryable=exc.status_code >= 500)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            action_task.cancel()
            raise  # shutting down: the lease expires and another delivery runs the step again
        return Outcome(False, error="cancelled while running", code="CANCELLED", cancelled=True)
    except Exception as exc:
        log.warning("workflow action raised", action=claim.step.action, run_id=claim.run.id, exc_info=exc)
        return Outcome(False, error=f"{type(exc).__name__}: {exc}", code="ACTION_ERROR", retryable=True)
    finally:
        running.pop(claim.step.id, None)
        claim.step.logs = context.logs
