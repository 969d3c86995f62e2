"""Append-only audit log with a hash chain.

Appending locks the single chain-head row first (`UPDATE ... RETURNING`): on PostgreSQL that
row lock serializes concurrent appenders until their transactions end, on SQLite the UPDATE
takes the database write lock. Either way no two rows ever follow the same predecessor, and
the unique `prev_hash` column would refuse it if they tried. Later appends in the same
transaction already hold the head and skip the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from atom.audit import checkpoints as checkpoint_store
from atom.audit.chain import link_hash
from atom.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from atom.audit.schemas import ChainVerification, CheckpointRead
from atom.config import Settings
from atom.db.base import new_id, table_of, utcnow
from atom.db.session import on_commit
from atom.errors import NotFound
from atom.events.bus import get_bus
from atom.observability import metrics
from atom.pagination import paginate

VERIFY_BATCH = 1000
# After a transaction that recorded one of these commits, "audit.notice" goes on the bus (once per
# transaction): the dashboard's live counts listen to it. Other actions (governance checks) publish nothing.
NOTICE_TOPIC = "audit.notice"
NOTICE_PREFIXES = ("proposal.", "supervision.", "trigger.", "training.")
_NOTICED = "atom_audit_noticed"


@dataclass(frozen=True)
class Actor:
    type: str  # user | agent | system
    id: str | None

    @classmethod
    def system(cls) -> Actor:
        return cls("system", None)

    @classmethod
    def user(cls, user_id: str) -> Actor:
        return cls("user", user_id)

    @classmethod
    def agent(cls, agent_id: str) -> Actor:
        return cls("agent", agent_id)


def _current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value is not None else None


_EVENTS = table_of(AuditEvent)
_HEAD = table_of(AuditChainHead)
_LOCK_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + 1).returning(_HEAD.c.seq, _HEAD.c.last_hash)
_INSERT_EVENT = insert(_EVENTS)
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("seq"), last_hash=bindparam("last_hash"))
_HELD_HEAD = "atom_audit_head"
_DEFERRED = "atom_audit_deferred"


async def _next_link(session: AsyncSession, conn: AsyncConnection) -> tuple[int, str]:
    """The next sequence number and its predecessor's hash, holding the chain head until the transaction ends.

    The first record of a transaction locks the head row; later records of the same transaction
    still hold that lock, so they continue from what this transaction wrote without asking again.
    """
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_HELD_HEAD)
    if held is not None and held[0] is transaction:
        return held[1] + 1, held[2]
    head = (await conn.execute(_LOCK_HEAD)).first()
    if head is None:  # the migration seeds the head row; a missing one means a damaged database
        raise RuntimeError("audit chain head row is missing; run `atom-os db upgrade`")
    return int(head[0]), str(head[1])


async def record(
    *,
    session: AsyncSession,
    actor: Actor,
    action: str,
    resource_type: str | None = None,
    resource_id: str | None = None,
    decision: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> None:
    conn = await session.connection()
    seq, prev_hash = await _next_link(session, conn)
    content: dict[str, Any] = {
        "id": new_id(),
        "seq": seq,
        "created_at": utcnow(),
        "actor_type": actor.type,
        "actor_id": actor.id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "decision": decision,
        "reason": reason,
        "request_id": request_id or _current_request_id(),
        "details": details or {},
    }
    row_hash = link_hash(prev_hash, content)
    row = {**content, "prev_hash": prev_hash, "hash": row_hash}
    deferred = session.info.get(_DEFERRED)
    if deferred is not None:
        deferred.append(row)  # written with the others by `write_deferred`
    else:
        await conn.execute(_INSERT_EVENT, [row])
        await conn.execute(_MOVE_HEAD, {"seq": seq, "last_hash": row_hash})
    session.info[_HELD_HEAD] = (session.sync_session.get_transaction(), seq, row_hash)
    metrics.AUDIT_EVENTS.labels(action=action, decision=decision or "").inc()
    if action.startswith(NOTICE_PREFIXES):
        _notice_after_commit(session, action)


def defer_writes(session: AsyncSession) -> None:
    """Hold the rows this transaction appends from now on, to write them in one statement.

    For a transaction that appends many records (the workflow engine's group commit): each record is
    still linked to the one before as it is made (the head is locked by the first, as always);
    `write_deferred` must run before the commit; a session that rolls back must not be used again.
    Reads of the audit log in the same transaction would not see the held rows."""
    session.info[_DEFERRED] = []


async def write_deferred(session: AsyncSession) -> None:
    """Write the held rows (one INSERT for all, one move of the chain head) and stop holding."""
    rows = session.info.pop(_DEFERRED, None)
    if not rows:
        return
    conn = await session.connection()
    await conn.execute(_INSERT_EVENT, rows)
    await conn.execute(_MOVE_HEAD, {"seq": rows[-1]["seq"], "last_hash": rows[-1]["hash"]})


def _notice_after_commit(session: AsyncSession, action: str) -> None:
    transaction = session.sync_session.get_transaction()
    if session.info.get(_NOTICED) is transaction:
        return
    session.info[_NOTICED] = transaction
    payload = {"action": action}
    on_commit(session, lambda: get_bus().publish_soon(NOTICE_TOPIC, payload))


@dataclass(frozen=True)
class AuditFilter:
    actor_type: str | None = None
    actor_id: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_events(
    *, session: AsyncSession, filters: AuditFilter, limit: int, cursor: str | None
) -> tuple[list[AuditEvent], str | None]:
    stmt = select(AuditEvent)
    for column, value in (
        (AuditEvent.actor_type, filters.actor_type),
        (AuditEvent.actor_id, filters.actor_id),
        (AuditEvent.action, filters.action),
        (AuditEvent.resource_type, filters.resource_type),
        (AuditEvent.resource_id, filters.resource_id),
        (AuditEvent.decision, filters.decision),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if filters.since is not None:
        stmt = stmt.where(AuditEvent.created_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(AuditEvent.created_at < filters.until)
    return await paginate(session, stmt, id_column=AuditEvent.id, limit=limit, cursor=cursor)


def _row_content(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "seq": event.seq,
        "created_at": event.created_at,
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "decision": event.decision,
        "reason": event.reason,
        "request_id": event.request_id,
        "details": event.details,
    }


async def verify_chain(
    *, session: AsyncSession, checkpoints: checkpoint_store.CheckpointFile | None = None
) -> ChainVerification:
    """Walk the chain, then hold it against the signed checkpoints (a rewrite of the whole chain).

    The walk reports the first row whose position, link or content does not hold; every row is
    visited, including any an attacker gave a seq below 1, and it ends by comparing the chain head
    (count and last hash) with the last row, which catches a removed tail. A chain that holds
    together is then checked against every signed checkpoint (see `checkpoints.py`).
    """
    walked = await _walk(session)
    if not walked.ok or checkpoints is None:
        return walked
    if checkpoints.bad_lines:
        return walked.model_copy(
            update={
                "ok": False,
                "problem": f"checkpoint file lines {checkpoints.bad_lines[:10]} fail their signature "
                "(the checkpoint file was edited)",
            }
        )
    broken = await checkpoint_store.check(session=session, checkpoints=checkpoints.checkpoints)
    if broken is None:
        return walked.model_copy(update={"checkpoints_checked": len(checkpoints.checkpoints)})
    return walked.model_copy(
        update={
            "ok": False,
            "checkpoints_checked": len(checkpoints.checkpoints),
            "first_broken_seq": broken.checkpoint.seq,
            "broken_checkpoint": CheckpointRead(
                seq=broken.checkpoint.seq,
                hash=broken.checkpoint.hash,
                created_at=broken.checkpoint.created_at,
                line=broken.checkpoint.line,
            ),
            "problem": broken.problem,
        }
    )


def load_checkpoints(settings: Settings, extra: Path | None = None) -> checkpoint_store.CheckpointFile:
    """The data directory's checkpoints, plus those of an exported copy (`extra`) when given."""
    local = checkpoint_store.read(settings)
    if extra is None:
        return local
    if not extra.is_file():
        raise NotFound(f"No checkpoint file at {extra}.", code="CHECKPOINT_FILE_NOT_FOUND")
    copy = checkpoint_store.read(settings, extra)
    return checkpoint_store.CheckpointFile(
        checkpoints=local.checkpoints + copy.checkpoints,
        bad_lines=local.bad_lines + copy.bad_lines,
        other_databases=local.other_databases + copy.other_databases,
    )


async def verify_and_checkpoint(
    *, session: AsyncSession, settings: Settings, extra: Path | None = None
) -> tuple[ChainVerification, checkpoint_store.Checkpoint | None]:
    """Verify against every checkpoint; when the chain holds, sign its head as a new checkpoint."""
    result = await verify_chain(session=session, checkpoints=load_checkpoints(settings, extra))
    if not result.ok or result.head_seq == 0 or result.head_hash is None:
        return result, None
    return result, checkpoint_store.write(settings, seq=result.head_seq, row_hash=result.head_hash)


async def _walk(session: AsyncSession) -> ChainVerification:
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    after: int | None = None
    last_id: str | None = None
    while True:
        stmt = select(AuditEvent).order_by(AuditEvent.seq).limit(VERIFY_BATCH)
        if after is not None:
            stmt = stmt.where(AuditEvent.seq > after)
        batch = list((await session.scalars(stmt)).all())
        if not batch:
            break
        for event in batch:
            problem = _link_problem(event, expected_seq, expected_prev)
            if problem:
                return ChainVerification(
                    ok=False,
                    checked=checked,
                    first_broken_seq=event.seq,
                    first_broken_id=event.id,
                    problem=problem,
                )
            expected_prev = event.hash
            expected_seq = event.seq + 1
            last_id = event.id
            checked += 1
        after = batch[-1].seq
    last_seq = expected_seq - 1
    head = await session.get(AuditChainHead, 1)
    if head is None:
        return ChainVerification(
            ok=False,
            checked=checked,
            first_broken_seq=expected_seq,
            problem="the chain head row is missing (audit_chain_head was tampered with)",
        )
    if head.seq > last_seq:
        broken_at, problem = (
            last_seq + 1,
            f"chain head records {head.seq} rows but only {last_seq} are present (tail removed)",
        )
    elif head.seq < last_seq:
        broken_at, problem = (
            head.seq + 1,
            f"rows after seq {head.seq}, the chain head's last, were added outside the log",
        )
    elif head.last_hash != expected_prev:
        broken_at, problem = last_seq, "the last row's hash differs from the one the chain head recorded (row replaced)"
    else:
        return ChainVerification(ok=True, checked=checked, head_seq=last_seq, head_hash=head.last_hash)
    return ChainVerification(
        ok=False,
        checked=min(checked, broken_at - 1),
        first_broken_seq=broken_at,
        first_broken_id=last_id if broken_at == last_seq else None,
        problem=problem,
    )


def _link_problem(event: AuditEvent, expected_seq: int, expected_prev: str) -> str | None:
    if event.seq < expected_seq:
        return f"seq {event.seq} is outside the chain, which starts at 1 (row inserted)"
    if event.seq != expected_seq:
        return f"row {expected_seq} is missing (next row has seq {event.seq})"
    if event.prev_hash != expected_prev:
        return "prev_hash does not match the previous row's hash (row removed, reordered or edited)"
    if link_hash(event.prev_hash, _row_content(event)) != event.hash:
        return "content does not match its hash (row edited)"
    return None
