"""Episodic memory: record events into episodes, read them, export and forget them.

Services flush; the caller commits. Vectors are written after the rows are flushed; a vector whose
row was rolled back or deleted meanwhile is an orphan that `lifecycle.sweep_orphans` removes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer
from sqlalchemy.orm.attributes import set_committed_value

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.db.base import new_id
from atom.errors import NotFound
from atom.memory.embedding import Vectors
from atom.memory.models import Episode, EpisodeAccessLog, EpisodeSegment, EpisodeStatus
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event, OpenEpisode, Rules, boundary, is_topic_event
from atom.memory.vectors import VectorRow
from atom.pagination import paginate
from atom.security.models import Role
from atom.security.principal import Principal

TEXT_LIMIT = 4000  # characters of an episode's text that are embedded and indexed
SEGMENT_LIMIT = 4000  # characters kept of one segment


def episode_text(title: str, contents: Sequence[str]) -> str:
    return (title + "\n" + "\n".join(contents))[:TEXT_LIMIT]


def _title(event: Event) -> str:
    first = " ".join(event.text.split())
    return first[:200]


async def _latest(session: AsyncSession, agent_id: str) -> Episode | None:
    return await session.scalar(
        select(Episode)
        .options(undefer(Episode.last_vector))
        .where(Episode.agent_id == agent_id, Episode.status == EpisodeStatus.ACTIVE.value)
        .order_by(Episode.ended_at.desc(), Episode.id.desc())
        .limit(1)
    )


async def _segment_texts(session: AsyncSession, episode_id: str) -> list[str]:
    rows = await session.scalars(
        select(EpisodeSegment.content).where(EpisodeSegment.episode_id == episode_id).order_by(EpisodeSegment.seq)
    )
    return list(rows.all())


def _needs_vector(events: Sequence[Event], latest: dict[str, Episode | None], rules: Rules) -> list[bool]:
    """Which events' embeddings segmentation will read (events ordered by agent, then time).

    A topic event's vector is compared with the open episode's last message, and becomes the last
    message of an episode that stays open. Whether an episode is open, and when it last changed, does
    not depend on any vector (a topic change starts an episode in the same state as continuing one
    would leave it), so this is decided before embedding anything: tool calls, answers and an event
    closing a finished task embed nothing.
    """
    needs: list[bool] = []
    state: dict[str, tuple[datetime, bool, bool] | None] = {}  # agent -> (ended_at, closed, has a last vector)
    for event in events:
        if event.agent_id not in state:
            e = latest.get(event.agent_id)
            state[event.agent_id] = None if e is None else (e.ended_at, e.closed, e.last_vector is not None)
        previous = state[event.agent_id]
        topic = is_topic_event(event)
        if previous is None or previous[1] or event.at - previous[0] > rules.gap:
            needs.append(topic and not event.completes_task)  # a new episode whatever the vector
            state[event.agent_id] = (event.at, event.completes_task, topic)
            continue
        ended, _, has_last = previous
        needs.append(topic and (has_last or not event.completes_task))
        # A topic change would end it at event.at, continuing at the later of both: the later one predicts
        # fewer gaps after it (at worst an embedding too many, never one too few).
        state[event.agent_id] = (max(ended, event.at), event.completes_task, topic or has_last)
    return needs


async def record_events(*, session: AsyncSession, memory: Memory, events: Sequence[Event]) -> list[Episode]:
    """Segment time-ordered events into their agents' episodes; embed them; return the episodes touched."""
    if not events:
        return []
    ordered = sorted(events, key=lambda e: (e.agent_id, e.at))
    rules = memory.rules
    current: dict[str, Episode | None] = {}
    for agent_id in dict.fromkeys(e.agent_id for e in ordered):
        current[agent_id] = await _latest(session, agent_id)
    needs = _needs_vector(ordered, current, rules)
    wanted = [i for i, need in enumerate(needs) if need]
    embedded = await memory.embedder.embed([ordered[i].text[:SEGMENT_LIMIT] for i in wanted])
    vectors: dict[int, Vectors] = dict(zip(wanted, embedded, strict=True))
    touched: dict[str, Episode] = {}
    created: dict[str, list[str]] = {}  # episodes made here -> their segments' contents
    added: dict[str, list[str]] = {}  # episodes that were there -> the contents of their segments added here
    for n, event in enumerate(ordered):
        episode = current[event.agent_id]
        state = None
        if episode is not None:
            last = np.asarray(episode.last_vector, dtype=np.float32) if episode.last_vector else None
            state = OpenEpisode(ended_at=episode.ended_at, last_vector=last, closed=episode.closed)
        # The topic is what the person asks about: only their messages are compared, so a question,
        # the tool calls it caused and the answer stay one episode however different their words are.
        topic = vectors.get(n) if is_topic_event(event) else None
        if episode is None or boundary(state, event.at, topic, rules) is not None:
            episode = Episode(
                id=new_id(),  # set now, so the episode and its segments go out in the one flush below
                agent_id=event.agent_id,
                user_id=event.user_id,
                title=_title(event),
                source=event.source,
                started_at=event.at,
                ended_at=event.at,
                segment_count=0,
                last_vector=None,
                status=EpisodeStatus.ACTIVE.value,  # read for its vector before the row is flushed
                closed=False,
            )
            session.add(episode)
            current[event.agent_id] = episode
            created[episode.id] = []
        session.add(
            EpisodeSegment(
                episode_id=episode.id,
                kind=event.kind,
                source_id=event.source_id,
                role=event.role,
                content=event.text[:SEGMENT_LIMIT],
                occurred_at=event.at,
                seq=episode.segment_count,
            )
        )
        (created if episode.id in created else added).setdefault(episode.id, []).append(event.text[:SEGMENT_LIMIT])
        episode.segment_count += 1
        episode.ended_at = max(episode.ended_at, event.at)
        episode.closed = episode.closed or event.completes_task
        if topic is not None:
            episode.last_vector = [float(x) for x in topic]
        if episode.user_id is None and event.user_id is not None:
            episode.user_id = event.user_id
        touched[episode.id] = episode
    episodes = list(touched.values())
    await index(session=session, memory=memory, episodes=episodes, new=created, added=added)
    return episodes


