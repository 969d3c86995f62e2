"""The cold store: one LanceDB row per episode (vector, text, agent, time, model id) in the data directory.

Searches of one agent go to the in-process index (`hot_index.py`): the agent's rows read once from
LanceDB, then kept up to date with this store's own writes. Each search first reads the table's
version (a manifest check): if another process wrote since, the indexes are read again, so every
search sees the latest rows. Without an index (an agent above ATOM_MEMORY_INDEX_MAX_ROWS, or 0) the
search is LanceDB's: a flat vector scan and its native full-text (BM25) search, both filtered by
agent, status and time *before* ranking (`prefilter=True`).

New episodes are appended (`add`, no join against the table); changed ones go through
`merge_insert`. Calls are synchronous inside LanceDB; the async methods run them in a worker thread
so the event loop never blocks. Writes go through one lock per store.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from atom.memory.embedding import Vectors
from atom.memory.hot_index import AgentIndex, HotIndex, Ranked
from atom.memory.lance_search import Hit, id_list, quote, text_search, vector_search, where_clause

TABLE = "episodes"
DEFAULT_INDEX_ROWS = 200_000
# Old table versions kept by compaction: long enough for any read in flight in another process.
KEEP_VERSIONS = timedelta(minutes=10)


@dataclass(frozen=True)
class VectorRow:
    id: str
    agent_id: str
    ended_at: datetime
    status: str
    model_id: str
    text: str
    vector: Sequence[float]


def _hits(ranked: Ranked) -> list[Hit]:
    return [Hit(i, s) for i, s in ranked]


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


class VectorStore:
    def __init__(self, directory: Path, dim: int, index_rows: int = DEFAULT_INDEX_ROWS) -> None:
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
        self._hot = HotIndex(index_rows) if index_rows > 0 else None
        self._stop_warming = threading.Event()
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
        """Write rows, replacing those with the same id."""
        if not rows:
            return
        with self._lock:
            merge = self._table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
            self._wrote(merge.execute(self._rows(rows)).version, lambda hot: self._put(hot, rows))
            self._ensure_fts()

    def insert_sync(self, rows: Sequence[VectorRow]) -> None:
        """Append rows of new episodes (ids not in the table yet): no join against the existing rows."""
        if not rows:
            return
        with self._lock:
            self._wrote(self._table.add(self._rows(rows)).version, lambda hot: self._put(hot, rows))
            self._ensure_fts()

    @staticmethod
    def _put(hot: HotIndex, rows: Sequence[VectorRow]) -> None:
        for r in rows:
            hot.put(r.agent_id, r.id, r.ended_at.timestamp(), r.status, r.text, r.vector)
        hot.settle()

    def _wrote(self, version: int, apply: Any) -> None:
        """After one commit of ours (lock held): the indexes follow it if it came right after the version
        they agree with; otherwise another process wrote in between and they are read again when next used."""
        hot = self._hot
        if hot is None:
            return
        if hot.version is not None and version == hot.version + 1:
            apply(hot)
            hot.version = version
        else:
            hot.reset(None)

    def _ensure_fts(self) -> None:
        if self._fts_ready:
            return
        from lancedb.index import FTS

        if "text" not in {col for index in self._table.list_indices() for col in index.columns}:
            self._table.create_index("text", config=FTS(), replace=True)  # rows added later are searched too
        self._fts_ready = True

    def optimize_sync(self, keep_versions: timedelta = KEEP_VERSIONS) -> dict[str, Any]:
        """Compact, drop table versions older than `keep_versions`, bring the full-text index up to date,
        index the filter columns, and read the in-process indexes held before again (the table moved on
        several versions). The maintenance job calls this.

        Rows added after LanceDB's indexes were built are still found (searched without them), only slower.
        """
        from lancedb.index import FTS, Bitmap, BTree

        with self._lock:
            held = self._hot.agents() if self._hot is not None else []
            self._table.optimize(cleanup_older_than=keep_versions)
            rows = self.count_sync()
            self._table.create_index("text", config=FTS(), replace=True)
            self._fts_ready = True
            indexed = {col for index in self._table.list_indices() for col in index.columns}
            configs: dict[str, Any] = {"agent_id": Bitmap(), "status": Bitmap(), "ended_ts": BTree()}
            for column, config in configs.items():
                if column not in indexed and rows:
                    self._table.create_index(column, config=config, replace=True)
            if self._hot is not None:
                self._hot.reset(self._table.version)
            report = {"rows": rows, "versions": len(self._table.list_versions())}
        for agent_id in held:  # one agent at a time: searches go on meanwhile
            with self._lock:
                self._current(agent_id)
        return report

    def delete_sync(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                result = self._table.delete(id_list(chunk))
                self._wrote(result.version, lambda hot, chunk=chunk: hot.remove(chunk))

    def set_status_sync(self, ids: Sequence[str], status: str) -> None:
        if not ids:
            return
        with self._lock:
            result = self._table.update(where=id_list(ids), values={"status": status})
            self._wrote(result.version, lambda hot: hot.set_status(ids, status))

    # --- reads -------------------------------------------------------------------------------
    def count_sync(self) -> int:
        return int(self._table.count_rows())

    def ids_sync(self, agent_id: str | None = None) -> set[str]:
        query = self._table.search().select(["id"]).limit(None)
        if agent_id is not None:
            query = query.where(f"agent_id = {quote(agent_id)}")
        return {str(v) for v in query.to_arrow().column("id").to_pylist()}

    def vectors_sync(self, ids: Sequence[str]) -> dict[str, tuple[Vectors, str]]:
        """Vector and model id of each given episode that has one."""
        if not ids:
            return {}
        table = self._table.search().where(id_list(ids)).select(["id", "vector", "model_id"]).limit(None).to_arrow()
        out: dict[str, tuple[Vectors, str]] = {}
        for id_, vector, model in zip(
            table.column("id").to_pylist(),
            table.column("vector").to_pylist(),
            table.column("model_id").to_pylist(),
            strict=True,
        ):
            out[str(id_)] = (np.asarray(vector, dtype=np.float32), str(model))
        return out

    def agent_vectors_sync(self, agent_id: str, ids: Sequence[str]) -> dict[str, Vectors]:
        """The normalised vectors of some of one agent's episodes (those that have one)."""
        with self._lock:
            index = self._current(agent_id)
            if index is not None:
                return {i: v for i in ids if (v := index.vector(i)) is not None}
        found = self.vectors_sync(ids)
        return {i: v / (float(np.linalg.norm(v)) or 1.0) for i, (v, _model) in found.items()}

    # --- search: the in-process index when the agent's rows fit, else LanceDB -------------------
    def _current(self, agent_id: str | None) -> AgentIndex | None:
        """The agent's index, agreeing with the table's latest version (lock held); None: search LanceDB."""
        hot = self._hot
        if hot is None or agent_id is None:
            return None
        version = self._table.version  # read before the rows: a write racing the load only forces another load
        if version != hot.version:
            hot.reset(version)
        return self._index_for(agent_id)

    def _index_for(self, agent_id: str) -> AgentIndex | None:
        hot = self._hot
        assert hot is not None
        index = hot.get(agent_id)
        if index is not None:
            return index
        where = f"agent_id = {quote(agent_id)}"
        if not hot.fits(self._table.count_rows(where)):
            return None
        columns = ["id", "ended_ts", "status", "text", "vector"]
        table = self._table.search().where(where).select(columns).limit(None).to_arrow()
        vectors = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        ids, ended, statuses, texts = (table.column(c).to_pylist() for c in columns[:4])
        index = AgentIndex.build(self.dim, ids, ended, statuses, texts, vectors.reshape(-1, self.dim))
        hot.keep(agent_id, index)
        hot.loads += 1
        return index

    def search_sync(
        self,
        vector: Vectors | None,
        text: str | None,
        *,
        agent_id: str | None,
        limit: int,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Sequence[str] = ("active",),
    ) -> tuple[list[Hit], list[Hit]]:
        """Vector hits and full-text hits of one query (each if asked for), both filtered first: one
        thread hop and one version check for both."""
        with self._lock:
            index = self._current(agent_id)
            if index is not None:
                by_vector, by_text = index.search(vector, text, limit, _ts(since), _ts(until), statuses)
                return _hits(by_vector), _hits(by_text)
        where = where_clause(agent_id, since, until, statuses)
        vector_hits = vector_search(self._table, vector, limit, where) if vector is not None else []
        if text is None or self.count_sync() == 0:
            return vector_hits, []
        with self._lock:
            self._ensure_fts()
        return vector_hits, text_search(self._table, text, limit, where)

    def vector_search_sync(self, vector: Vectors, **kwargs: Any) -> list[Hit]:
        return self.search_sync(vector, None, **kwargs)[0]

    def text_search_sync(self, text: str, **kwargs: Any) -> list[Hit]:
        return self.search_sync(None, text, **kwargs)[1]

    def warm_sync(self) -> int:
        """Read agents into the in-process index, those with most rows first, as many as fit; how many were read.
        The server does this in the background at start-up, so first searches need not."""
        if self._hot is None:
            return 0
        column = self._table.search().select(["agent_id"]).limit(None).to_arrow().column("agent_id")
        loaded = 0
        for agent_id, rows in Counter(column.to_pylist()).most_common():
            if self._stop_warming.is_set():
                break
            with self._lock:  # one agent at a time: searches go on meanwhile
                if self._hot.rows + rows <= self._hot.max_rows and self._current(str(agent_id)) is not None:
                    loaded += 1
        return loaded

    def stop_warming(self) -> None:
        self._stop_warming.set()

    def index_rows(self) -> int:
        """Rows held by the in-process indexes."""
        with self._lock:
            return self._hot.rows if self._hot is not None else 0

    def index_bytes(self) -> int:
        with self._lock:
            return self._hot.nbytes if self._hot is not None else 0

    def index_loads(self) -> int:
        """How many times an agent's rows were read from LanceDB into the in-process index."""
        with self._lock:
            return self._hot.loads if self._hot is not None else 0

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())

    # --- async wrappers ------------------------------------------------------------------------
    async def upsert(self, rows: Sequence[VectorRow]) -> None:
        await asyncio.to_thread(self.upsert_sync, rows)

    async def insert(self, rows: Sequence[VectorRow]) -> None:
        await asyncio.to_thread(self.insert_sync, rows)

    async def warm(self) -> int:
        return await asyncio.to_thread(self.warm_sync)

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

    async def agent_vectors(self, agent_id: str, ids: Sequence[str]) -> dict[str, Vectors]:
        return await asyncio.to_thread(self.agent_vectors_sync, agent_id, list(ids))

    async def search(self, vector: Vectors | None, text: str | None, **kwargs: Any) -> tuple[list[Hit], list[Hit]]:
        return await asyncio.to_thread(lambda: self.search_sync(vector, text, **kwargs))

    async def vector_search(self, vector: Vectors, **kwargs: Any) -> list[Hit]:
        return await asyncio.to_thread(lambda: self.vector_search_sync(vector, **kwargs))

    async def text_search(self, text: str, **kwargs: Any) -> list[Hit]:
        return await asyncio.to_thread(lambda: self.text_search_sync(text, **kwargs))
