"""What agents are offered, read cheaply for every agent run: Active skills without their bundles."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.skills.models import Skill, SkillState, SkillVersion
from atom.skills.service import entrypoints


@dataclass(frozen=True)
class ActiveSkill:
    """What an agent's prompt and tools need of an Active skill (not its files or SKILL.md)."""

    name: str
    version_id: str
    number: int
    content_hash: str
    kind: str
    description: str


async def active_summaries(*, session: AsyncSession) -> list[ActiveSkill]:
    """Every Active skill's pinned version, by name, without loading the bundles."""
    stmt = (
        select(
            Skill.name,
            SkillVersion.id,
            SkillVersion.number,
            SkillVersion.content_hash,
            SkillVersion.kind,
            SkillVersion.description,
        )
        .join(SkillVersion, SkillVersion.id == Skill.active_version_id)
        .where(Skill.state == SkillState.ACTIVE.value, SkillVersion.state == SkillState.ACTIVE.value)
        .order_by(Skill.name)
    )
    return [ActiveSkill(*row) for row in (await session.execute(stmt)).all()]


# A version's files never change (it is named by their hash), so its scripts are read once per process.
_scripts: dict[str, list[str]] = {}
SCRIPTS_CACHED = 1024


async def version_scripts(*, session: AsyncSession, version_ids: list[str]) -> dict[str, list[str]]:
    """The runnable scripts of each version."""
    found = {v: _scripts[v] for v in version_ids if v in _scripts}
    missing = [v for v in version_ids if v not in found]
    if missing:
        rows = await session.execute(select(SkillVersion.id, SkillVersion.files).where(SkillVersion.id.in_(missing)))
        for version_id, files in rows.all():
            found[version_id] = entrypoints(files)
            while len(_scripts) >= SCRIPTS_CACHED:
                _scripts.pop(next(iter(_scripts)))
            _scripts[version_id] = found[version_id]
    return found
