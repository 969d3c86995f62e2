"""Signed checkpoints of the audit chain's head, kept outside the database.

The hash chain proves each row follows the one before it, but someone who can write the database
can also rewrite the chain whole (delete the last rows and roll the head back, or edit a row and
re-chain everything after it) and it still verifies. A checkpoint anchors the chain outside the
database: `{seq, hash}` of a row, signed with an HMAC whose key never lives in the database (it
is derived, with its own label, from ATOM_SECRET_KEY or the key file `secret.key`), appended to
`<data_dir>/audit-checkpoints.jsonl` (mode 0600). Verification then checks every checkpoint of
this database against the rows: a row that no longer exists or no longer has the signed hash
names the checkpoint the rewrite broke. Copies of the file kept elsewhere (`atom-os audit
export-checkpoints`) can be checked the same way (`atom-os audit verify --checkpoints FILE`).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit.models import AuditChainHead, AuditEvent
from atom.config import Settings
from atom.db.base import utcnow
from atom.errors import ConfigurationError

FILE_NAME = "audit-checkpoints.jsonl"
KEY_LABEL = b"atom audit checkpoint key v1"
MAX_LINE_BYTES = 4096
LOOKUP_BATCH = 500


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    created_at: str
    database: str
    mac: str
    line: int = 0  # its line in the file it was read from (1-based), for messages

    def signed(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "created_at": self.created_at, "database": self.database}


@dataclass(frozen=True)
class CheckpointFile:
    """What a checkpoint file holds: this database's valid checkpoints and lines that failed their check."""

    checkpoints: list[Checkpoint]
    bad_lines: list[int]
    other_databases: int


@dataclass(frozen=True)
class Broken:
    checkpoint: Checkpoint
    problem: str


def path(settings: Settings) -> Path:
    return settings.data_dir / FILE_NAME


def _key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        material = settings.secret_key.get_secret_value().encode()
    else:
        try:
            material = settings.key_file.read_bytes().strip()
        except FileNotFoundError as exc:
            raise ConfigurationError(
                f"no secret key to sign audit checkpoints ({settings.key_file} is missing).",
                setting="ATOM_SECRET_KEY",
                fix="run `atom-os init` (it creates the key file) or set ATOM_SECRET_KEY.",
            ) from exc
    return hmac.new(material, KEY_LABEL, hashlib.sha256).digest()


def database_fingerprint(settings: Settings) -> str:
    """Which database a checkpoint belongs to: a digest of its URL without credentials."""
    parts = urlsplit(settings.resolved_database_url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    bare = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return hashlib.sha256(bare.encode()).hexdigest()[:32]


def _mac(key: bytes, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _parse(raw: str, number: int, key: bytes) -> Checkpoint | None:
    try:
        data = json.loads(raw)
        checkpoint = Checkpoint(
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            created_at=str(data["created_at"]),
            database=str(data["database"]),
            mac=str(data["mac"]),
            line=number,
        )
    except (ValueError, KeyError, TypeError):
        return None
    if not hmac.compare_digest(_mac(key, checkpoint.signed()), checkpoint.mac):
        return None
    return checkpoint


def read(settings: Settings, source: Path | None = None) -> CheckpointFile:
    """The checkpoints in `source` (default: the data directory's file); a missing file holds none."""
    key = _key(settings)
    fingerprint = database_fingerprint(settings)
    target = source or path(settings)
    try:
        lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return CheckpointFile([], [], 0)
    found: list[Checkpoint] = []
    bad: list[int] = []
    others = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        checkpoint = _parse(raw, number, key) if len(raw) <= MAX_LINE_BYTES else None
        if checkpoint is None:
            bad.append(number)
        elif checkpoint.database != fingerprint:
            others += 1
        else:
            found.append(checkpoint)
    return CheckpointFile(found, bad, others)


def write(settings: Settings, *, seq: int, row_hash: str) -> Checkpoint:
    """Append a signed checkpoint of row `seq` (unless the file's last one already says the same)."""
    key = _key(settings)
    created_at, database = utcnow().isoformat(), database_fingerprint(settings)
    content: dict[str, Any] = {"seq": seq, "hash": row_hash, "created_at": created_at, "database": database}
    target = path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # several processes (serve, CLI) append to the same file
        with os.fdopen(os.dup(fd), "r", encoding="utf-8", errors="replace") as reader:
            previous = [line for line in reader.read().splitlines() if line.strip()]
        last = _parse(previous[-1], len(previous), key) if previous else None
        if last is not None and (last.seq, last.hash, last.database) == (seq, row_hash, database):
            return last
        mac = _mac(key, content)
        os.write(fd, (json.dumps({**content, "mac": mac}, sort_keys=True, separators=(",", ":")) + "\n").encode())
        os.fsync(fd)
        return Checkpoint(
            seq=seq, hash=row_hash, created_at=created_at, database=database, mac=mac, line=len(previous) + 1
        )
    finally:
        os.close(fd)


async def check(*, session: AsyncSession, checkpoints: list[Checkpoint]) -> Broken | None:
    """The first checkpoint (lowest seq) the current rows contradict, or None when all hold."""
    ordered = sorted(checkpoints, key=lambda c: (c.seq, c.line))
    last_seq = (await session.scalar(select(AuditChainHead.seq).where(AuditChainHead.id == 1))) or 0
    for start in range(0, len(ordered), LOOKUP_BATCH):
        batch = ordered[start : start + LOOKUP_BATCH]
        rows = dict(
            (
                await session.execute(
                    select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq.in_({c.seq for c in batch}))
                )
            ).all()
        )
        for checkpoint in batch:
            stored = rows.get(checkpoint.seq)
            signed = f"checkpoint {checkpoint.created_at} (line {checkpoint.line}, seq {checkpoint.seq})"
            if stored is None:
                return Broken(
                    checkpoint,
                    f"{signed} signed a row that no longer exists: the chain now ends at seq {last_seq} "
                    "(rows deleted and the head rolled back)",
                )
            if stored != checkpoint.hash:
                return Broken(
                    checkpoint,
                    f"{signed} signed hash {checkpoint.hash[:16]}..., the row now has {stored[:16]}...: "
                    f"the chain was rewritten at or before seq {checkpoint.seq}",
                )
    return None


async def signable_head(*, session: AsyncSession) -> tuple[int, str] | None:
    """The chain head's (seq, hash) when the row it names holds that hash; None for an empty chain."""
    head = await session.get(AuditChainHead, 1)
    if head is None or head.seq == 0:
        return None
    stored = await session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == head.seq))
    if stored != head.last_hash:
        return None
    return head.seq, head.last_hash
