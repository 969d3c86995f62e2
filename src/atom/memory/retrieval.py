"""Retrieval modes (RULES.md) with the score of every episode returned, and an access log row per call.

- temporal: an agent's episodes of the last 1, 7, 30 or 90 days, newest first;
  score = recency = max(0, 1 - age_days / window_days).
- semantic (hybrid): vector search and BM25 full-text search, both filtered by agent, status and
  time window first, fused by reciprocal rank fusion (sum of 1 / (60 + rank)); the fused score is
  multiplied by the episode's decay. A query that names an id (`INV-40213`) weighs the text ranking 3x, and
  an episode containing that exact id gets +1 (it comes first).
- sequential: one whole episode with its segments, its canvas actions and its feedback context.
- contextual: 0.3 * recency (90-day window) + 0.7 * cosine similarity, + 0.1 with canvas actions,
  + 0.2 for positive feedback, - 0.3 for negative. Canvas actions come from `Memory.canvas_hook` (the
  canvas domain's audit rows of the episode's executions, runs and time span), feedback from
  `Memory.feedback_hook` (the average score of the feedback on its agent runs and workflow steps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.memory import service
from atom.memory.embedding import Vectors
from atom.memory.models import Episode, EpisodeSegment, EpisodeStatus
from atom.memory.runtime import Memory
from atom.memory.schemas import SearchMode
from atom.security.principal import Principal

TEMPORAL_WINDOWS = (1, 7, 30, 90)
RRF_K = 60
W_TEMPORAL, W_SEMANTIC, W_CANVAS, W_POSITIVE, W_NEGATIVE = 0.3, 0.7, 0.1, 0.2, -0.3
CONTEXT_WINDOW_DAYS = 90.0
ID_LIKE = re.compile(r"\b[A-Za-z]{0,6}[-#]?\d{3,}\b")
ID_TEXT_WEIGHT = 3.0
ID_MATCH_BONUS = 1.0  # above any fused rank score (at most 4 / 61)


@dataclass
class Recall:
    episode: Episode
    score: float
    why: dict[str, float] = field(default_factory=dict)
    segments: list[EpisodeSegment] = field(default_factory=list)
    canvas: list[dict[str, Any]] = field(default_factory=list)  # its canvas actions (sequential)


def age_days(now: datetime, then: datetime) -> float:
    return max(0.0, (now - then).total_seconds() / 86_400)


def recency(now: datetime, then: datetime, window_days: float) -> float:
    return max(0.0, 1.0 - age_days(now, then) / window_days)


def rrf(rankings: list[list[str]], k: int = RRF_K, weights: list[float] | None = None) -> dict[str, float]:
    fused: dict[str, float] = {}
    for n, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[n]
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused


def text_weight(query: str) -> float:
    """A query naming a document id (INV-40213, ORD-7781, #5521) trusts the lexical ranking more:
    vectors see an id as noise, BM25 as the rarest, most telling term."""
    return ID_TEXT_WEIGHT if ID_LIKE.search(query) else 1.0


def contextual_score(*, temporal: float, semantic: float, canvas: bool, feedback: float | None) -> float:
    score = W_TEMPORAL * temporal + W_SEMANTIC * semantic + (W_CANVAS if canvas else 0.0)
    if feedback is not None and feedback > 0:
        score += W_POSITIVE
    elif feedback is not None and feedback < 0:
        score += W_NEGATIVE
    return score


async def _log(
    session: AsyncSession, actor: str, agent_id: str | None, mode: str, query: str, reason: str, found: list[Recall]
) -> None:
    scores: dict[str, Any] = {r.episode.id: {"score": round(r.score, 6), **r.why} for r in found}
    await service.log_access(
        session=session, actor=actor, agent_id=agent_id, mode=mode, query=query, reason=reason, scores=scores
    )


async def temporal(
    *,
    session: AsyncSession,
    memory: Memory,
    agent_id: str,
    days: int,
    limit: int,
    actor: str,
    reason: str,
    reader: Principal | None = None,
) -> list[Recall]:
    if days not in TEMPORAL_WINDOWS:
        from atom.errors import InvalidInput

        raise InvalidInput(f"days must be one of {TEMPORAL_WINDOWS}.", code="INVALID_MEMORY_WINDOW")
    now = memory.clock()
    stmt = (
        select(Episode)
        .where(
            Episode.agent_id == agent_id,
            Episode.status == EpisodeStatus.ACTIVE.value,
            Episode.ended_at >= now - timedelta(days=days),
        )
        .order_by(Episode.ended_at.desc())
        .limit(limit)
    )
    condition = service.visible(reader)
    if condition is not None:
        stmt = stmt.where(condition)
    rows = (await session.scalars(stmt)).all()
    found = [Recall(e, recency(now, e.ended_at, days), {"recency": recency(now, e.ended_at, days)}) for e in rows]
    await _log(session, actor, agent_id, "temporal", f"{days}d", reason, found)
    return found


@dataclass
class Candidates:
    episodes: dict[str, Episode]
    fused: dict[str, float]
    similarity: dict[str, float]
    text_rank: dict[str, int]
    query_vector: Vectors


async def _hybrid(
    session: AsyncSession,
    memory: Memory,
    *,
    agent_id: str,
    query: str,
    limit: int,
    since: datetime | None,
    reader: Principal | None,
    query_vector: Vectors | None = None,
) -> Candidates:
    depth = max(limit * 4, 20)
    vector = query_vector if query_vector is not None else (await memory.embedder.embed([query]))[0]
    by_vector, by_text = await memory.store.search(vector, query, agent_id=agent_id, limit=depth, since=since)
    fused = rrf([[h.id for h in by_vector], [h.id for h in by_text]], weights=[1.0, text_weight(query)])
    similarity = {h.id: h.score for h in by_vector}
    text_rank = {h.id: i for i, h in enumerate(by_text, start=1)}
    episodes = await service.episodes_by_id(session=session, ids=list(fused), reader=reader)
    episodes = {k: e for k, e in episodes.items() if e.status == EpisodeStatus.ACTIVE.value}
    ids_named = [m.group(0).lower() for m in ID_LIKE.finditer(query)]
    for key, episode in episodes.items():  # an episode holding the very id the query names comes first
        if ids_named and any(i in episode.text.lower() for i in ids_named):
            fused[key] += ID_MATCH_BONUS
    return Candidates(episodes, fused, similarity, text_rank, vector)


async def semantic(
    *,
    session: AsyncSession,
    memory: Memory,
    agent_id: str,
    query: str,
    limit: int,
    actor: str,
    reason: str,
    days: int | None = None,
    reader: Principal | None = None,
    query_vector: Vectors | None = None,
) -> list[Recall]:
    """`query_vector`: the query's embedding when the caller has it already (benchmarks, re-ranking)."""
    since = memory.clock() - timedelta(days=days) if days else None
    c = await _hybrid(
        session,
        memory,
        agent_id=agent_id,
        query=query,
        limit=limit,
        since=since,
        reader=reader,
        query_vector=query_vector,
    )
    found = []
    for key, episode in c.episodes.items():
        why = {"rrf": c.fused[key], "similarity": c.similarity.get(key, 0.0), "decay": episode.decay}
        if key in c.text_rank:
            why["text_rank"] = float(c.text_rank[key])
        found.append(Recall(episode, c.fused[key] * episode.decay, why))
    found.sort(key=lambda r: (-r.score, r.episode.id))
    found = found[:limit]
    await _log(session, actor, agent_id, "semantic", query, reason, found)
    return found


async def contextual(
    *,
    session: AsyncSession,
    memory: Memory,
    agent_id: str,
    query: str,
    limit: int,
    actor: str,
    reason: str,
    reader: Principal | None = None,
) -> list[Recall]:
    now = memory.clock()
    c = await _hybrid(session, memory, agent_id=agent_id, query=query, limit=limit, since=None, reader=reader)
    episodes, similarity = c.episodes, c.similarity
    missing = [k for k in episodes if k not in similarity]
    if missing:  # text-only hits: their cosine similarity from the stored vectors
        q = c.query_vector / (float(np.linalg.norm(c.query_vector)) or 1.0)
        for key, vector in (await memory.store.agent_vectors(agent_id, missing)).items():
            similarity[key] = float(vector @ q)
    ids = list(episodes)
    canvas = await memory.canvas_hook(session, ids)
    feedback = await memory.feedback_hook(session, ids)
    found = []
    for key, episode in episodes.items():
        t = recency(now, episode.ended_at, CONTEXT_WINDOW_DAYS)
        s = similarity.get(key, 0.0)
        acted = bool(canvas.get(key))
        score = contextual_score(temporal=t, semantic=s, canvas=acted, feedback=feedback.get(key))
        why = {"temporal": t, "semantic": s, "canvas": float(acted), "feedback": feedback.get(key, 0.0)}
        found.append(Recall(episode, score, why))
    found.sort(key=lambda r: (-r.score, r.episode.id))
    found = found[:limit]
    await _log(session, actor, agent_id, "contextual", query, reason, found)
    return found


async def sequential(
    *,
    session: AsyncSession,
    memory: Memory,
    episode_id: str,
    actor: str,
    reason: str,
    reader: Principal | None = None,
) -> Recall:
    episode = await service.get_episode(session=session, episode_id=episode_id, reader=reader)
    parts = await service.segments(session=session, episode_id=episode.id)
    actions = list((await memory.canvas_hook(session, [episode.id])).get(episode.id, []))
    feedback = await memory.feedback_hook(session, [episode.id])
    why = {"canvas": float(bool(actions)), "feedback": feedback.get(episode.id, 0.0)}
    found = Recall(episode, 1.0, why, parts, actions)
    await _log(session, actor, episode.agent_id, "sequential", episode_id, reason, [found])
    return found


async def search(
    *,
    session: AsyncSession,
    memory: Memory,
    agent_id: str,
    mode: SearchMode,
    query: str,
    days: int | None,
    limit: int,
    actor: str,
    reason: str,
    reader: Principal | None = None,
) -> list[Recall]:
    """One of the retrieval modes by name (the API's and the CLI's search); temporal defaults to 7 days."""
    if mode is SearchMode.TEMPORAL:
        return await temporal(
            session=session, memory=memory, agent_id=agent_id, days=days or 7, limit=limit, actor=actor,
            reason=reason, reader=reader,
        )  # fmt: skip
    if mode is SearchMode.CONTEXTUAL:
        return await contextual(
            session=session, memory=memory, agent_id=agent_id, query=query, limit=limit, actor=actor,
            reason=reason, reader=reader,
        )  # fmt: skip
    return await semantic(
        session=session, memory=memory, agent_id=agent_id, query=query, limit=limit, actor=actor, reason=reason,
        days=days, reader=reader,
    )  # fmt: skip
