"""An in-process search index over the cold store, per agent: what makes semantic retrieval fast.

For each agent searched, its LanceDB rows are read once into memory: the vectors as one normalised
float32 matrix, the end times and statuses as arrays, and BM25 postings of the texts
(`text_rank.py`). A search filters by status and time window first (a mask), then ranks: an exact
cosine scan (a matrix product, the same ranking as LanceDB's flat scan) and BM25. LanceDB stays the
store of record; the vector store applies its own writes here as it makes them.

Agents are kept least recently used first, bounded by a total number of rows
(ATOM_MEMORY_INDEX_MAX_ROWS); an agent with more rows than that is searched in LanceDB instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from atom.memory.text_rank import TextRank

Ranked = list[tuple[str, float]]
_STATUS: dict[str, int] = {}  # status -> small code, shared by every index of the process


def _code(status: str) -> int:
    return _STATUS.setdefault(status, len(_STATUS))


def _top(rows: npt.NDArray[np.int64], scores: npt.NDArray[np.float64], limit: int) -> list[int]:
    """Positions (into `rows`) of the `limit` highest scores, best first; ties by row (oldest write first)."""
    keep = np.argpartition(-scores, limit - 1)[:limit] if len(rows) > limit else np.arange(len(rows))
    order = np.lexsort((rows[keep], -scores[keep]))
    return [int(i) for i in keep[order]]


class AgentIndex:
    """One agent's rows. A replaced or removed row stays in place, marked dead, until the index is rebuilt."""

    def __init__(self, dim: int, capacity: int = 64) -> None:
        self.dim = dim
        self._vectors = np.zeros((capacity, dim), dtype=np.float32)
        self._ended = np.zeros(capacity, dtype=np.float64)
        self._status = np.zeros(capacity, dtype=np.int16)
        self._live = np.zeros(capacity, dtype=np.bool_)
        self._ids: list[str] = []
        self._row_of: dict[str, int] = {}
        self._text = TextRank()
        self.dead = 0

    @classmethod
    def build(
        cls,
        dim: int,
        ids: Sequence[str],
        ended_ts: Sequence[float],
        statuses: Sequence[str],
        texts: Sequence[str],
        vectors: npt.NDArray[np.float32],
    ) -> AgentIndex:
        """An index of rows read from the cold store, in one go."""
        n = len(ids)
        index = cls(dim, capacity=max(64, n))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        index._vectors[:n] = vectors / norms
        index._ended[:n] = ended_ts
        index._status[:n] = [_code(s) for s in statuses]
        index._live[:n] = True
        index._ids = list(ids)
        for row, episode_id in enumerate(ids):
            if episode_id in index._row_of:  # never written twice, but if so the later row counts
                index._live[index._row_of[episode_id]] = False
                index.dead += 1
            index._row_of[episode_id] = row
        for row, text in enumerate(texts):
            index._text.add(row, text)
        return index

    @property
    def rows(self) -> int:
        """Rows held, dead ones included (what the memory bound counts)."""
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        """About how much memory the index takes (ids and their dict entries estimated at 150 bytes a row)."""
        arrays = sum(a.nbytes for a in (self._vectors, self._ended, self._status, self._live))
        return arrays + self._text.nbytes + 150 * len(self._ids)

    def __contains__(self, episode_id: object) -> bool:
        return episode_id in self._row_of

    def _grow(self) -> None:
        capacity = max(64, 2 * len(self._live))
        for name in ("_vectors", "_ended", "_status", "_live"):
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def put(self, episode_id: str, ended_ts: float, status: str, text: str, vector: npt.ArrayLike) -> None:
        self.remove(episode_id)
        row = len(self._ids)
        if row == len(self._live):
            self._grow()
        values = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(values))
        self._vectors[row] = values / norm if norm > 0 else values
        self._ended[row] = ended_ts
        self._status[row] = _code(status)
        self._live[row] = True
        self._ids.append(episode_id)
        self._row_of[episode_id] = row
        self._text.add(row, text)

    def remove(self, episode_id: str) -> bool:
        row = self._row_of.pop(episode_id, None)
        if row is None:
            return False
        self._live[row] = False
        self.dead += 1
        return True

    def set_status(self, episode_id: str, status: str) -> bool:
        row = self._row_of.get(episode_id)
        if row is None:
            return False
        self._status[row] = _code(status)
        return True

    def ids(self) -> list[str]:
        return list(self._row_of)

    def vector(self, episode_id: str) -> npt.NDArray[np.float32] | None:
        row = self._row_of.get(episode_id)
        return None if row is None else self._vectors[row].copy()

    def _mask(self, since: float | None, until: float | None, statuses: Sequence[str]) -> npt.NDArray[np.bool_]:
        n = len(self._ids)
        mask = self._live[:n].copy()
        if len(statuses) == 1:
            mask &= self._status[:n] == _code(statuses[0])
        elif statuses:
            mask &= np.isin(self._status[:n], [_code(s) for s in statuses])
        if since is not None:
            mask &= self._ended[:n] >= since
        if until is not None:
            mask &= self._ended[:n] <= until
        return mask

    def search(
        self,
        vector: npt.ArrayLike | None,
        text: str | None,
        limit: int,
        since: float | None,
        until: float | None,
        statuses: Sequence[str],
    ) -> tuple[Ranked, Ranked]:
        """The exact cosine top `limit` and the BM25 top `limit` among the rows passing the filter
        (status, end time between `since` and `until`), each computed if asked for."""
        mask = self._mask(since, until, statuses)
        by_vector = self._nearest(vector, limit, mask) if vector is not None else []
        return by_vector, self._matches(text, limit, mask) if text is not None else []

    def _nearest(self, vector: npt.ArrayLike, limit: int, mask: npt.NDArray[np.bool_]) -> Ranked:
        rows = np.flatnonzero(mask)
        if len(rows) == 0 or limit <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        if norm > 0:
            query = query / norm
        n = len(self._ids)
        # The whole matrix times the query costs less than gathering the rows that pass the filter first.
        # einsum runs numpy's own single-threaded loop: BLAS's threaded matrix-vector product is as fast
        # on an idle machine with two cores, and several times slower on a busy one.
        scores = np.einsum("ij,j->i", self._vectors[:n], query)[rows].astype(np.float64)
        return [(self._ids[int(rows[i])], float(scores[i])) for i in _top(rows, scores, limit)]

    def _matches(self, text: str, limit: int, mask: npt.NDArray[np.bool_]) -> Ranked:
        if limit <= 0:
            return []
        rows, scores = self._text.scores(text, mask)
        return [(self._ids[int(rows[i])], float(scores[i])) for i in _top(rows, scores, limit)]


