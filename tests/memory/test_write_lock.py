"""Ingestion embeds and writes vectors before its transaction writes: other writers are never held up.

On SQLite a transaction's first write takes the database's write lock until its commit. An embedding
(a model run) or the vector store's file writes under that lock made every other writer of the
process wait, past their busy timeout on a loaded machine ("database is locked" on a chat start).
An embedder and a vector store that, each time they are called, try to take the write lock from a
connection of their own show whether the ingestion holds it then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from atom.chat.models import AgentExecution, ChatSession
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.memory import ingest
from atom.memory.embedding import Embedder, Vectors
from atom.memory.runtime import Memory
from atom.memory.vectors import VectorRow, VectorStore
from tests.support.agents import make_agent
from tests.support.sqlite_lock import write_lock_is_free


@dataclass
class LockProbe:
    path: Path
    seen: list[tuple[str, bool]] = field(default_factory=list)  # (where, the write lock was free)

    async def check(self, where: str) -> None:
        self.seen.append((where, await write_lock_is_free(self.path)))


@dataclass
class ProbedEmbedder:
    inner: Embedder
    probe: LockProbe

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    async def embed(self, texts: Sequence[str]) -> Vectors:
        await self.probe.check("embed")
        return await self.inner.embed(texts)


class ProbedStore(VectorStore):
    probe: LockProbe

    async def insert(self, rows: Sequence[VectorRow]) -> None:
        await self.probe.check("insert")
        await super().insert(rows)

    async def upsert(self, rows: Sequence[VectorRow]) -> None:
        await self.probe.check("upsert")
        await super().upsert(rows)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_ingestion_holds_no_write_lock_while_it_embeds(settings: Settings, db: Database, memory: Memory) -> None:
    agent = await make_agent(db, settings)
    async with db.session_scope() as s:
        chat = ChatSession(agent_id=agent.id, user_id="u1", title="billing")
        s.add(chat)
        await s.flush()
        for n in range(3):  # three turns of one conversation: new episodes, then segments added to one
            started = utcnow()
            s.add(
                AgentExecution(
                    agent_id=agent.id,
                    session_id=chat.id,
                    user_id="u1",
                    input=f"Is invoice INV-50{n} paid?",
                    output=f"INV-50{n} is paid.",
                    status="completed",
                    trigger="chat",
                    trigger_kind="manual",
                    started_at=started,
                    finished_at=started,
                )
            )
            await s.flush()
    probe = LockProbe(settings.data_dir / "atom.db")
    store = ProbedStore(settings.data_dir / "probed.lance", memory.embedder.dim)
    store.probe = probe
    probed = Memory(settings=settings, embedder=ProbedEmbedder(memory.embedder, probe), store=store, clock=memory.clock)
    for source in ingest.SOURCES:
        async with db.session_scope() as s:
            await ingest.ingest_source(session=s, memory=probed, source=source)
    assert {where for where, _ in probe.seen} >= {"embed", "insert"}
    assert [where for where, free in probe.seen if not free] == []
