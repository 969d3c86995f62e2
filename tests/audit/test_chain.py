"""The audit chain detects edits, deletions, reordering and truncation, and never forks."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select, text

from atom.audit import service as audit
from atom.audit.chain import link_hash
from atom.audit.models import AuditEvent
from atom.db.base import new_id, utcnow
from atom.db.session import Database
from tests.conftest import UserWithKey


async def _write(db: Database, count: int) -> None:
    for i in range(count):
        async with db.session_scope() as s:
            await audit.record(
                session=s,
                actor=audit.Actor.user(f"user-{i % 2}"),
                action="thing.do" if i % 2 else "thing.read",
                resource_type="thing",
                resource_id=f"t{i}",
                decision="allowed" if i % 3 else "denied",
                reason=f"because {i}",
                details={"n": i},
            )


async def _verify(db: Database) -> audit.ChainVerification:
    async with db.sessionmaker() as s:
        return await audit.verify_chain(session=s)


async def test_intact_chain_verifies(db: Database) -> None:
    await _write(db, 6)
    result = await _verify(db)
    assert result.ok and result.checked == 6


async def test_empty_chain_verifies(db: Database) -> None:
    result = await _verify(db)
    assert result.ok and result.checked == 0


async def test_edited_row_is_detected(db: Database) -> None:
    await _write(db, 6)
    async with db.session_scope() as s:
        await s.execute(text("UPDATE audit_events SET decision = 'tampered' WHERE seq = 3"))
    result = await _verify(db)
    assert not result.ok and result.first_broken_seq == 3
    assert "edited" in (result.problem or "")


async def test_edited_details_are_detected(db: Database) -> None:
    await _write(db, 4)
    async with db.sessionmaker() as s:
        row = (await s.scalars(select(AuditEvent).where(AuditEvent.seq == 2))).one()
        row.details = {"n": 999}
        await s.commit()
    result = await _verify(db)
    assert not result.ok and result.first_broken_seq == 2


async def test_deleted_row_is_detected(db: Database) -> None:
    await _write(db, 6)
    async with db.session_scope() as s:
        await s.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    result = await _verify(db)
    assert not result.ok and result.first_broken_seq == 5
    assert "missing" in (result.problem or "")


async def test_reordered_rows_are_detected(db: Database) -> None:
    await _write(db, 6)
    async with db.session_scope() as s:
        await s.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 2"))
        await s.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        await s.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = -1"))
    result = await _verify(db)
    assert not result.ok and result.first_broken_seq == 2


async def test_truncated_tail_is_detected(db: Database) -> None:
    await _write(db, 5)
    async with db.session_scope() as s:
        await s.execute(text("DELETE FROM audit_events WHERE seq = 5"))
    result = await _verify(db)
    assert not result.ok and result.first_broken_seq == 5
    assert "tail" in (result.problem or "")


async def test_rewritten_chain_with_recomputed_hash_still_breaks_the_next_link(db: Database) -> None:
    """An attacker who edits a row and recomputes its hash breaks the following row's prev_hash."""
    await _write(db, 5)

    async with db.sessionmaker() as s:
        row = (await s.scalars(select(AuditEvent).where(AuditEvent.seq == 2))).one()
        row.reason = "nothing to see"
        content = {c: getattr(row, c) for c in ("id", "seq", "created_at", "actor_type", "actor_id", "action")}
        content.update(
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            decision=row.decision,
            reason=row.reason,
            request_id=row.request_id,
            details=row.details,
        )
        row.hash = link_hash(row.prev_hash, content)
        await s.commit()
    result = await _verify(db)
    assert not result.ok and result.first_broken_seq == 3


@pytest.mark.parametrize("writers", [50])
async def test_concurrent_writers_never_fork_the_chain(db: Database, writers: int) -> None:
    async def one(i: int) -> None:
        async with db.session_scope() as s:
            await s.scalar(select(func.count()).select_from(AuditEvent))  # read first, as a request does
            await asyncio.sleep(0)
            await audit.record(session=s, actor=audit.Actor.system(), action="concurrent.write", details={"i": i})
            await asyncio.sleep(0)  # let other writers interleave inside the open transaction

    await asyncio.gather(*(one(i) for i in range(writers)))
    async with db.sessionmaker() as s:
        seqs = list((await s.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq))).all())
        distinct_prev = await s.scalar(select(func.count(func.distinct(AuditEvent.prev_hash))))
    assert seqs == list(range(1, writers + 1))
    assert distinct_prev == writers
    result = await _verify(db)
    assert result.ok and result.checked == writers


