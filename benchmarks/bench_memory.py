"""Episodic memory: embedding cost, episode creation, recall@5 on the labelled set, retrieval at 100k.

Floors measured in the same run: numpy brute force (dot product over the same agent's vectors,
top-k by argpartition) for semantic retrieval; a bare `SELECT 1` for temporal retrieval.
The 100k fill uses precomputed vectors (the labelled set's embeddings plus noise), so it takes minutes.

    .venv/bin/python benchmarks/bench_memory.py [--episodes 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summary
from atom.agents import service as agents_service
from atom.agents.schemas import AgentCreate
from atom.audit import service as audit
from atom.config import Settings
from atom.db import migrate
from atom.db.base import new_id, table_of
from atom.db.session import Database
from atom.memory import retrieval, service
from atom.memory.embedding import LocalEmbedder
from atom.memory.models import Episode
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event
from atom.memory.vectors import VectorRow, VectorStore

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "memory_retrieval.json"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def ms(seconds: float) -> float:
    return seconds * 1000


async def make_agents(db: Database, settings: Settings, names: list[str]) -> dict[str, str]:
    ids = {}
    async with db.session_scope() as s:
        for name in names:
            agent = await agents_service.create_agent(
                session=s, agent_in=AgentCreate(name=name), actor=audit.Actor.system(), settings=settings
            )
            ids[name] = agent.id
    return ids


async def bulk_fill(
    db: Database, memory: Memory, rows: list[tuple[str, str, str, datetime]], vectors: np.ndarray, batch: int = 5000
) -> None:
    """Episodes as SQL rows (Core inserts) and their vectors in LanceDB, without embedding."""
    table = table_of(Episode)
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        values = [
            {
                "id": episode_id,
                "agent_id": agent_id,
                "user_id": None,
                "title": body[:200],
                "text": body,
                "source": "bench",
                "status": "active",
                "closed": True,
                "started_at": at,
                "ended_at": at,
                "segment_count": 1,
                "decay": 1.0,
                "model_id": memory.embedder.model_id,
                "last_vector": None,
                "consolidated_into": None,
                "created_at": at,
                "updated_at": at,
            }
            for episode_id, agent_id, body, at in chunk
        ]
        async with db.session_scope() as s:
            await s.execute(insert(table), values)
        await memory.store.upsert(
            [
                VectorRow(episode_id, agent_id, at, "active", memory.embedder.model_id, body, vectors[start + i])
                for i, (episode_id, agent_id, body, at) in enumerate(chunk)
            ]
        )


async def main(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    settings = Settings(data_dir=directory, _env_file=None)  # type: ignore[call-arg]
    db = Database(settings)
    await migrate.upgrade(db)
    t0 = time.perf_counter()
    embedder = LocalEmbedder(settings)
    load_s = time.perf_counter() - t0
    store = VectorStore(directory / "memory.lance", embedder.dim)
    memory = Memory(settings=settings, embedder=embedder, store=store, clock=lambda: NOW)
    data = json.loads(DATA.read_text(encoding="utf-8"))

    # --- embedding ms/sentence (one sentence per call, as a chat event is embedded) -----------------
    sentences = [e["text"] for e in data["episodes"][:200]]
    embedder.embed_sync(sentences[:5])
    t0 = time.perf_counter()
    for sentence in sentences:
        embedder.embed_sync([sentence])
    per_sentence = ms(time.perf_counter() - t0) / len(sentences)
    t0 = time.perf_counter()
    labelled_vectors = np.concatenate(
        [
            embedder.embed_sync([e["text"] for e in data["episodes"][i : i + 64]])
            for i in range(0, len(data["episodes"]), 64)
        ]
    )
    batched = ms(time.perf_counter() - t0) / len(data["episodes"])
    print(f"model load {load_s:.2f} s; embedding {per_sentence:.2f} ms/sentence (one per call), {batched:.2f} batched")

    # --- labelled set: recall@5 (hybrid vs vectors only vs text only) ---------------------------------
    agent_names = sorted({e["agent"] for e in data["episodes"]})
    agents = await make_agents(db, settings, agent_names)
    id_map = {e["id"]: new_id() for e in data["episodes"]}
    rows = [
        (id_map[e["id"]], agents[e["agent"]], e["text"], NOW - timedelta(days=e["days_ago"])) for e in data["episodes"]
    ]
    await bulk_fill(db, memory, rows, labelled_vectors)
    store.optimize_sync()  # what the maintenance job does
    hits = {"hybrid": 0, "vector": 0, "text": 0}
    by_kind: dict[str, list[int]] = {}
    queries = data["queries"]
    for q in queries:
        relevant = {id_map[r] for r in q["relevant"]}
        agent_id = agents[q["agent"]]
        qv = embedder.embed_sync([q["query"]])[0]
        async with db.session_scope() as s:
            found = await retrieval.semantic(
                session=s,
                memory=memory,
                agent_id=agent_id,
                query=q["query"],
                limit=5,
                actor="bench",
                reason="recall",
                query_vector=qv,
            )
        ok = bool(relevant & {r.episode.id for r in found})
        hits["hybrid"] += ok
        by_kind.setdefault(q["kind"], []).append(int(ok))
        hits["vector"] += bool(relevant & {h.id for h in store.vector_search_sync(qv, agent_id=agent_id, limit=5)})
        hits["text"] += bool(relevant & {h.id for h in store.text_search_sync(q["query"], agent_id=agent_id, limit=5)})
    n = len(queries)
    kinds = ", ".join(f"{k} {sum(v) / len(v):.3f} (n={len(v)})" for k, v in sorted(by_kind.items()))
    print(
        f"recall@5 over {n} queries / {len(rows)} episodes: hybrid {hits['hybrid'] / n:.3f}, "
        f"vectors only {hits['vector'] / n:.3f}, full-text only {hits['text'] / n:.3f}; hybrid by kind: {kinds}"
    )

    # --- episode creation including its embedding ----------------------------------------------------
    creation = []
    for i in range(args.creations):
        event = Event(
            agents[agent_names[0]],
            NOW + timedelta(minutes=i),
            "message",
            sentences[i % 200],
            "bench",
            completes_task=True,
        )
        t0 = time.perf_counter()
        async with db.session_scope() as s:
            await service.record_events(session=s, memory=memory, events=[event])
        creation.append(ms(time.perf_counter() - t0))
    c = summary(creation)
    print(f"episode creation incl. embedding: P50 {c['p50']:.2f} ms, P99 {c['p99']:.2f} ms (goal P50 <= 50 ms)")

    # --- 100k episodes -------------------------------------------------------------------------------
    rng = np.random.default_rng(7)
    extra = args.episodes - len(rows)
    fill_agents = await make_agents(db, settings, [f"fill-{i}" for i in range(6)])
    all_agents = list(agents.values()) + list(fill_agents.values())
    base_idx = rng.integers(0, len(labelled_vectors), size=extra)
    noise = rng.normal(0, 0.03, size=(extra, embedder.dim)).astype(np.float32)
    fill_vectors = labelled_vectors[base_idx] + noise
    fill_vectors /= np.linalg.norm(fill_vectors, axis=1, keepdims=True)
    fill_rows = [
        (
            new_id(),
            all_agents[i % len(all_agents)],
            data["episodes"][int(base_idx[i])]["text"],
            NOW - timedelta(days=float(rng.uniform(0, 90))),
        )
        for i in range(extra)
    ]
    t0 = time.perf_counter()
    await bulk_fill(db, memory, fill_rows, fill_vectors, batch=10_000)
    fill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index_report = store.optimize_sync()
    print(f"indexing (maintenance job): {time.perf_counter() - t0:.1f} s, {index_report}")
    print(f"filled {extra} more episodes with precomputed vectors in {fill_s:.1f} s")
    total = len(rows) + extra

    vectors_all = np.concatenate([labelled_vectors, fill_vectors])
    owners = np.array([r[1] for r in rows] + [r[1] for r in fill_rows])
    sample = [queries[i % len(queries)] for i in range(args.queries)]
    q_vectors = embedder.embed_sync([q["query"] for q in sample])
    brute, semantic, semantic_e2e, temporal, floor_sql = [], [], [], [], []
    masks = {a: np.flatnonzero(owners == a) for a in set(owners)}
    for q, qv in zip(sample, q_vectors, strict=True):
        agent_id = agents[q["agent"]]
        t0 = time.perf_counter()
        idx = masks[agent_id]
        scores = vectors_all[idx] @ qv
        top = idx[np.argpartition(-scores, 20)[:20]]
        _ = top[np.argsort(-(vectors_all[top] @ qv))]
        brute.append(ms(time.perf_counter() - t0))
        async with db.session_scope() as s:
            t0 = time.perf_counter()
            await retrieval.semantic(
                session=s,
                memory=memory,
                agent_id=agent_id,
                query=q["query"],
                limit=5,
                actor="bench",
                reason="bench",
                query_vector=qv,
            )
            semantic.append(ms(time.perf_counter() - t0))
            t0 = time.perf_counter()
            await retrieval.semantic(
                session=s, memory=memory, agent_id=agent_id, query=q["query"], limit=5, actor="bench", reason="bench"
            )
            semantic_e2e.append(ms(time.perf_counter() - t0))
            t0 = time.perf_counter()
            await retrieval.temporal(
                session=s, memory=memory, agent_id=agent_id, days=7, limit=20, actor="bench", reason="bench"
            )
            temporal.append(ms(time.perf_counter() - t0))
            t0 = time.perf_counter()
            await s.execute(text("SELECT 1"))
            floor_sql.append(ms(time.perf_counter() - t0))
    b, sm, se, tp, fl = (summary(x) for x in (brute, semantic, semantic_e2e, temporal, floor_sql))
    print(f"at {total} episodes ({len(all_agents)} agents), P50 / P99 over {len(sample)} queries:")
    print(f"  numpy brute force (floor)     {b['p50']:7.2f} / {b['p99']:7.2f} ms")
    print(
        f"  semantic hybrid (vector+FTS)  {sm['p50']:7.2f} / {sm['p99']:7.2f} ms = {sm['p50'] / b['p50']:.1f}x brute "
        f"force (goal P50 <= 10 ms)"
    )
    print(f"  semantic incl. query embed    {se['p50']:7.2f} / {se['p99']:7.2f} ms")
    print(
        f"  temporal (7 days, 20 newest)  {tp['p50']:7.2f} / {tp['p99']:7.2f} ms = {tp['p50'] / fl['p50']:.1f}x "
        f"SELECT 1 (goal P50 <= 2 ms)"
    )
    size = store.size_bytes()
    print(
        f"LanceDB directory: {size / 1e6:.1f} MB for {store.count_sync()} vectors = "
        f"{size / store.count_sync() * 1000 / 1e6:.2f} MB per 1k episodes"
    )
    await db.dispose()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--creations", type=int, default=100)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
