"""Memory lifecycle (RULES.md): decay, archive, consolidate; plus re-embedding and the orphan sweep.

- decay: an active episode older than ATOM_MEMORY_DECAY_AFTER_DAYS (90) gets
  decay = max(0, 1 - age_days / 180); younger ones keep 1.0. Semantic scores are multiplied by it.
- archive: older than ATOM_MEMORY_ARCHIVE_AFTER_DAYS (180): status `archived`, out of every search;
  its segments leave the hot store (SQL), its text and vector stay in the cold store (LanceDB).
- consolidate: two active episodes of one agent whose vectors have cosine >= 0.85 become one: the
  later one's segments move into the earlier one, which is re-embedded; the later one is kept as
  `consolidated` (pointing at the other) without a vector.
- orphans: a vector without its episode row (a rolled-back write, a delete racing a re-embed) is deleted.

Each run is a `MemoryJob` row with progress (`done` of `total`) and a report; `dry_run` only reports.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.db.base import utcnow
from atom.db.session import Database
from atom.memory import service
from atom.memory.models import Episode, EpisodeSegment, EpisodeStatus, MemoryJob
from atom.memory.runtime import Memory

CONSOLIDATE_MAX_PER_AGENT = 5000
REEMBED_BATCH = 64


def decay_for(age_days: float, after_days: float) -> float:
    return 1.0 if age_days <= after_days else max(0.0, 1.0 - age_days / 180.0)


async def start_job(*, session: AsyncSession, kind: str, dry_run: bool, created_by: str | None) -> MemoryJob:
    job = MemoryJob(kind=kind, dry_run=dry_run, created_by=created_by)
    session.add(job)
    await session.flush()
    return job


async def get_job(*, session: AsyncSession, job_id: str) -> MemoryJob:
    from atom.errors import NotFound

    job = await session.get(MemoryJob, job_id, populate_existing=True)
    if job is None:
        raise NotFound(f"No memory job with id {job_id!r}.", code="MEMORY_JOB_NOT_FOUND", details={"job_id": job_id})
    return job


async def _progress(db: Database, job_id: str, **values: Any) -> None:
    async with db.session_scope() as s:
        await s.execute(update(MemoryJob).where(MemoryJob.id == job_id).values(**values))


async def _consolidation_pairs(session: AsyncSession, memory: Memory) -> list[tuple[str, str, float]]:
    threshold = memory.settings.memory_consolidate_similarity
    agents = (await session.scalars(select(Episode.agent_id).distinct())).all()
    pairs: list[tuple[str, str, float]] = []
    for agent_id in agents:
        rows = (
            await session.execute(
                select(Episode.id)
                .where(Episode.agent_id == agent_id, Episode.status == EpisodeStatus.ACTIVE.value)
                .order_by(Episode.started_at, Episode.id)
                .limit(CONSOLIDATE_MAX_PER_AGENT)
            )
        ).scalars()
        ids = list(rows)
        stored = await memory.store.vectors(ids)
        ids = [i for i in ids if i in stored]
        if len(ids) < 2:
            continue
        matrix = np.stack([stored[i][0] for i in ids])
        sims = matrix @ matrix.T
        merged: set[str] = set()
        for j in range(1, len(ids)):  # each later episode joins the earliest kept one it matches
            for i in range(j):
                if ids[i] in merged or sims[i, j] < threshold:
                    continue
                pairs.append((ids[j], ids[i], float(sims[i, j])))
                merged.add(ids[j])
                break
    return pairs


async def maintain(*, db: Database, memory: Memory, job_id: str, dry_run: bool) -> dict[str, Any]:
    """Run (or, dry, only report) decay, archive, consolidation and the orphan sweep."""
    settings = memory.settings
    now = memory.clock()
    report: dict[str, Any] = {"decayed": [], "archived": [], "consolidated": [], "orphans": [], "dry_run": dry_run}
    try:
        async with db.session_scope() as s:
            active = (
                await s.execute(
                    select(Episode.id, Episode.ended_at, Episode.decay).where(
                        Episode.status == EpisodeStatus.ACTIVE.value
                    )
                )
            ).all()
        await _progress(db, job_id, total=len(active) + 2)
        archive_before = now - timedelta(days=settings.memory_archive_after_days)
        decays: dict[str, float] = {}
        archive: list[str] = []
        for episode_id, ended_at, old in active:
            if ended_at < archive_before:
                archive.append(episode_id)
                continue
            value = decay_for((now - ended_at).total_seconds() / 86_400, settings.memory_decay_after_days)
            if abs(value - old) > 1e-9:
                decays[episode_id] = value
        report["decayed"] = [{"id": k, "decay": round(v, 6)} for k, v in decays.items()]
        report["archived"] = archive
        if not dry_run:
            async with db.session_scope() as s:
                for episode_id, value in decays.items():
                    await s.execute(update(Episode).where(Episode.id == episode_id).values(decay=value))
                for start in range(0, len(archive), 500):
                    chunk = archive[start : start + 500]
                    await s.execute(
                        update(Episode).where(Episode.id.in_(chunk)).values(status=EpisodeStatus.ARCHIVED.value)
                    )
                    await s.execute(delete(EpisodeSegment).where(EpisodeSegment.episode_id.in_(chunk)))
            await memory.store.set_status(archive, EpisodeStatus.ARCHIVED.value)
        await _progress(db, job_id, done=len(active))

        async with db.session_scope() as s:
            pairs = await _consolidation_pairs(s, memory)
            report["consolidated"] = [{"from": a, "into": b, "similarity": round(c, 4)} for a, b, c in pairs]
            if not dry_run and pairs:
                targets = await _consolidate(s, memory, pairs)
                await service.index(session=s, memory=memory, episodes=targets)
        if not dry_run and pairs:
            await memory.store.delete([a for a, _, _ in pairs])
        await _progress(db, job_id, done=len(active) + 1)

        orphans = await sweep_orphans(db=db, memory=memory, dry_run=dry_run)
        report["orphans"] = orphans
        if not dry_run:
            report["index"] = await memory.store.optimize()
        summary = {k: len(v) for k, v in report.items() if isinstance(v, list)}
        await _progress(
            db, job_id, done=len(active) + 2, status="done", report={**report, "summary": summary}, finished_at=utcnow()
        )
        return report
    except Exception as exc:
        await _progress(db, job_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=utcnow())
        raise


async def _consolidate(session: AsyncSession, memory: Memory, pairs: list[tuple[str, str, float]]) -> list[Episode]:
    targets: dict[str, Episode] = {}
    for source_id, target_id, _ in pairs:
        source = await session.get(Episode, source_id)
        target = targets.get(target_id) or await session.get(Episode, target_id)
        if source is None or target is None:
            continue
        moved = (
            await session.scalars(
                select(EpisodeSegment).where(EpisodeSegment.episode_id == source_id).order_by(EpisodeSegment.seq)
            )
        ).all()
        for segment in moved:
            segment.episode_id = target.id
            segment.seq = target.segment_count
            target.segment_count += 1
        target.started_at = min(target.started_at, source.started_at)
        target.ended_at = max(target.ended_at, source.ended_at)
        source.status = EpisodeStatus.CONSOLIDATED.value
        source.consolidated_into = target.id
        source.segment_count = 0
        source.model_id = None
        targets[target.id] = target
    await session.flush()
    return list(targets.values())


async def sweep_orphans(*, db: Database, memory: Memory, dry_run: bool = False) -> list[str]:
    """Vectors whose episode row is gone (or consolidated away); deleted unless dry."""
    vector_ids = await memory.store.ids()
    if not vector_ids:
        return []
    async with db.session_scope() as s:
        live: set[str] = set()
        ids = sorted(vector_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await s.scalars(
                select(Episode.id).where(Episode.id.in_(chunk), Episode.status != EpisodeStatus.CONSOLIDATED.value)
            )
            live.update(rows.all())
    orphans = sorted(vector_ids - live)
    if orphans and not dry_run:
        await memory.store.delete(orphans)
    return orphans


async def reembed(*, db: Database, memory: Memory, job_id: str, agent_id: str | None = None) -> int:
    """Re-embed every episode (of one agent, or all) with the current model, in batches, with progress.

    An episode deleted while its batch is embedded leaves no vector: after each write the batch's
    ids are checked again and vectors of rows gone meanwhile are deleted.
    """
    try:
        async with db.session_scope() as s:
            stmt = select(Episode.id).where(Episode.status == EpisodeStatus.ACTIVE.value).order_by(Episode.id)
            if agent_id is not None:
                stmt = stmt.where(Episode.agent_id == agent_id)
            ids = list((await s.scalars(stmt)).all())
        await _progress(db, job_id, total=len(ids))
        done = 0
        for start in range(0, len(ids), REEMBED_BATCH):
            chunk = ids[start : start + REEMBED_BATCH]
            async with db.session_scope() as s:
                rows = list((await s.scalars(select(Episode).where(Episode.id.in_(chunk)))).all())
                await service.index(session=s, memory=memory, episodes=rows)
            async with memory.write_lock, db.session_scope() as s:
                still = set((await s.scalars(select(Episode.id).where(Episode.id.in_(chunk)))).all())
                gone = [i for i in chunk if i not in still]
                if gone:
                    await memory.store.delete(gone)
            done += len(chunk)
            await _progress(db, job_id, done=done)
        await _progress(
            db,
            job_id,
            status="done",
            report={"reembedded": done, "model_id": memory.embedder.model_id},
            finished_at=utcnow(),
        )
        return done
    except Exception as exc:
        await _progress(db, job_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=utcnow())
        raise
