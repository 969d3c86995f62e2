"""The step runner: claims a step, checks governance, runs the action, records the outcome.

It is passive: it starts nothing. `workflows/app.py` starts a runner's dispatcher, the scheduler and
the "workflow" executor (in `atom-os serve` and `atom-os worker`); `machine.py` is the run state
machine the runner's transactions call. Step 1 is `claims.py`, step 2 `acting.py`, step 3 `outcomes.py`.

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
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.errors import InvalidInput
from atom.events.bus import get_bus
from atom.observability.logging import get_logger
from atom.security.secrets_store import load_cipher
from atom.workflows import acting, claims, holders, machine, outcomes, state
from atom.workflows import actions as workflow_actions
from atom.workflows.acting import Outcome
from atom.workflows.actions import ActionContext, ActionRegistry
from atom.workflows.claims import Claim
from atom.workflows.commits import GroupCommitter
from atom.workflows.definition import WorkflowDefinition
from atom.workflows.dispatch import Dispatcher, EmbeddedPool, build_dispatcher
from atom.workflows.models import RunStatus, StepStatus, WorkflowVersion
from atom.workflows.state import RunState, StepState
from atom.workflows.watch import RunWatch

log = get_logger("atom.workflows")
Clock = Callable[[], datetime]
NO_CONFIDENCE_ACTIONS = frozenset({"noop"})
DB_RETRIES = 5


class DeliveryIntake(Protocol):
    """What receives webhook deliveries in batches (`workflows/intake.py`), set on a started runner."""

    async def receive(self, delivery: Any) -> Any: ...


class StepRunner:
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
        self.registry = registry or workflow_actions.current()
        self.clock = clock
        self.worker_id = worker_id or holders.this_process()  # HOST:PID:START (holders.py)
        self.cipher = load_cipher(settings)
        self.dispatcher: Dispatcher = dispatcher or build_dispatcher(settings, self._run_in_pool)
        self.http: httpx.AsyncClient = httpx.AsyncClient(follow_redirects=False)
        self._definitions: OrderedDict[tuple[str, int], WorkflowDefinition] = OrderedDict()
        self._running: acting.Running = {}
        self._cancelled_runs: set[str] = set()
        self._wakeups: dict[str, asyncio.Event] = {}
        self.watch = RunWatch()  # runs someone waits to end (respond: on_finish webhooks); fed by app.start
        # Set by app.start with the embedded executor: the group committer and the webhook intake.
        self.commits: GroupCommitter | None = None
        self.intake: DeliveryIntake | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._chains: dict[str, outcomes.Known] = {}  # run id -> its steps as this worker's chain left them
        # A worker of a task engine with job timeouts sets these (see `run_step`); the embedded pool has neither.
        self.may_continue: Callable[[], bool] = lambda: True
        self.chain_budget_s: float | None = None
        # Set by a started engine's scheduler (workflows/app.py): event triggers created here are listened to at once.
        self.subscribe_topic: Callable[[str], None] | None = None

    # --- lifecycle (driven by workflows/app.py) --------------------------------------------

    def open(self) -> None:
        """Ready to run steps: an HTTP client for the actions (again after `close`)."""
        if self.http.is_closed:
            self.http = httpx.AsyncClient(follow_redirects=False)

    async def close(self) -> None:
        """Cancel the background tasks this runner spawned and close its HTTP client."""
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.http.aclose()

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

    async def after_commit(self, advance: machine.Advance | None) -> None:
        """Hand newly queued steps to workers and publish events; only ever after the commit."""
        if advance is None:
            return
        pooled = [q for q in advance.queued if not q.inline]
        if pooled:
            await self.dispatcher.dispatch(pooled)
        for queued in advance.queued:
            self.wake(queued.run_id)
        if advance.ended is not None:
            self.watch.ended(*advance.ended)
        bus = get_bus()
        # Each run touched by this transaction, for live views of a run (the dashboard's timeline).
        touched = {q.run_id for q in advance.queued} | {str(p["run_id"]) for _, p in advance.events if "run_id" in p}
        if advance.run is not None:
            touched.add(advance.run.id)
        changed = [(machine.RUN_CHANGED, {"run_id": run_id}) for run_id in sorted(touched)]
        for topic, payload in [*advance.events, *changed]:
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

    async def transact(
        self, body: Callable[[AsyncSession], Awaitable[machine.Advance | None]]
    ) -> machine.Advance | None:
        """One transaction, retried on deadlocks and serialization failures, then `after_commit`.

        With the embedded engine started, the body runs in the group committer's next transaction
        (`commits.py`), with other callers' bodies."""
        if self.commits is not None and self.commits.running:
            advance = await self.commits.run(body)
            await self.after_commit(advance)
            return advance
        for attempt in range(DB_RETRIES):
            try:
                async with self.db.session_scope() as session:
                    advance = await body(session)
            except DBAPIError as exc:
                if attempt == DB_RETRIES - 1 or not is_transient(exc):
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
                continue
            await self.after_commit(advance)
            return advance
        return None

    # --- cancellation ----------------------------------------------------------------------

    def on_run_cancelled(self, payload: dict[str, Any]) -> None:
        run_id = payload.get("run_id")
        if not isinstance(run_id, str):
            return
        self._cancelled_runs.add(run_id)
        for owner_run, task in list(self._running.values()):
            if owner_run == run_id:
                task.cancel()
        self.wake(run_id)

    # --- one step --------------------------------------------------------------------------

    async def run_step(
        self,
        step_run_id: str,
        *,
        override_input: dict[str, Any] | None = None,
        holding: Callable[[str], None] | None = None,
    ) -> Outcome | None:
        """Entry point for workers (pool and job queue). Never raises for a step's own failure.

        Returns the outcome of the step asked for. When that step's completion makes another step of a
        pool run ready, this worker claims it in the same transaction and runs it next (a chain costs
        one transaction per step), while `may_continue` allows and the chain budget lasts; the other
        ready steps go to the queue as usual. `holding` is told the id of each step taken over.
        """
        return await self._drive(step_run_id, self._claim(step_run_id, override_input), override_input, holding)

    async def drive_claimed(self, claim: Claim) -> Outcome | None:
        """On an embedded pool worker: run a step this process claimed already (with the transaction
        that created its run: the webhook intake, or a completion that chained it), then let the worker go."""

        async def claimed() -> Claim:
            return claim

        return await self._drive(claim.step.id, claimed(), None, None, in_pool=True)

    async def _run_in_pool(self, step_run_id: str) -> Outcome | None:
        """The embedded pool's handler: `run_step`, but the worker is free once the action is done."""
        return await self._drive(step_run_id, self._claim(step_run_id, None), None, None, in_pool=True)

    async def _record_in_background(self, claim: Claim, outcome: Outcome, chain: bool) -> None:
        """Record an outcome off the pool worker; a step the completion chained goes back to the pool."""
        try:
            following = await self._record(claim, outcome, chain=chain)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("workflow step could not be recorded; it will be redelivered", step_run_id=claim.step.id)
            return
        if following is None:
            return
        assert isinstance(self.dispatcher, EmbeddedPool)  # `in_pool` work only comes from one

        async def drive(claimed: Claim = following) -> Outcome | None:
            return await self.drive_claimed(claimed)

        self.dispatcher.run_now(drive)

    async def _drive(
        self,
        step_run_id: str,
        first_claim: Awaitable[Claim | None],
        override_input: dict[str, Any] | None,
        holding: Callable[[str], None] | None,
        *,
        in_pool: bool = False,
    ) -> Outcome | None:
        """Claim, act, record, and run the step each completion chains. `in_pool`: the outcome is recorded
        on a task of its own so the embedded pool's worker (what bounds the actions running at once)
        takes its next step while the record waits for its group commit; a chained step returns to the pool."""
        first: Outcome | None = None
        claim: Claim | None = None
        current = step_run_id
        started = time.monotonic()
        try:
            claim = await first_claim
            if claim is not None and claim.known is not None:  # committed: its record need not read the run again
                self._chains[claim.run.id] = claim.known
            while claim is not None:
                current = claim.step.id
                if holding is not None:
                    holding(current)
                outcome = await self._act(claim)
                first = first or outcome
                chain = override_input is None and self._may_chain(started, claim)
                if in_pool:
                    self.spawn(self._record_in_background(claim, outcome, chain), "atom-workflow-record")
                    claim = None  # its chain snapshot is the record's now
                    break
                claim = await self._record(claim, outcome, chain=chain)
            return first
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("workflow step could not be processed; it will be redelivered", step_run_id=current)
            return first
        finally:
            if claim is not None:
                self._chains.pop(claim.run.id, None)

    def _may_chain(self, started: float, claim: Claim) -> bool:
        if not self.may_continue():
            return False
        if self.chain_budget_s is None:
            return True
        # the next step (at most the job timeout) must fit too: past its budget the task engine cancels the job
        return time.monotonic() - started + self.settings.workflow_job_timeout_s < self.chain_budget_s

    async def _claim(self, step_run_id: str, override_input: dict[str, Any] | None) -> Claim | None:
        for attempt in range(DB_RETRIES):
            try:
                return await self._claim_once(step_run_id, override_input)
            except DBAPIError as exc:
                if attempt == DB_RETRIES - 1 or not is_transient(exc):
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        return None

    async def _claim_once(self, step_run_id: str, override_input: dict[str, Any] | None) -> Claim | None:
        if self.commits is not None and self.commits.running:
            return await self.commits.run(lambda session: self._claim_in(session, step_run_id, override_input))
        async with self.db.session_scope() as session:
            return await self._claim_in(session, step_run_id, override_input)

    async def _claim_in(
        self, session: AsyncSession, step_run_id: str, override_input: dict[str, Any] | None
    ) -> Claim | None:
        now = self.clock()
        lease_s = self.settings.workflow_visibility_timeout_s
        step = await claims.claim_step(session, step_run_id, now=now, lease_s=lease_s, worker=self.worker_id)
        if step is None:
            return None
        run = await state.read_run(session, step.run_id)
        assert run is not None
        if run.status != RunStatus.RUNNING.value:
            step.status = StepStatus.CANCELLED.value
            step.finished_at = now
            step.error = "not run: the run is no longer running"
            await state.save_steps(session, [step])
            return None
        # The run is read before its steps: a change committed between the two reads bumps the version
        # this snapshot holds, so the record's `save_step_at` then finds it stale and reads the rows again.
        steps = [step if s.id == step.id else s for s in await state.load_steps(session, run.id)]
        claim = await self._prepare(session, run, steps, step, override_input)
        claim.known = outcomes.Known(run, steps)
        return claim

    async def _prepare(
        self,
        session: AsyncSession,
        run: RunState,
        steps: list[StepState],
        step: StepState,
        override_input: dict[str, Any] | None,
        *,
        save: bool = True,
    ) -> Claim:
        """A claimed step's inputs rendered and validated and its action checked by governance
        (`save=False`: the step's row is not written here, the caller inserts it)."""
        definition = await self.definition(session, run.workflow_id, run.version)
        return await claims.prepare(
            session,
            run=run,
            steps=steps,
            step=step,
            definition=definition,
            registry=self.registry,
            settings=self.settings,
            override_input=override_input,
            save=save,
        )

    async def _act(self, claim: Claim) -> Outcome:
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
        return await acting.act(claim, context, self._running)

    async def _record(self, claim: Claim, outcome: Outcome, *, chain: bool = False) -> Claim | None:
        """Record the outcome; with `chain`, return the next step of the run this worker claimed to run now."""
        now = self.clock()
        logs = list(claim.step.logs or [])
        claim_next = (
            machine.ClaimNext(self.worker_id, self.settings.workflow_visibility_timeout_s)
            if chain and outcome.ok
            else None
        )
        following: list[Claim | None] = []
        known = [k] if (k := self._chains.pop(claim.run.id, None)) is not None else []

        async def prepare(session: AsyncSession, advance: machine.Advance) -> None:
            following[:] = [await self.prepare_claimed(session, advance, save=False)]  # the record writes it

        async def body(session: AsyncSession) -> machine.Advance | None:
            following.clear()
            if outcome.ok:
                advance = await outcomes.record_success(
                    session,
                    run_id=claim.run.id,
                    step_run_id=claim.step.id,
                    attempt=claim.attempt,
                    output=outcome.output or {},
                    logs=logs,
                    definition=claim.definition,
                    now=now,
                    settings=self.settings,
                    claim_next=claim_next,
                    known=known.pop() if known else None,  # a retried transaction reads the rows again
                    prepare=prepare,
                )
            else:
                advance = await outcomes.record_failure(
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
            if advance is None or advance.claimed is None:
                following.clear()  # a claim prepared on a snapshot that proved stale
            return advance

        advance = await self.transact(body)
        following_claim = next((c for c in following if c is not None), None)
        if following_claim is not None and advance is not None and advance.run is not None:
            self._chains[advance.run.id] = outcomes.Known(advance.run, advance.steps)
        return following_claim

    def remember_chain(self, run: RunState, steps: list[StepState]) -> None:
        """`run` and `steps` as the transaction that claimed one of its steps for this worker committed them."""
        self._chains[run.id] = outcomes.Known(run, steps)

    async def prepare_claimed(
        self, session: AsyncSession, advance: machine.Advance, *, save: bool = True
    ) -> Claim | None:
        """Prepare the step claimed in `advance` (by a completion, or with its run: the webhook intake); if that
        fails, hand it to the queue instead (None). `save=False`: the caller writes the step's row."""
        step, run = advance.claimed, advance.run
        assert step is not None and run is not None
        try:
            return await self._prepare(session, run, advance.steps, step, None, save=save)
        except DBAPIError:
            raise  # the transaction is lost: `transact` retries it whole
        except Exception:
            log.exception("could not prepare the next workflow step here; queueing it", step_run_id=step.id)
            step.status = StepStatus.QUEUED.value
            step.attempt -= 1
            step.started_at = step.lease_expires_at = step.worker = None
            step.input = None
            if save:
                await state.save_steps(session, [step])
            advance.claimed = None
            advance.queued.append(machine.QueuedStep(step.id, run.id, step.dispatches))
            return None


def is_transient(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:  # the database restarted or dropped the connection: a fresh one will do
        return True
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(marker in text for marker in ("deadlock", "could not serialize", "database is locked", "serialization"))