class HotIndex:
    """The agents' indexes, least recently used first, holding at most `max_rows` rows in all.

    `version` is the LanceDB table version the indexes agree with; the vector store resets them when
    the table moved on without them (another process wrote).
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.version: int | None = None
        self.loads = 0  # agents read from LanceDB (after a start, another process's write, a maintenance run)
        self._agents: OrderedDict[str, AgentIndex] = OrderedDict()

    @property
    def rows(self) -> int:
        return sum(index.rows for index in self._agents.values())

    @property
    def nbytes(self) -> int:
        return sum(index.nbytes for index in self._agents.values())

    def agents(self) -> list[str]:
        return list(self._agents)

    def reset(self, version: int | None) -> None:
        self._agents.clear()
        self.version = version

    def get(self, agent_id: str) -> AgentIndex | None:
        index = self._agents.get(agent_id)
        if index is not None:
            self._agents.move_to_end(agent_id)
        return index

    def fits(self, rows: int) -> bool:
        return rows <= self.max_rows

    def keep(self, agent_id: str, index: AgentIndex) -> None:
        self._agents[agent_id] = index
        self._agents.move_to_end(agent_id)
        self._evict()

    def _evict(self) -> None:
        total = self.rows
        for agent_id in list(self._agents):
            index = self._agents[agent_id]
            # Too big, or full of dead rows: dropped, read again from LanceDB when next searched.
            if total > self.max_rows or index.dead > max(1000, index.rows // 4):
                del self._agents[agent_id]
                total -= index.rows

    def put(
        self, agent_id: str, episode_id: str, ended_ts: float, status: str, text: str, vector: npt.ArrayLike
    ) -> None:
        """A row written to LanceDB; only agents already held are updated (others are read when searched)."""
        index = self._agents.get(agent_id)
        if index is not None:
            index.put(episode_id, ended_ts, status, text, vector)

    def remove(self, episode_ids: Sequence[str]) -> None:
        for index in self._agents.values():
            for episode_id in episode_ids:
                index.remove(episode_id)

    def set_status(self, episode_ids: Sequence[str], status: str) -> None:
        for index in self._agents.values():
            for episode_id in episode_ids:
                index.set_status(episode_id, status)

    def settle(self) -> None:
        """After a batch of writes: keep within the bound."""
        self._evict()
