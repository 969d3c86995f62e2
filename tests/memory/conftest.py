"""Memory fixtures: the real local embedder (loaded once), a vector store in the test's data dir, a clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.memory.embedding import LocalEmbedder, Vectors
from atom.memory.runtime import Memory
from atom.memory.vectors import VectorStore
from tests.conftest import make_settings

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class TableEmbedder:
    """Vectors chosen by the test: each text maps to a given vector (unknown texts: a fixed one)."""

    table: dict[str, Vectors]
    dim: int = 8
    model_id: str = "test-table"

    async def embed(self, texts: Sequence[str]) -> Vectors:
        default = np.zeros(self.dim, dtype=np.float32)
        default[-1] = 1.0
        rows = [self.table.get(t.split("\n")[0], default) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)


@pytest.fixture(scope="session")
def local_embedder(tmp_path_factory: pytest.TempPathFactory) -> LocalEmbedder:
    return LocalEmbedder(make_settings(tmp_path_factory.mktemp("embedder"), None))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def memory(settings: Settings, db: Database, local_embedder: LocalEmbedder, clock: Clock) -> Memory:
    store = VectorStore(settings.data_dir / "memory.lance", local_embedder.dim)
    return Memory(settings=settings, embedder=local_embedder, store=store, clock=clock)
