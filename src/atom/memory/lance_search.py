"""Searches run by LanceDB itself: a flat (exact) vector scan and its native full-text (BM25) index,
both filtered by agent, status and time window *before* ranking (`prefilter=True`).

The vector store uses them for what its in-process index does not hold (an agent above
ATOM_MEMORY_INDEX_MAX_ROWS, a search across agents, the index turned off).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")


@dataclass(frozen=True)
class Hit:
    id: str
    score: float  # cosine similarity for vector hits, BM25 for text hits


def quote(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"not an id: {value!r}")
    return f"'{value}'"


def id_list(ids: Sequence[str]) -> str:
    return "id IN (" + ", ".join(quote(i) for i in ids) + ")"


def where_clause(agent_id: str | None, since: datetime | None, until: datetime | None, statuses: Sequence[str]) -> str:
    parts = []
    if agent_id is not None:
        parts.append(f"agent_id = {quote(agent_id)}")
    if since is not None:
        parts.append(f"ended_ts >= {since.timestamp()!r}")
    if until is not None:
        parts.append(f"ended_ts <= {until.timestamp()!r}")
    if statuses:
        parts.append("status IN (" + ", ".join(quote(s) for s in statuses) + ")")
    return " AND ".join(parts)


def vector_search(table: Any, vector: npt.ArrayLike, limit: int, where: str) -> list[Hit]:
    query = table.search(np.asarray(vector, dtype=np.float32)).distance_type("cosine")
    if where:
        query = query.where(where, prefilter=True)
    rows = query.select(["id", "_distance"]).limit(limit).to_arrow()
    return [
        Hit(str(i), 1.0 - float(d))
        for i, d in zip(rows.column("id").to_pylist(), rows.column("_distance").to_pylist(), strict=True)
    ]


def text_search(table: Any, text: str, limit: int, where: str) -> list[Hit]:
    """BM25 over the table's full-text index (which must exist; rows added since it was built are searched too)."""
    terms = " ".join(re.findall(r"[\w-]+", text))[:1000]
    if not terms:
        return []
    query = table.search(terms, query_type="fts")
    if where:
        query = query.where(where, prefilter=True)
    rows = query.select(["id", "_score"]).limit(limit).to_arrow()
    return [
        Hit(str(i), float(s))
        for i, s in zip(rows.column("id").to_pylist(), rows.column("_score").to_pylist(), strict=True)
    ]
