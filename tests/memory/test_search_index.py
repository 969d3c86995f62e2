"""The in-process search index against LanceDB itself: the same vector ranking, filters applied first,
another process's writes seen at once, its own writes applied without reading the table again,
the row bound, start-up reading, and old table versions dropped by maintenance."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from atom.memory.vectors import VectorRow, VectorStore
from tests.memory.conftest import START

DIM = 16
AGENTS = ("agent-a", "agent-b", "agent-c")


def _rows(n: int, seed: int = 3, agents: tuple[str, ...] = AGENTS) -> list[VectorRow]:
    rng = np.random.default_rng(seed)
    words = ["invoice", "refund", "order", "contract", "shipment", "ticket", "Acme", "Globex", "paid", "late"]
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(words, size=5)) + f" INV-{1000 + i}"
        status = "archived" if i % 7 == 0 else "active"
        at = START - timedelta(days=float(rng.uniform(0, 60)))
        vector = rng.normal(size=DIM).astype(np.float32)
        rows.append(VectorRow(f"ep-{i:04d}", agents[i % len(agents)], at, status, "m", text, vector))
    return rows


def _ids(hits: list[object]) -> list[str]:
    return [h.id for h in hits]  # type: ignore[attr-defined]


@pytest.fixture
def stores(tmp_path: Path) -> tuple[VectorStore, VectorStore]:
    """The store with its index, and the same directory searched by LanceDB alone."""
    indexed = VectorStore(tmp_path / "v", DIM)
    indexed.insert_sync(_rows(240))
    return indexed, VectorStore(tmp_path / "v", DIM, index_rows=0)


def test_vector_ranking_is_lancedb_flat_scan_with_the_filters_first(stores: tuple[VectorStore, VectorStore]) -> None:
    indexed, lance = stores
    rng = np.random.default_rng(11)
    windows = [
        {},
        {"since": START - timedelta(days=20)},
        {"since": START - timedelta(days=40), "until": START - timedelta(days=10)},
        {"statuses": ("archived",)},
        {"statuses": ("active", "archived")},
    ]
    for agent_id in AGENTS:
        for window in windows:
            query = rng.normal(size=DIM).astype(np.float32)
            ours = indexed.vector_search_sync(query, agent_id=agent_id, limit=7, **window)  # type: ignore[arg-type]
            theirs = lance.vector_search_sync(query, agent_id=agent_id, limit=7, **window)  # type: ignore[arg-type]
            assert len(ours) == 7
            assert _ids(ours) == _ids(theirs)
            assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-5)


def test_text_search_filters_first_and_finds_the_named_id(stores: tuple[VectorStore, VectorStore]) -> None:
    indexed, lance = stores
    rows = {r.id: r for r in _rows(240)}
    for store in (indexed, lance):
        [first, *_] = store.text_search_sync("what happened to INV-1004", agent_id="agent-b", limit=5)
        assert first.id == "ep-0004"  # 4 % 3 == 1: agent-b's; "1004" is the rarest term
        assert store.text_search_sync("INV-1004", agent_id="agent-a", limit=5)[0].id != "ep-0004"
        since = START - timedelta(days=20)
        found = store.text_search_sync("refund Acme", agent_id="agent-c", limit=50, since=since)
        assert found and all(rows[h.id].agent_id == "agent-c" and rows[h.id].ended_at >= since for h in found)
        assert all(rows[h.id].status == "active" for h in found)


def test_another_process_writes_are_seen_at_once(tmp_path: Path) -> None:
    ours = VectorStore(tmp_path / "v", DIM)
    ours.insert_sync(_rows(30))
    query = _rows(30)[4].vector
    assert ours.vector_search_sync(query, agent_id="agent-b", limit=1)[0].id == "ep-0004"
    other = VectorStore(tmp_path / "v", DIM)  # another process's store on the same directory
    new = VectorRow("ep-new", "agent-b", START, "active", "m", "brand new zebra note", query)
    other.insert_sync([new])
    assert ours.text_search_sync("zebra", agent_id="agent-b", limit=3)[0].id == "ep-new"
    other.delete_sync(["ep-new"])
    assert _ids(ours.vector_search_sync(query, agent_id="agent-b", limit=1)) == ["ep-0004"]
    other.set_status_sync(["ep-0004"], "archived")
    assert "ep-0004" not in _ids(ours.vector_search_sync(query, agent_id="agent-b", limit=5))
    assert "ep-0004" in _ids(ours.vector_search_sync(query, agent_id="agent-b", limit=5, statuses=("archived",)))


def test_own_writes_are_applied_without_reading_the_table_again(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "v", DIM)
    rows = _rows(30)
    store.insert_sync(rows)
    store.vector_search_sync(rows[0].vector, agent_id="agent-a", limit=1)
    loads = store.index_loads()
    moved = VectorRow("ep-0003", "agent-a", START, "active", "m", "rewritten about walruses", rows[5].vector)
    store.upsert_sync([moved])  # a re-embedded episode replaces its row
    store.insert_sync([VectorRow("ep-x", "agent-a", START, "active", "m", "penguins", rows[8].vector)])
    store.set_status_sync(["ep-0006"], "archived")
    store.delete_sync(["ep-0009"])
    assert _ids(store.text_search_sync("walruses", agent_id="agent-a", limit=2)) == ["ep-0003"]
    assert _ids(store.vector_search_sync(rows[8].vector, agent_id="agent-a", limit=1)) == ["ep-x"]
    found = _ids(store.vector_search_sync(rows[0].vector, agent_id="agent-a", limit=50))
    assert "ep-0006" not in found and "ep-0009" not in found and found.count("ep-0003") == 1
    assert store.index_loads() == loads
    lance = VectorStore(tmp_path / "v", DIM, index_rows=0)
    for query in (rows[0].vector, rows[5].vector):
        assert _ids(store.vector_search_sync(query, agent_id="agent-a", limit=20)) == _ids(
            lance.vector_search_sync(query, agent_id="agent-a", limit=20)
        )


def test_row_bound_evicts_and_falls_back_to_lancedb(tmp_path: Path) -> None:
    rows = _rows(90)  # 30 per agent
    lance = VectorStore(tmp_path / "v", DIM, index_rows=0)
    lance.insert_sync(rows)
    small = VectorStore(tmp_path / "v", DIM, index_rows=45)
    query = rows[1].vector
    for agent_id in AGENTS:  # each fits alone; together they do not
        assert _ids(small.vector_search_sync(query, agent_id=agent_id, limit=9)) == _ids(
            lance.vector_search_sync(query, agent_id=agent_id, limit=9)
        )
        assert small.index_rows() <= 45
    tiny = VectorStore(tmp_path / "v", DIM, index_rows=10)  # no agent fits: LanceDB answers
    assert _ids(tiny.vector_search_sync(query, agent_id="agent-b", limit=9)) == _ids(
        lance.vector_search_sync(query, agent_id="agent-b", limit=9)
    )
    assert tiny.index_rows() == 0


def test_warm_reads_the_largest_agents_that_fit(tmp_path: Path) -> None:
    rows = _rows(30, agents=("big",)) + _rows(20, seed=4, agents=("middle",)) + _rows(10, seed=5, agents=("small",))
    rows = [
        VectorRow(f"{r.agent_id}-{i}", r.agent_id, r.ended_at, r.status, "m", r.text, r.vector)
        for i, r in enumerate(rows)
    ]
    store = VectorStore(tmp_path / "v", DIM, index_rows=45)
    store.insert_sync(rows)
    assert store.warm_sync() == 2  # big (30), then small (10): middle would pass the bound
    assert store.index_rows() == 40
    loads = store.index_loads()
    store.vector_search_sync(rows[0].vector, agent_id="big", limit=1)
    assert store.index_loads() == loads


def test_warm_stops_when_asked(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "v", DIM)
    store.insert_sync(_rows(30))
    store.stop_warming()  # the server stopping before the background read got going
    assert store.warm_sync() == 0
    assert store.index_rows() == 0


def test_maintenance_drops_old_versions_and_keeps_searching(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "v", DIM)
    rows = _rows(60)
    for row in rows:  # one write per episode, as episodes are created
        store.insert_sync([row])
    store.vector_search_sync(rows[0].vector, agent_id="agent-a", limit=1)
    loads = store.index_loads()
    before = store.optimize_sync()["versions"]
    assert store.index_loads() == loads + 1  # the agent held was read again, not dropped
    assert store.index_rows() == 20  # agent-a's rows
    with pytest.warns(UserWarning, match="removes every version except the latest"):  # LanceDB's own caution
        after = store.optimize_sync(keep_versions=timedelta(0))["versions"]
    assert before > 60 and after < 5
    loads = store.index_loads()
    lance = VectorStore(tmp_path / "v", DIM, index_rows=0)
    assert _ids(store.vector_search_sync(rows[0].vector, agent_id="agent-a", limit=10)) == _ids(
        lance.vector_search_sync(rows[0].vector, agent_id="agent-a", limit=10)
    )
    assert store.index_loads() == loads  # read during maintenance, not by the search after it
