"""An episode's context from other domains, read through their services: the canvas actions in it.

An episode's executions and workflow runs are the source ids of its segments (a message or tool call
names its execution, a workflow_run segment its run); with the agent and the episode's time span they
make the `WorkSpan` the canvas domain answers for. An archived episode has no segments left in the hot
store, so only the time span speaks for it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.canvas import reads as canvas_reads
from atom.memory.models import Episode, EpisodeSegment

EXECUTION_KINDS = frozenset({"message", "tool_call"})
RUN_KINDS = frozenset({"workflow_run"})


async def canvas_actions(session: AsyncSession, episode_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """For the episodes asked, those with canvas actions, each with its actions (oldest first)."""
    if not episode_ids:
        return {}
    episodes = (await session.scalars(select(Episode).where(Episode.id.in_(episode_ids)))).all()
    sources = (
        await session.execute(
            select(EpisodeSegment.episode_id, EpisodeSegment.kind, EpisodeSegment.source_id).where(
                EpisodeSegment.episode_id.in_(episode_ids),
                EpisodeSegment.source_id.is_not(None),
                EpisodeSegment.kind.in_(EXECUTION_KINDS | RUN_KINDS),
            )
        )
    ).all()
    executions: dict[str, set[str]] = {}
    runs: dict[str, set[str]] = {}
    for episode_id, kind, source_id in sources:
        if source_id is not None:
            (executions if kind in EXECUTION_KINDS else runs).setdefault(episode_id, set()).add(source_id)
    spans = [
        canvas_reads.WorkSpan(
            key=e.id,
            agent_id=e.agent_id,
            start=e.started_at,
            end=e.ended_at,
            execution_ids=frozenset(executions.get(e.id, ())),
            run_ids=frozenset(runs.get(e.id, ())),
        )
        for e in episodes
    ]
    return await canvas_reads.actions_in(session=session, spans=spans)