async def index(
    *,
    session: AsyncSession,
    memory: Memory,
    episodes: Sequence[Episode],
    new: Mapping[str, Sequence[str]] | None = None,
    added: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """(Re)embed episodes from their segments and write their vectors. `new`: episodes created in this
    transaction (no vector yet) with their segments' contents: appended to the cold store without a
    lookup, their segments not read back. `added`: segments added in this transaction to episodes that
    were there, not flushed yet.

    The embedding and the vector store's writes come before this transaction writes anything: on SQLite
    the first write takes the database's write lock until the commit, and a model run or the store's
    file writes under it would hold up every other writer (past their busy timeout on a loaded machine).
    An episode whose rows then fail to commit leaves a vector that no search returns (hits are read
    back from the episodes table). Rows are updated with Core statements (an episode deleted meanwhile
    updates nothing, raises nothing).
    """
    if not episodes:
        return
    new, added = new or {}, added or {}
    with session.no_autoflush:  # reading segments must not flush this transaction's pending rows yet
        texts = [
            episode_text(
                e.title, new[e.id] if e.id in new else [*await _segment_texts(session, e.id), *added.get(e.id, ())]
            )
            for e in episodes
        ]
        vectors = await memory.embedder.embed(texts)
        model_id = memory.embedder.model_id
        rows = [
            VectorRow(e.id, e.agent_id, e.ended_at, e.status, model_id, t, v)
            for e, t, v in zip(episodes, texts, vectors, strict=True)
        ]
        await memory.store.insert([r for r in rows if r.id in new])
        await memory.store.upsert([r for r in rows if r.id not in new])
    for episode, text in zip(episodes, texts, strict=True):  # the first write: pending rows are flushed with it
        await session.execute(update(Episode).where(Episode.id == episode.id).values(text=text, model_id=model_id))
        set_committed_value(episode, "text", text)
        set_committed_value(episode, "model_id", model_id)


# --- reading ---------------------------------------------------------------------------------
def visible(reader: Principal | None) -> Any:
    """Chat episodes follow their session's privacy: a non-admin reads only theirs and unowned ones."""
    if reader is None or reader.has_role(Role.ADMIN):
        return None
    return or_(Episode.user_id.is_(None), Episode.user_id == reader.user_id)


async def require_agent(*, session: AsyncSession, agent_ref: str) -> str:
    agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
    return agent.id


async def list_episodes(
    *,
    session: AsyncSession,
    agent_id: str | None,
    reader: Principal | None,
    status: str | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Episode], str | None]:
    stmt = select(Episode)
    if agent_id is not None:
        stmt = stmt.where(Episode.agent_id == agent_id)
    if status is not None:
        stmt = stmt.where(Episode.status == status)
    if since is not None:
        stmt = stmt.where(Episode.ended_at >= since)
    condition = visible(reader)
    if condition is not None:
        stmt = stmt.where(condition)
    return await paginate(session, stmt, id_column=Episode.id, limit=limit, cursor=cursor)


async def get_episode(*, session: AsyncSession, episode_id: str, reader: Principal | None) -> Episode:
    row = await session.get(Episode, episode_id)
    if row is None or not (reader is None or reader.has_role(Role.ADMIN) or row.user_id in (None, reader.user_id)):
        raise NotFound(
            f"No episode with id {episode_id!r}.", code="EPISODE_NOT_FOUND", details={"episode_id": episode_id}
        )
    return row


async def segments(*, session: AsyncSession, episode_id: str) -> list[EpisodeSegment]:
    rows = await session.scalars(
        select(EpisodeSegment).where(EpisodeSegment.episode_id == episode_id).order_by(EpisodeSegment.seq)
    )
    return list(rows.all())


