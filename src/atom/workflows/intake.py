"""The embedded engine's webhook intake: deliveries verified, recorded and started in batches.

`webhooks.receive` hands a delivery here once its headers and timestamp are checked. Deliveries that
arrive while a batch is being committed form the next batch, which is one body of the group committer
(`commits.py`), so one transaction holds all of them:

1. each distinct webhook of the batch is looked up once (`webhooks.find_webhook`, its version and
   definition); its rows are kept between batches while a two-statement stamp (workflow version,
   trigger row, secret version) is unchanged, so an update, a disabled trigger or a rotated secret
   is seen by the next batch;
2. each delivery's HMAC is checked with that secret and its body parsed; a refusal (401, 404, 422,
   503) writes nothing for it;
3. the fires are inserted in one statement; the unique (trigger, signature) key refuses a replay
   (409), also of a signature that appears twice in the batch;
4. each delivery is planned as `flows.start_workflow` plans it (`flows.plan_start`), the trigger
   interceptor decides it in the same transaction (`interceptor.decide`: its records, proposals and
   audit), and a delivery routed to run gets its run created there too, with
   its first ready step claimed for this process and prepared (inputs rendered, governance checked);
5. the fires get their outcome; the committer commits.

After the commit each caller is answered; then each claimed step goes straight to an embedded pool
worker (no queue round trip and no claim transaction) and runs with the chain that follows it. A
crash after the commit leaves the step `running` under this process's name: the restarted process
takes it over at once (`reclaim_at_start`), as for any interrupted step. A batch whose start of one
delivery fails is rolled back; that delivery goes the ordinary way (`webhooks.receive_one`), which
records the failure on its fire, and the others are taken again.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.db.base import new_id, table_of
from atom.errors import AtomError, InvalidInput, Unauthorized, Unavailable
from atom.governance.policy import GovernanceContext, TriggerKind
from atom.observability.logging import get_logger
from atom.security import secrets_store
from atom.training import interceptor
from atom.workflows import flows, machine, service, state, webhooks
from atom.workflows.claims import Claim
from atom.workflows.definition import RespondMode, WorkflowDefinition
from atom.workflows.dispatch import EmbeddedPool
from atom.workflows.executor import start_run_in
from atom.workflows.models import TriggerFire, Workflow, WorkflowTrigger, WorkflowVersion
from atom.workflows.runner import StepRunner
from atom.workflows.state import RunState, StepState

log = get_logger("atom.workflows.intake")
MAX_CACHED_TARGETS = 1000
# Steps claimed by batches and waiting for a pool worker, per worker, before the next batch waits: under
# load, accepting faster than the pool runs would only grow a backlog (the senders wait instead, and the
# next batch is the larger for it).
POOL_BACKLOG = 4
FIRES = table_of(TriggerFire)
WORKFLOWS = table_of(Workflow)
TRIGGERS = table_of(WorkflowTrigger)
_STAMP = (
    select(
        WORKFLOWS.c.id,
        WORKFLOWS.c.current_version,
        TRIGGERS.c.id,
        TRIGGERS.c.kind,
        TRIGGERS.c.enabled,
        TRIGGERS.c.config,
    )
    .select_from(TRIGGERS.join(WORKFLOWS, WORKFLOWS.c.id == TRIGGERS.c.workflow_id))
    .where(
        TRIGGERS.c.trigger_key == bindparam("key"),
        or_(WORKFLOWS.c.id == bindparam("ref"), WORKFLOWS.c.name == bindparam("ref")),
    )
)
_FINISH_FIRE = (
    update(FIRES)
    .where(FIRES.c.id == bindparam("fire_id"))
    .values(outcome=bindparam("outcome"), run_id=bindparam("run_id_"), detail=bindparam("detail"))
)


@dataclass
class _Item:
    delivery: webhooks.Delivery
    timestamp: str
    signature: str
    done: asyncio.Future[webhooks.Accepted] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


_Stamp = tuple[Any, ...]


async def _stamp(session: AsyncSession, workflow_ref: str, trigger_key: str) -> _Stamp | None:
    """What a webhook's verification and start depend on, in two statements: the workflow's current
    version, the trigger's row (kind, enabled, config) and its secret's version (rotated: a new one)."""
    rows = (await (await session.connection()).execute(_STAMP, {"ref": workflow_ref, "key": trigger_key})).all()
    row = next((r for r in rows if r[0] == workflow_ref), rows[0] if rows else None)  # by id, else by name
    if row is None:
        return None
    secret = str((row[5] or {}).get("secret"))
    versions = await secrets_store.versions(session=session, names=[secret])
    return (*row[:5], json.dumps(row[5], sort_keys=True), versions.get(secret))


@dataclass(frozen=True)
class _Target:
    webhook: webhooks.Webhook
    version: WorkflowVersion
    definition: WorkflowDefinition


@dataclass
class _Started:
    item: _Item
    target: _Target
    planned: flows.PlannedStart
    routed: interceptor.RoutingResult
    run_id: str | None = None
    advance: machine.Advance | None = None
    claim: Claim | None = None


@dataclass
class _Batch:
    refused: list[tuple[_Item, AtomError]] = field(default_factory=list)
    started: list[_Started] = field(default_factory=list)


class _StartFailed(Exception):
    def __init__(self, item: _Item) -> None:
        super().__init__("a delivery of the batch could not start")
        self.item = item


class WebhookIntake:
    def __init__(self, runner: StepRunner) -> None:
        self.runner = runner
        self._pending: list[_Item] = []
        self._draining = False
        self._targets: dict[tuple[str, str], tuple[_Stamp, _Target]] = {}

    async def receive(self, delivery: webhooks.Delivery) -> webhooks.Accepted:
        timestamp, signature = webhooks.check_signed(self.runner, delivery.headers)
        item = _Item(delivery, timestamp, signature)
        self._pending.append(item)
        if not self._draining:
            self._draining = True
            self.runner.spawn(self._drain(), "atom-webhook-intake")
        return await item.done

    async def _drain(self) -> None:
        items: list[_Item] = []
        try:
            while self._pending:
                if isinstance(self.runner.dispatcher, EmbeddedPool):  # claim no faster than the pool runs
                    await self.runner.dispatcher.room(self.runner.dispatcher.concurrency * POOL_BACKLOG)
                items, self._pending = self._pending, []
                await self._take(items)
        finally:
            self._draining = False
            stopped = Unavailable("The workflow engine stopped.", code="WORKFLOW_ENGINE_STOPPED")
            for item in [*items, *self._pending]:  # cancelled: the engine is going away
                _fail(item, stopped)

    async def _take(self, items: list[_Item]) -> None:
        commits = self.runner.commits
        if commits is None or not commits.running:  # the engine is stopping: each goes the ordinary way
            for item in items:
                self.runner.spawn(self._one(item), "atom-webhook-delivery")
            return
        try:
            batch: _Batch = await commits.run(lambda session: self._batch(session, items))
        except _StartFailed as failed:
            self._pending[:0] = [i for i in items if i is not failed.item]
            self.runner.spawn(self._one(failed.item), "atom-webhook-delivery")
            return
        except Exception as exc:
            for item in items:
                _fail(item, exc)
            return
        for item, error in batch.refused:
            _fail(item, error)
        for started in batch.started:
            await self._after_commit(started)

    async def _one(self, item: _Item) -> None:
        """The ordinary path for one delivery: its own transactions, its failure recorded on its fire."""
        try:
            accepted = await webhooks.receive_one(self.runner, item.delivery)
        except Exception as exc:
            _fail(item, exc)
        else:
            if not item.done.done():
                item.done.set_result(accepted)

    # --- one batch, inside the group commit's transaction ----------------------------------

    async def _batch(self, session: AsyncSession, items: list[_Item]) -> _Batch:
        batch = _Batch()
        targets: dict[tuple[str, str], _Target | AtomError] = {}
        verified: list[tuple[_Item, _Target, dict[str, Any]]] = []
        for item in items:
            key = (item.delivery.workflow_ref, item.delivery.trigger_key)
            if key not in targets:
                targets[key] = await self._target(session, *key)
            target = targets[key]
            if isinstance(target, AtomError):
                batch.refused.append((item, target))
                continue
            try:
                webhooks.verify(target.webhook, item.timestamp, item.delivery, item.signature)
                payload = webhooks.trigger_payload(self.runner, item.delivery.trigger_key, item.delivery)
            except (Unauthorized, InvalidInput) as exc:
                batch.refused.append((item, exc))
                continue
            verified.append((item, target, payload))
        keys = [(t.webhook.trigger.id, webhooks.fire_key(i.signature)) for i, t, _ in verified]
        fires = await _insert_fires(session, keys, self.runner.clock())
        finished: list[dict[str, Any]] = []
        runs: list[tuple[RunState, list[StepState]]] = []
        # The agents of the batch, held: the session's identity map keeps only objects someone holds, so
        # the interceptor's read of each delivery's agent is then answered without a query.
        agent_ids = {a for _, t, _ in verified if (a := flows.workflow_agent_id(self.runner, t.version)) is not None}
        agents = [await agents_service.find_agent(session=session, agent_id=agent_id) for agent_id in agent_ids]
        for item, target, payload in verified:
            fire_id = fires.pop((target.webhook.trigger.id, webhooks.fire_key(item.signature)), None)
            if fire_id is None:  # recorded before, or earlier in this batch
                batch.refused.append((item, webhooks.replayed()))
                continue
            try:
                started = await self._start(session, item, target, payload)
            except DBAPIError:
                raise  # the transaction is lost: the committer runs the batch again
            except Exception as exc:
                log.warning("webhook delivery did not start in its batch; taking it alone", error=str(exc))
                raise _StartFailed(item) from exc
            batch.started.append(started)
            if started.advance is not None and started.advance.run is not None:
                runs.append((started.advance.run, started.advance.steps))
            finished.append(
                {
                    "fire_id": fire_id,
                    "outcome": started.routed.route.value,
                    "run_id_": started.run_id,
                    "detail": started.routed.reason[:2000] or None,
                }
            )
        await state.insert_runs(session, runs)  # every run of the batch and its steps: two statements
        if finished:
            await (await session.connection()).execute(_FINISH_FIRE, finished)
        del agents
        return batch

    async def _target(self, session: AsyncSession, workflow_ref: str, trigger_key: str) -> _Target | AtomError:
        """The webhook's rows, read again only when they changed since the last batch (`_Stamp`)."""
        key = (workflow_ref, trigger_key)
        stamp = await _stamp(session, workflow_ref, trigger_key)  # before the rows: a change after it is seen next time
        cached = self._targets.get(key)
        if cached is not None and stamp is not None and stamp == cached[0]:
            return cached[1]
        self._targets.pop(key, None)
        target = await self._load_target(session, workflow_ref, trigger_key)
        if isinstance(target, _Target) and stamp is not None:
            if len(self._targets) >= MAX_CACHED_TARGETS:
                self._targets.pop(next(iter(self._targets)))
            self._targets[key] = (stamp, target)
        return target

    async def _load_target(self, session: AsyncSession, workflow_ref: str, trigger_key: str) -> _Target | AtomError:
        try:
            webhook = await webhooks.find_webhook(self.runner, session, workflow_ref, trigger_key)
        except AtomError as exc:
            return exc
        version = await service.get_version(session=session, workflow_id=webhook.workflow.id)
        definition = await self.runner.definition(session, webhook.workflow.id, version.version)
        return _Target(webhook, version, definition)

    async def _start(self, session: AsyncSession, item: _Item, target: _Target, payload: dict[str, Any]) -> _Started:
        """What `flows.start_workflow` and the interceptor do for one delivery, in the batch's transaction;
        a routed run is created here too, its first step claimed for this process."""
        runner, workflow, version = self.runner, target.webhook.workflow, target.version
        planned = flows.plan_start(
            runner,
            workflow=workflow,
            version=version,
            definition=target.definition,
            inputs={},
            source="webhook",
            kind=TriggerKind.AUTOMATED,
            payload=payload,
            trigger_id=target.webhook.trigger.id,
        )
        routed = await interceptor.decide(
            session=session,
            settings=runner.settings,
            agent_id=planned.agent_id,
            trigger=planned.trigger,
            plan=planned.plan,
        )
        started = _Started(item, target, planned, routed)
        if routed.route is not interceptor.Route.RUN:
            return started
        in_pool = isinstance(runner.dispatcher, EmbeddedPool)
        run, advance = await start_run_in(
            session,
            runner,
            workflow=workflow,
            version=version,
            definition=target.definition,
            agent_id=planned.agent_id,
            params=planned.plan.steps[0].params,
            context=GovernanceContext(trigger=planned.trigger.kind, source=planned.trigger.source),
            claim=machine.ClaimNext(runner.worker_id, runner.settings.workflow_visibility_timeout_s)
            if in_pool
            else None,
            insert=False,  # the batch inserts its runs together
        )
        started.run_id, started.advance = run.id, advance
        if advance.claimed is not None:
            started.claim = await runner.prepare_claimed(session, advance, save=False)
        return started

    # --- after the commit --------------------------------------------------------------------

    async def _after_commit(self, started: _Started) -> None:
        runner, item, routed = self.runner, started.item, started.routed
        mode, timeout_s = webhooks.respond_settings(started.target.webhook.trigger.config)
        result = flows.StartResult.of(routed, started.run_id)
        waiter = runner.watch.register(started.run_id) if started.run_id and mode is RespondMode.ON_FINISH else None
        if not item.done.done():
            item.done.set_result(webhooks.Accepted(result, mode, timeout_s, waiter))
        elif waiter is not None and started.run_id is not None:
            runner.watch.forget(started.run_id, waiter)
        if routed.route is interceptor.Route.SUPERVISED:
            runner.spawn(self._supervise(started), "atom-webhook-supervise")
        if started.advance is not None:
            await runner.after_commit(started.advance)
        claim = started.claim
        if claim is not None and isinstance(runner.dispatcher, EmbeddedPool):
            runner.remember_chain(claim.run, started.advance.steps if started.advance else [claim.step])

            async def drive(claimed: Claim = claim) -> object:
                return await runner.drive_claimed(claimed)

            runner.dispatcher.run_now(drive)

    async def _supervise(self, started: _Started) -> None:
        """A SUPERVISED route's session may run now (a supervisor is connected): `interceptor.follow_up`."""
        try:
            await interceptor.follow_up(
                db=self.runner.db,
                settings=self.runner.settings,
                agent_id=started.routed.agent_id,
                trigger=started.planned.trigger,
                plan=started.planned.plan,
                result=started.routed,
            )
        except Exception:  # the delivery was answered already; the session stays for a supervisor to start
            log.exception("supervised webhook run did not start", session_id=started.routed.supervision_session_id)


def _fail(item: _Item, exc: BaseException) -> None:
    if not item.done.done():
        item.done.set_exception(exc)


async def _insert_fires(
    session: AsyncSession, keys: list[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], str]:
    """Insert one fire per (trigger id, fire key); the ids of those inserted (a key seen before is not)."""
    if not keys:
        return {}
    conn = await session.connection()
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    rows = [
        {"id": new_id(), "trigger_id": trigger_id, "fire_key": key, "outcome": "pending", "created_at": now}
        for trigger_id, key in dict.fromkeys(keys)  # a key twice in the batch: the first is the delivery
    ]
    stmt = (
        dialect.insert(FIRES)
        .on_conflict_do_nothing(index_elements=["trigger_id", "fire_key"])
        .returning(FIRES.c.id, FIRES.c.trigger_id, FIRES.c.fire_key)
    )
    inserted = (await conn.execute(stmt, rows)).all()
    return {(trigger_id, key): fire_id for fire_id, trigger_id, key in inserted}
