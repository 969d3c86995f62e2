"""The cold store: one LanceDB row per episode (vector, text, agent, time, model id) in the data directory.

Vector search and LanceDB's native full-text (BM25) search both filter by agent, status and time
*before* ranking (`prefilter=True`). Calls are synchronous inside LanceDB; the async methods run them
in a worker thread so the event loop never blocks. Writes go through one lock per store.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from atom.memory.embedding import Vectors

TABLE = "episodes"
_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")


@dataclass(frozen=True)
class VectorRow:
    id: str
    agent_id: str
    ended_at: datetime
    status: str
    model_id: str
    text: str
    vector: Sequence[float]


@dataclass(frozen=True)
class Hit:
    id: str
    score: float  # cosine similarity for vector hits, BM25 for text hits


def _quote(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"not an id: {value!r}")
    return f"'{value}'"


def _filter(agent_id: str | None, since: datetime | None, statuses: Sequence[str], until: datetime | None) -> str:
    parts = []
    if agent_id is not None:
        parts.append(f"agent_id = {_quote(agent_id)}")
    if since is not None:
        parts.append(f"ended_ts >= {since.timestamp()!r}")
    if until is not None:
        parts.append(f"ended_ts <= {until.timestamp()!r}")
    if statuses:
        parts.append("status IN (" + ", ".join(_quote(s) for s in statuses) + ")")
    return " AND ".join(parts)


class VectorStore:
    def __init__(self, directory: Path, dim: int) -> None:
        # Imported here, not at module import: lancedb is heavy and every `atom-os` command imports this module.
        import lancedb
        import pyarrow as pa

        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.dim = dim
        # Every read sees the latest version: a CLI forget or another process's write is visible at once.
        self._db = lancedb.connect(str(directory), read_consistency_interval=timedelta(0))
        self._lock = threading.Lock()
        self._fts_ready = False
        schema = pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("agent_id", pa.string()),
                pa.field("ended_ts", pa.float64()),
                pa.field("status", pa.string()),
                pa.field("model_id", pa.string()),
                pa.field("text", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), dim)),
            ]
        )
        self._table = self._db.create_table(TABLE, schema=schema, exist_ok=True)
        field = self._table.schema.field("vector")
        width = getattr(field.type, "list_size", None)
        if width != dim:
            raise ValueError(f"the vector store at {directory} holds {width}-dim vectors, the embedder makes {dim}")

    # --- writes ------------------------------------------------------------------------------
    def _rows(self, rows: Sequence[VectorRow]) -> list[dict[str, Any]]:
        return [
            {
                "id": r.id,
                "agent_id": r.agent_id,
                "ended_ts": r.ended_at.timestamp(),
                "status": r.status,
                "model_id": r.model_id,
                "text": r.text,
                "vector": np.asarray(r.vector, dtype=np.float32),
            }
            for r in rows
        ]

    def upsert_sync(self, rows: Sequence[VectorRow]) -> None:
        if not rows:
            return
        with self._lock:
            self._table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(
                self._rows(rows)
            )
            self._ensure_fts()

    def _ensure_fts(self) -> None:
        if self._fts_ready:
            return
        from lancedb.index import FTS

        if "text" not in {col for index in self._table.list_indices() for col in index.columns}:
            self._table.create_index("text", config=FTS(), replace=True)  # rows added later are searched too
        self._fts_ready = True

    def optimize_sync(self) -> dict[str, Any]:
        """Compact, bring the full-text index up to date, and index the filter columns.

        Rows added after an index was built are still found (searched without the index), only slower;
        the maintenance job calls this.
        """
        from lancedb.index import FTS

        with self._lock:
            self._table.optimize()
            rows = self.count_sync()
            self._table.create_index("text", config=FTS(), replace=True)
            self._fts_ready = True
            indexed = {col for index in self._table.list_indices() for col in index.columns}
            for column in ("agent_id", "status"):
                if column not in indexed and rows:
                    self._table.create_scalar_index(column, index_type="BITMAP", replace=True)
            if "ended_ts" not in indexed and rows:
                self._table.create_scalar_index("ended_ts", replace=True)
            return {"rows": rows}

    def delete_sync(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                self._table.delete("id IN (" + ", ".join(_quote(i) for i in chunk) + ")")

    def set_status_sync(self, ids: Sequence[str], status: str) -> None:
        if not ids:
            return
        with self._lock:
            where = "id IN (" + ", ".join(_quote(i) for i in ids) + ")"
            self._table.update(where=where, values={"status": status})

    # --- reads -------------------------------------------------------------------------------
    def count_sync(self) -> int:
        return int(self._table.count_rows())

    def ids_sync(self, agent_id: str | None = None) -> set[str]:
        query = self._table.search().select(["id"]).limit(None)
        if agent_id is not None:
            query = query.where(f"agent_id = {_quote(agent_id)}")
        return {str(v) for v in query.to_arrow().column("id").to_pylist()}

    def vectors_sync(self, ids: Sequence[str]) -> dict[str, tuple[Vectors, str]]:
        """Vector and model id of each given episode that has one."""
        if not ids:
            return {}
        where = "id IN (" + ", ".join(_quote(i) for i in ids) + ")"
        table = self._table.search().where(where).select(["id", "vector", "model_id"]).limit(None).to_arrow()
        out: dict[str, tuple[Vectors, str]] = {}
        for id_, vector, model in zip(
            table.column("id").to_pylist(),
            table.column("vector").to_pylist(),
            table.column("model_id").to_pylist(),
            strict=True,
        ):
            out[str(id_)] = (np.asarray(vector, dtype=np.float32), str(model))
        return out

    def vector_search_sync(
        self,
        vector: Vectors,
        *,
        agent_id: str | None,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Sequence[str] = ("active",),
    ) -> list[Hit]:
        query = self._table.search(np.asarray(vector, dtype=np.float32)).distance_type("cosine")  # type: ignore[attr-defined]
        where = _filter(agent_id, since, statuses, until)
        if where:
            query = query.where(where, prefilter=True)
        rows = query.select(["id", "_distance"]).limit(limit).to_arrow()
        return [
            Hit(str(i), 1.0 - float(d))
            for i, d in zip(rows.column("id").to_pylist(), rows.column("_distance").to_pylist(), strict=True)
        ]

    def text_search_sync(
        self,
        text: str,
        *,
        agent_id: str | None,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Sequence[str] = ("active",),
    ) -> list[Hit]:
        terms = " ".join(re.findall(r"[\w-]+", text))[:1000]
        if not terms or self.count_sync() == 0:
            return []
        with self._lock:
            self._ensure_fts()
        query = self._table.search(terms, query_type="fts")
        where = _filter(agent_id, since, statuses, until)
        if where:
            query = query.where(where, prefilter=True)
        rows = query.select(["id", "_score"]).limit(limit).to_arrow()
        return [
            Hit(str(i), float(s))
            for i, s in zip(rows.column("id").to_pylist(), rows.column("_score").to_pylist(), strict=True)
        ]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())

    # --- async wrappers ------------------------------------------------------------------------
    async def upsert(self, rows: Sequence[VectorRow]) -> None:
        await asyncio.to_thread(self.upsert_sync, rows)

    async def optimize(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.optimize_sync)

    async def delete(self, ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_sync, list(ids))

    async def set_status(self, ids: Sequence[str], status: str) -> None:
        await asyncio.to_thread(self.set_status_sync, list(ids), status)

    async def ids(self, agent_id: str | None = None) -> set[str]:
        return await asyncio.to_thread(self.ids_sync, agent_id)

    async def vectors(self, ids: Sequence[str]) -> dict[str, tuple[Vectors, str]]:
        return await asyncio.to_thread(self.vectors_sync, list(ids))

    async def vector_search(self, vector: Vectors, **kwargs: Any) -> list[Hit]:
        return await asyncio.to_thread(lambda: self.vector_search_sync(vector, **kwargs))

    async def text_search(self, text: str, **kwargs: Any) -> list[Hit]:
        return await asyncio.to_thread(lambda: self.text_search_sync(text, **kwargs))
