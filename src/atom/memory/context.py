"""An episode's context from other domains, read through their services: the canvas actions in it and
the feedback people gave on its work.

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
from atom.feedback import service as feedback_service
from atom.memory.models import Episode, EpisodeSegment

EXECUTION_KINDS = frozenset({"message", "tool_call"})
RUN_KINDS = frozenset({"workflow_run"})
STEP_KINDS = frozenset({"workflow_step"})


async def _sources(session: AsyncSession, episode_ids: list[str], kinds: frozenset[str]) -> list[tuple[str, str, str]]:
    """(episode id, segment kind, source id) of the episodes' segments of these kinds."""
    rows = await session.execute(
        select(EpisodeSegment.episode_id, EpisodeSegment.kind, EpisodeSegment.source_id).where(
            EpisodeSegment.episode_id.in_(episode_ids),
            EpisodeSegment.source_id.is_not(None),
            EpisodeSegment.kind.in_(kinds),
        )
    )
    return [(e, k, str(s)) for e, k, s in rows.all()]


async def feedback_scores(session: AsyncSession, episode_ids: list[str]) -> dict[str, float]:
    """For the episodes asked, the average feedback score (RULES.md: thumbs +1 / -1, a rating r -> (r - 3) / 2)
    of the agent runs and workflow steps in them; an episode nobody rated is left out."""
    if not episode_ids:
        return {}
    sources = await _sources(session, episode_ids, EXECUTION_KINDS | STEP_KINDS)
    executions = sorted({s for _, kind, s in sources if kind in EXECUTION_KINDS})
    steps = sorted({s for _, kind, s in sources if kind in STEP_KINDS})
    scores = await feedback_service.scores_for(session=session, execution_ids=executions, step_ids=steps)
    per_episode: dict[str, dict[str, list[float]]] = {}
    for episode_id, _, source_id in sources:
        if source_id in scores:
            per_episode.setdefault(episode_id, {})[source_id] = scores[source_id]  # a run counts once
    return {
        episode_id: sum(sum(v) for v in targets.values()) / sum(len(v) for v in targets.values())
        for episode_id, targets in per_episode.items()
    }


async def canvas_actions(session: AsyncSession, episode_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """For the episodes asked, those with canvas actions, each with its actions (oldest first)."""
    if not episode_ids:
        return {}
    episodes = (await session.scalars(select(Episode).where(Episode.id.in_(episode_ids)))).all()
    sources = await _sources(session, episode_ids, EXECUTION_KINDS | RUN_KINDS)
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
