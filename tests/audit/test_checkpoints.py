"""Signed checkpoints catch what the chain alone cannot: a chain rewritten whole.

The two tampers below pass the hash chain's own walk (asserted first); the checkpoints signed
before them must make verification fail and name the checkpoint the rewrite broke.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import httpx
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from atom.audit import checkpoints
from atom.audit import service as audit
from atom.audit.chain import link_hash
from atom.audit.models import AuditChainHead, AuditEvent
from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database
from tests.audit.test_chain import _write
from tests.conftest import UserWithKey

runner = CliRunner()


async def _sign(db: Database, settings: Settings) -> checkpoints.Checkpoint:
    async with db.sessionmaker() as s:
        result, written = await audit.verify_and_checkpoint(session=s, settings=settings)
    assert result.ok and written is not None
    return written


async def _verify(db: Database, settings: Settings) -> audit.ChainVerification:
    async with db.sessionmaker() as s:
        return await audit.verify_chain(session=s, checkpoints=audit.load_checkpoints(settings))


async def _walk_only(db: Database) -> audit.ChainVerification:
    async with db.sessionmaker() as s:
        return await audit.verify_chain(session=s)


async def _roll_back_tail(db: Database, keep: int) -> None:
    """Delete every row after `keep` and move the head back to it: the chain stays self-consistent."""
    async with db.session_scope() as s:
        last_hash = (await s.scalars(select(AuditEvent.hash).where(AuditEvent.seq == keep))).one()
        await s.execute(text("DELETE FROM audit_events WHERE seq > :k"), {"k": keep})
        await s.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(seq=keep, last_hash=last_hash))


async def _edit_and_rechain(db: Database, seq: int) -> None:
    """Edit row `seq`, then recompute its hash and every later row's links and hashes, and the head."""
    async with db.session_scope() as s:
        rows = list((await s.scalars(select(AuditEvent).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq))).all())
        rows[0].reason = "nothing to see here"
        prev = rows[0].prev_hash
        for row in rows:
            row.prev_hash = prev
            row.hash = link_hash(prev, audit._row_content(row))
            prev = row.hash
            await s.flush()
        await s.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(last_hash=prev))


async def test_deleting_the_last_rows_and_rolling_back_the_head_breaks_a_checkpoint(
    db: Database, settings: Settings
) -> None:
    await _write(db, 6)
    signed = await _sign(db, settings)
    assert (signed.seq, (await _verify(db, settings)).ok) == (6, True)
    await _roll_back_tail(db, keep=4)
    assert (await _walk_only(db)).ok  # the chain by itself cannot tell
    result = await _verify(db, settings)
    assert not result.ok and result.broken_checkpoint is not None
    assert (result.broken_checkpoint.seq, result.broken_checkpoint.line) == (6, 1)
    assert "no longer exists" in (result.problem or "") and "ends at seq 4" in (result.problem or "")


async def test_editing_a_row_and_rechaining_after_it_breaks_the_first_checkpoint_at_or_after_it(
    db: Database, settings: Settings
) -> None:
    await _write(db, 3)
    first = await _sign(db, settings)
    await _write(db, 3)
    second = await _sign(db, settings)
    assert (first.seq, second.seq) == (3, 6)
    await _edit_and_rechain(db, seq=5)
    assert (await _walk_only(db)).ok  # the chain by itself cannot tell
    result = await _verify(db, settings)
    assert not result.ok and result.broken_checkpoint is not None
    assert (result.broken_checkpoint.seq, result.broken_checkpoint.line) == (6, 2)  # seq 3 still holds
    assert "rewritten at or before seq 6" in (result.problem or "")
    await _edit_and_rechain(db, seq=2)
    earlier = await _verify(db, settings)
    assert earlier.broken_checkpoint is not None and earlier.broken_checkpoint.seq == 3


async def test_checkpoints_are_signed_outside_the_database_and_the_file_is_private(
    db: Database, settings: Settings
) -> None:
    await _write(db, 2)
    await _sign(db, settings)
    await _sign(db, settings)  # the same head again: not repeated
    file = checkpoints.path(settings)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    lines = file.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["seq"] == 2
    # a forged line (the seq moved back to hide a rollback) fails its signature
    forged = json.loads(lines[0]) | {"seq": 1}
    file.write_text(lines[0] + "\n" + json.dumps(forged) + "\n")
    result = await _verify(db, settings)
    assert not result.ok and "line" in (result.problem or "") and "[2]" in (result.problem or "")
    # signed with another secret key, even a genuine line does not verify
    other = settings.model_copy(update={"secret_key": None, "data_dir": settings.data_dir})
    (settings.data_dir / "secret.key").write_bytes(b"another key, not the one that signed")
    file.write_text(lines[0] + "\n")
    assert checkpoints.read(other).bad_lines == [1]
    assert checkpoints.read(settings).checkpoints[0].seq == 2


async def test_verify_over_http_names_the_broken_checkpoint(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings
) -> None:
    await _write(db, 5)
    signed = await client.post("/api/audit/checkpoints", headers=admin.headers)
    assert signed.status_code == 201 and signed.json()["seq"] >= 5
    exported = (await client.get("/api/audit/checkpoints", headers=admin.headers)).json()
    assert exported[-1]["seq"] == signed.json()["seq"] and len(exported[-1]["mac"]) == 64
    assert (await client.get("/api/audit/verify", headers=admin.headers)).json()["checkpoints_checked"] >= 1
    await _roll_back_tail(db, keep=3)
    body = (await client.get("/api/audit/verify", headers=admin.headers)).json()
    assert body["ok"] is False and body["broken_checkpoint"]["seq"] == signed.json()["seq"]
    refused = await client.post("/api/audit/checkpoints", headers=admin.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "AUDIT_CHAIN_BROKEN"


def _cli_env(settings: Settings) -> dict[str, str]:
    env = {"ATOM_DATA_DIR": str(settings.data_dir), "COLUMNS": "300"}
    if settings.secret_key is not None:
        env["ATOM_SECRET_KEY"] = settings.secret_key.get_secret_value()
    if settings.database_url:
        env["ATOM_DATABASE_URL"] = settings.database_url
    return env


async def test_cli_verify_signs_then_catches_a_rollback_also_from_an_exported_copy(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    await _write(db, 4)
    env = _cli_env(settings)
    copy = tmp_path / "offsite.jsonl"

    def before_tamper() -> None:
        done = runner.invoke(cli, ["audit", "verify"], env=env)
        assert done.exit_code == 0 and "Chain head seq 4 signed" in done.output, done.output
        done = runner.invoke(cli, ["audit", "export-checkpoints", "--out", str(copy)], env=env)
        assert done.exit_code == 0 and stat.S_IMODE(os.stat(copy).st_mode) == 0o600

    await asyncio.to_thread(before_tamper)
    await _roll_back_tail(db, keep=2)
    checkpoints.path(settings).unlink()  # the attacker removes the local checkpoints too

    def after_tamper() -> None:
        done = runner.invoke(cli, ["audit", "verify", "--checkpoints", str(copy)], env=env)
        assert done.exit_code == 1, done.output
        said = " ".join(done.output.split())
        assert "seq 4" in said and "no longer exists" in said and "rewritten" in said
        done = runner.invoke(cli, ["audit", "checkpoint"], env=env)
        assert done.exit_code == 0  # without the copy the local view is consistent again: a new checkpoint

    await asyncio.to_thread(after_tamper)
