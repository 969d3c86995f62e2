"""The per-process workflow engine: claims a step, checks governance, runs the action, records the outcome.

One step execution is three steps, each in its own transaction:

1. claim   `UPDATE step SET status='running', attempt=attempt+1, lease=... WHERE status='queued' (and due)
           OR (status='running' AND lease expired)` -- exactly one delivery wins; then render the
           inputs, validate them, and `governance.check` the action for the step's agent.
2. act     the action's handler, bounded by the step's timeout, with the step's idempotency key.
3. record  the outcome, conditional on still owning the attempt; the run advances; commit. Only then
           are the next steps handed to workers.

A worker that dies between 2 and 3 leaves the step `running`; once the lease expires another
delivery claims it again and re-runs it with the same idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.errors import AtomError, InvalidInput
from atom.events.bus import get_bus
from atom.governance import service as governance
from atom.observability.logging import get_logger
from atom.security.secrets_store import load_cipher
from atom.workflows import engine, templates
from atom.workflows.actions import ActionContext, ActionRegistry, WorkflowAction, default_registry
from atom.workflows.definition import WorkflowDefinition
from atom.workflows.dispatch import Dispatcher, build_dispatcher
from atom.workflows.integrations.errors import IntegrationError
from atom.workflows.models import RunStatus, StepRun, StepStatus, WorkflowRun, WorkflowVersion

log = get_logger("atom.workflows")
Clock = Callable[[], datetime]
NO_CONFIDENCE_ACTIONS = frozenset({"noop"})
DB_RETRIES = 5


@dataclass
class Claim:
    run: WorkflowRun
    step: StepRun
    attempt: int
    definition: WorkflowDefinition
    action: WorkflowAction | None
    params: Any
    timeout_s: float
    failure: tuple[str, str] | None = None  # (message, code): refused before acting, not retryable


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


class WorkflowEngine:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        registry: ActionRegistry | None = None,
        clock: Clock = utcnow,
        dispatcher: Dispatcher | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry or default_registry()
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.cipher = load_cipher(settings)
        self.dispatcher: Dispatcher = dispatcher or build_dispatcher(settings, self.run_step)
        self.http: httpx.AsyncClient = httpx.AsyncClient(follow_redirects=False)
        self._definitions: OrderedDict[tuple[str, int], WorkflowDefinition] = OrderedDict()
        self._running: dict[str, tuple[str, asyncio.Task[Any]]] = {}
        self._cancelled_runs: set[str] = set()
        self._wakeups: dict[str, asyncio.Event] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.scheduler: Any = None
        self.started = False

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, *, scheduler: bool | None = None) -> None:
        from atom.workflows.executor import install_executors
        from atom.workflows.scheduler import Scheduler

        if self.http.is_closed:
            self.http = httpx.AsyncClient(follow_redirects=False)
        await self.dispatcher.start()
        install_executors(self)
        get_bus().on(engine.RUN_CANCELLED, self._on_run_cancelled)
        if scheduler if scheduler is not None else self.settings.workflow_scheduler_enabled:
            self.scheduler = Scheduler(self)
            await self.scheduler.start()
        self.started = True
        set_engine(self)

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        await self.dispatcher.stop()
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.http.aclose()
        self.started = False
        if get_engine_or_none() is self:
            set_engine(None)

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- shared helpers --------------------------------------------------------------------

    async def definition(self, session: AsyncSession, workflow_id: str, version: int) -> WorkflowDefinition:
        """Versions are immutable, so their parsed definitions are cached."""
        key = (workflow_id, version)
        cached = self._definitions.get(key)
        if cached is not None:
            self._definitions.move_to_end(key)
            return cached
        from sqlalchemy import select

        row = await session.scalar(
            select(WorkflowVersion).where(
                WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version == version
            )
        )
        if row is None:
            raise InvalidInput(
                f"workflow version {workflow_id}@{version} is missing", code="WORKFLOW_VERSION_NOT_FOUND"
            )
        parsed = WorkflowDefinition.model_validate(row.definition)
        self._definitions[key] = parsed
        if len(self._definitions) > 256:
            self._definitions.popitem(last=False)
        return parsed

    async def after_commit(self, advance: engine.Advance | None) -> None:
        """Hand newly queued steps to workers and publish events; only ever after the commit."""
        if advance is None:
            return
        pooled = [q for q in advance.queued if not q.inline]
        if pooled:
            await self.dispatcher.dispatch(pooled)
        for queued in advance.queued:
            self.wake(queued.run_id)
        bus = get_bus()
        for topic, payload in advance.events:
            if "run_id" in payload:
                self.wake(str(payload["run_id"]))
            try:
                await bus.publish(topic, payload)
            except Exception:  # an event bus outage must not fail a committed step
                log.exception("could not publish workflow event", topic=topic)

    def wake(self, run_id: str) -> None:
        event = self._wakeups.get(run_id)
        if event is not None:
            event.set()

    def wakeup_event(self, run_id: str) -> asyncio.Event:
        return self._wakeups.setdefault(run_id, asyncio.Event())

    def forget_wakeup(self, run_id: str) -> None:
        self._wakeups.pop(run_id, None)

    async def transact(self, body: Callable[[AsyncSession], Awaitable[engine.Advance | None]]) -> engine.Advance | None:
        """One transaction, retried on deadlocks and serialization failures, then `after_commit`."""
        for attempt in range(DB_RETRIES):
            try:
                async with self.db.session_scope() as session:
                    advance = await body(session)
            except DBAPIError as exc:
                if attempt == DB_RETRIES - 1 or not _transient(exc):
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
                continue
            await self.after_commit(advance)
            return advance
        return None

    # --- cancellation ----------------------------------------------------------------------

    def _on_run_cancelled(self, payload: dict[str, Any]) -> None:
        run_id = payload.get("run_id")
        if not isinstance(run_id, str):
            return
        self._cancelled_runs.add(run_id)
        for owner_run, task in list(self._running.values()):
            if owner_run == run_id:
                task.cancel()
        self.wake(run_id)

    # --- one step --------------------------------------------------------------------------

    async def run_step(self, step_run_id: str, *, override_input: dict[str, Any] | None = None) -> Outcome | None:
        """Entry point for workers (pool and arq). Never raises for a step's own failure."""
        try:
            claim = await self._claim(step_run_id, override_input)
            if claim is None:
                return None
            outcome = await self._act(claim)
            await self._record(claim, outcome)
            return outcome
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("workflow step could not be processed; it will be redelivered", step_run_id=step_run_id)
            return None

    async def _claim(self, step_run_id: str, override_input: dict[str, Any] | None) -> Claim | None:
        now = self.clock()
        lease = timedelta(seconds=self.settings.workflow_visibility_timeout_s)
        async with self.db.session_scope() as session:
            claimed = await session.execute(
                update(StepRun)
                .where(
                    StepRun.id == step_run_id,
                    or_(
                        and_(
                            StepRun.status == StepStatus.QUEUED.value,
                            or_(StepRun.due_at.is_(None), StepRun.due_at <= now),
                        ),
                        and_(StepRun.status == StepStatus.RUNNING.value, StepRun.lease_expires_at < now),
                    ),
                )
                .values(
                    status=StepStatus.RUNNING.value,
                    attempt=StepRun.attempt + 1,
                    started_at=now,
                    finished_at=None,
                    lease_expires_at=now + lease,
                    worker=self.worker_id,
                )
                .returning(StepRun.attempt)
                .execution_options(synchronize_session=False)
            )
            attempt = claimed.scalar()
            if attempt is None:
                return None
            step = await session.get(StepRun, step_run_id, populate_existing=True)
            assert step is not None
            run = await session.get(WorkflowRun, step.run_id, populate_existing=True)
            assert run is not None
            definition = await self.definition(session, run.workflow_id, run.version)
            spec = definition.step(step.step_key)
            timeout = min(spec.timeout or self.settings.workflow_job_timeout_s, self.settings.workflow_job_timeout_s)
            claim = Claim(run, step, attempt, definition, None, None, timeout)
            if run.status != RunStatus.RUNNING.value:
                step.status = StepStatus.CANCELLED.value
                step.finished_at = now
                step.error = "not run: the run is no longer running"
                return None
            try:
                if override_input is not None:
                    rendered = override_input
                else:
                    steps = await engine.load_steps(session, run.id)
                    failure = (
                        engine.failure_for_handler(definition, steps, step.step_key)
                        if step.step_key in definition.handler_ids
                        else None
                    )
                    context = engine.template_context(run, steps, failure=failure)
                    rendered = templates.render_value(spec.with_, context, field=f"steps.{spec.id}.with")
                step.input = rendered
                action = self.registry.get(spec.action or "")
                if action is None:
                    claim.failure = (f"no registered action {spec.action!r}", "UNKNOWN_ACTION")
                    return claim
                claim.action = action
                claim.params = action.validate(rendered)
            except (templates.TemplateError, InvalidInput) as exc:
                claim.failure = (exc.message, exc.code)
                return claim
            decision = await governance.check(
                session=session,
                agent_id=step.agent_id or run.agent_id,
                action=action.governance_action(claim.params),
                context=engine.governance_context(run),
                settings=self.settings,
            )
            if not decision.allowed:
                claim.failure = (f"governance: {decision.reason}", decision.reason_code)
            return claim

    async def _act(self, claim: Claim) -> Outcome:
        if claim.failure is not None:
            return Outcome(ok=False, error=claim.failure[0], code=claim.failure[1], retryable=False)
        assert claim.action is not None
        context = ActionContext(
            settings=self.settings,
            db=self.db,
            http=self.http,
            cipher=self.cipher,
            idempotency_key=claim.step.idempotency_key,
            run_id=claim.run.id,
            step_id=claim.step.step_key,
            agent_id=claim.step.agent_id or claim.run.agent_id,
            logs=list(claim.step.logs or []),
        )
        action_task = asyncio.ensure_future(claim.action.handler(claim.params, context))
        self._running[claim.step.id] = (claim.run.id, action_task)
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
            self._running.pop(claim.step.id, None)
            claim.step.logs = context.logs

    async def _record(self, claim: Claim, outcome: Outcome) -> None:
        now = self.clock()
        logs = list(claim.step.logs or [])

        async def body(session: AsyncSession) -> engine.Advance | None:
            if outcome.ok:
                advance = await engine.record_success(
                    session,
                    run_id=claim.run.id,
                    step_run_id=claim.step.id,
                    attempt=claim.attempt,
                    output=outcome.output or {},
                    logs=logs,
                    definition=claim.definition,
                    now=now,
                    settings=self.settings,
                )
            else:
                advance = await engine.record_failure(
                    session,
                    run_id=claim.run.id,
                    step_run_id=claim.step.id,
                    attempt=claim.attempt,
                    error=outcome.error or "failed",
                    code=outcome.code or "FAILED",
                    retryable=outcome.retryable and not outcome.cancelled,
                    logs=logs,
                    definition=claim.definition,
                    now=now,
                    settings=self.settings,
                )
            acted = claim.failure is None and not outcome.cancelled
            if (
                advance is not None
                and acted
                and claim.action is not None
                and claim.action.name not in NO_CONFIDENCE_ACTIONS
            ):
                await agents_service.record_confidence(
                    session=session,
                    agent_id=claim.step.agent_id or claim.run.agent_id,
                    delta=self.settings.confidence_action_success
                    if outcome.ok
                    else self.settings.confidence_action_failure,
                    reason=f"workflow step {claim.step.step_key} ({claim.action.name}) "
                    + ("succeeded" if outcome.ok else "failed"),
                    source="workflow",
                    source_id=claim.run.id,
                    settings=self.settings,
                )
            return advance

        await self.transact(body)


def _transient(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(marker in text for marker in ("deadlock", "could not serialize", "database is locked", "serialization"))


_engine: WorkflowEngine | None = None


def set_engine(value: WorkflowEngine | None) -> None:
    global _engine
    _engine = value


def get_engine_or_none() -> WorkflowEngine | None:
    return _engine


def get_engine() -> WorkflowEngine:
    if _engine is None:
        from atom.errors import Unavailable

        raise Unavailable("The workflow engine is not running in this process.", code="WORKFLOW_ENGINE_STOPPED")
    return _engine