async def episodes_by_id(*, session: AsyncSession, ids: Sequence[str], reader: Principal | None) -> dict[str, Episode]:
    if not ids:
        return {}
    stmt = select(Episode).where(Episode.id.in_(list(ids)))
    condition = visible(reader)
    if condition is not None:
        stmt = stmt.where(condition)
    return {e.id: e for e in (await session.scalars(stmt)).all()}


async def log_access(
    *,
    session: AsyncSession,
    actor: str,
    agent_id: str | None,
    mode: str,
    query: str,
    reason: str,
    scores: dict[str, Any],
) -> EpisodeAccessLog:
    row = EpisodeAccessLog(
        actor=actor[:80],
        agent_id=agent_id,
        mode=mode,
        query=query[:2000],
        reason=reason[:500],
        episode_ids=list(scores),
        scores=scores,
    )
    session.add(row)
    await session.flush()
    return row


async def access_logs(
    *, session: AsyncSession, agent_id: str | None, limit: int, cursor: str | None
) -> tuple[list[EpisodeAccessLog], str | None]:
    stmt = select(EpisodeAccessLog)
    if agent_id is not None:
        stmt = stmt.where(EpisodeAccessLog.agent_id == agent_id)
    return await paginate(session, stmt, id_column=EpisodeAccessLog.id, limit=limit, cursor=cursor)


def episode_document(episode: Episode, parts: Sequence[EpisodeSegment]) -> dict[str, Any]:
    return {
        "id": episode.id,
        "agent_id": episode.agent_id,
        "user_id": episode.user_id,
        "title": episode.title,
        "source": episode.source,
        "status": episode.status,
        "started_at": episode.started_at.isoformat(),
        "ended_at": episode.ended_at.isoformat(),
        "decay": episode.decay,
        "model_id": episode.model_id,
        "segments": [
            {
                "kind": s.kind,
                "source_id": s.source_id,
                "role": s.role,
                "content": s.content,
                "occurred_at": s.occurred_at.isoformat(),
            }
            for s in parts
        ],
    }


async def export_lines(
    *, session: AsyncSession, agent_id: str, reader: Principal | None, batch: int = 200
) -> AsyncIterator[str]:
    """An agent's memory as JSON lines, one episode (with its segments) per line, oldest first."""
    last = ""
    while True:
        stmt = select(Episode).where(Episode.agent_id == agent_id, Episode.id > last).order_by(Episode.id).limit(batch)
        condition = visible(reader)
        if condition is not None:
            stmt = stmt.where(condition)
        rows = list((await session.scalars(stmt)).all())
        if not rows:
            return
        for episode in rows:
            parts = await segments(session=session, episode_id=episode.id)
            yield json.dumps(episode_document(episode, parts), ensure_ascii=False) + "\n"
        last = rows[-1].id


async def forget(
    *,
    session: AsyncSession,
    memory: Memory,
    agent_id: str,
    episode_ids: Sequence[str] | None,
    actor: audit.Actor,
    reader: Principal | None,
) -> int:
    """Delete an agent's episodes (all, or the given ones), their segments and their vectors; audited."""
    stmt = select(Episode.id).where(Episode.agent_id == agent_id)
    if episode_ids is not None:
        stmt = stmt.where(Episode.id.in_(list(episode_ids)))
    condition = visible(reader)
    if condition is not None:
        stmt = stmt.where(condition)
    ids = list((await session.scalars(stmt)).all())
    async with memory.write_lock:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            await session.execute(delete(EpisodeSegment).where(EpisodeSegment.episode_id.in_(chunk)))
            await session.execute(delete(Episode).where(Episode.id.in_(chunk)))
        await audit.record(
            session=session,
            actor=actor,
            action="memory.forget",
            resource_type="agent",
            resource_id=agent_id,
            decision="deleted",
            details={"episodes": len(ids), "scope": "all" if episode_ids is None else "selected"},
        )
        await session.flush()
        await memory.store.delete(ids)
    return len(ids)


async def count(*, session: AsyncSession, agent_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(Episode)
    if agent_id is not None:
        stmt = stmt.where(Episode.agent_id == agent_id)
    return int(await session.scalar(stmt) or 0)


async def remember(*, session: AsyncSession, memory: Memory, agent_id: str, text: str, actor: str) -> Episode:
    """Store a fact as its own (closed) episode: `memory_remember`, or a person through the API."""
    event = Event(agent_id, memory.clock(), "note", text, "manual", role=actor[:32], completes_task=True)
    async with memory.write_lock:
        latest = await _latest(session, agent_id)
        if latest is not None and not latest.closed:
            latest.closed = True  # a remembered fact never joins the running episode
            await session.flush()
        [episode] = await record_events(session=session, memory=memory, events=[event])
    return episode