async def test_verify_and_list_over_http(client: httpx.AsyncClient, admin: UserWithKey, db: Database) -> None:
    await _write(db, 6)
    ok = await client.get("/api/audit/verify", headers=admin.headers)
    assert ok.json()["ok"] is True
    denied = await client.get("/api/audit?decision=denied", headers=admin.headers)
    assert {e["decision"] for e in denied.json()["items"]} == {"denied"}
    page1 = await client.get("/api/audit?limit=2&action=thing.read", headers=admin.headers)
    body1 = page1.json()
    assert len(body1["items"]) == 2 and body1["next_cursor"]
    page2 = await client.get(
        f"/api/audit?limit=2&action=thing.read&cursor={body1['next_cursor']}", headers=admin.headers
    )
    ids = [e["id"] for e in body1["items"]] + [e["id"] for e in page2.json()["items"]]
    assert len(ids) == len(set(ids))
    async with db.session_scope() as s:
        await s.execute(text("UPDATE audit_events SET actor_id = 'mallory' WHERE seq = 1"))
    broken = (await client.get("/api/audit/verify", headers=admin.headers)).json()
    assert broken["ok"] is False and broken["first_broken_seq"] == 1


async def test_naive_datetime_filter_is_422(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    response = await client.get("/api/audit?since=2026-01-01T00:00:00", headers=admin.headers)
    assert response.status_code == 422
    assert "query.since" in [f["field"] for f in response.json()["error"]["details"]["fields"]]
    aware = await client.get("/api/audit?since=2026-01-01T00:00:00Z", headers=admin.headers)
    assert aware.status_code == 200


async def _forge(db: Database, *, seq: int, prev_hash: str) -> str:
    """Insert a row the way an attacker with database access would: well-formed, hashed, but not appended by the log."""
    content = {
        "id": new_id(),
        "seq": seq,
        "created_at": utcnow(),
        "actor_type": "user",
        "actor_id": "mallory",
        "action": "thing.do",
        "resource_type": "thing",
        "resource_id": "t0",
        "decision": "allowed",
        "reason": "forged",
        "request_id": None,
        "details": {},
    }
    async with db.session_scope() as s:
        s.add(AuditEvent(**content, prev_hash=prev_hash, hash=link_hash(prev_hash, content)))
    return str(content["id"])


async def _hash_of(db: Database, seq: int) -> str:
    async with db.sessionmaker() as s:
        return str((await s.scalars(select(AuditEvent.hash).where(AuditEvent.seq == seq))).one())


async def test_row_inserted_before_the_first_is_detected(db: Database) -> None:
    await _write(db, 3)
    forged = await _forge(db, seq=0, prev_hash="f" * 64)
    result = await _verify(db)
    assert not result.ok and result.first_broken_seq == 0 and result.first_broken_id == forged


async def test_rows_appended_outside_the_log_are_detected(db: Database) -> None:
    await _write(db, 4)
    await _forge(db, seq=5, prev_hash=await _hash_of(db, 4))  # links correctly, but the head never saw it
    result = await _verify(db)
    assert not result.ok and result.first_broken_seq == 5 and result.checked == 4


async def test_replaced_last_row_is_detected(db: Database) -> None:
    await _write(db, 4)
    prev = await _hash_of(db, 3)
    async with db.session_scope() as s:
        await s.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    forged = await _forge(db, seq=4, prev_hash=prev)
    result = await _verify(db)
    assert not result.ok and result.first_broken_seq == 4 and result.first_broken_id == forged
    assert "replaced" in (result.problem or "")


async def test_deleted_chain_head_is_detected(db: Database) -> None:
    await _write(db, 2)
    async with db.session_scope() as s:
        await s.execute(text("DELETE FROM audit_chain_head"))
    result = await _verify(db)
    assert not result.ok and "head" in (result.problem or "")


async def test_listing_filters_combine_and_pages_walk_every_row_once(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database
) -> None:
    before = utcnow()
    await _write(db, 9)
    after = utcnow()

    async def listed(query: str) -> list[dict[str, object]]:
        items: list[dict[str, object]] = []
        cursor = None
        while True:
            url = f"/api/audit?limit=2&{query}" + (f"&cursor={cursor}" if cursor else "")
            response = await client.get(url, headers=admin.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= 2
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    everything = await listed("actor_type=user")
    assert [e["seq"] for e in everything] == list(range(9, 0, -1))  # newest first, each row once
    assert {e["resource_id"] for e in await listed("resource_id=t4")} == {"t4"}
    assert [e["seq"] for e in await listed("actor_id=user-1&decision=denied")] == [4]
    assert [e["seq"] for e in await listed("actor_id=user-0&action=thing.read&decision=allowed")] == [9, 5, 3]
    since = before.isoformat().replace("+00:00", "Z")
    until = after.isoformat().replace("+00:00", "Z")
    assert len(await listed(f"since={since}&until={until}")) == 9
    assert await listed(f"since={until}") == []
    assert await listed(f"until={since}") == []
    too_long = await client.get("/api/audit?action=" + "x" * 101, headers=admin.headers)
    assert too_long.status_code == 422
