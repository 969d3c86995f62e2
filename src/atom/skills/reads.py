"""Read-only views of the registry: what agents are offered, read cheaply for every agent run (Active skills
without their bundles), and the dashboard's list filtered by state and verdict."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.pagination import paginate
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


SCAN_FAILED = "scan_failed"  # the verdict filter for versions whose scan left no verdict


@dataclass(frozen=True)
class SkillRow:
    skill: Skill
    latest: SkillVersion | None
    active_number: int | None  # the trusted version's number when it is not the latest
    findings: dict[str, int]  # the latest version's findings by severity


def severity_counts(version: SkillVersion | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in version.findings if version is not None else []:
        key = str(finding.get("severity"))
        counts[key] = counts.get(key, 0) + 1
    return counts


async def list_rows(
    *, session: AsyncSession, state: SkillState | None, verdict: str | None, limit: int, cursor: str | None
) -> tuple[list[SkillRow], str | None]:
    """Skills newest first with their latest version; `verdict` is a Verdict value or SCAN_FAILED."""
    stmt = select(Skill)
    if state is not None:
        stmt = stmt.where(Skill.state == state.value)
    if verdict is not None:
        stmt = stmt.join(SkillVersion, SkillVersion.id == Skill.latest_version_id)
        stmt = stmt.where(SkillVersion.verdict.is_(None) if verdict == SCAN_FAILED else SkillVersion.verdict == verdict)
    skills, next_cursor = await paginate(session, stmt, id_column=Skill.id, limit=limit, cursor=cursor)
    wanted = {s.latest_version_id for s in skills} | {s.active_version_id for s in skills}
    ids = [i for i in wanted if i]
    versions = (
        {v.id: v for v in await session.scalars(select(SkillVersion).where(SkillVersion.id.in_(ids)))} if ids else {}
    )
    rows = []
    for skill in skills:
        latest = versions.get(skill.latest_version_id or "")
        active = versions.get(skill.active_version_id or "")
        pending = active is not None and latest is not None and active.id != latest.id
        rows.append(SkillRow(skill, latest, active.number if pending and active else None, severity_counts(latest)))
    return rows, next_cursor


async def versions_of(*, session: AsyncSession, skill_id: str, limit: int = 50) -> list[SkillVersion]:
    """A skill's versions, newest first."""
    stmt = select(SkillVersion).where(SkillVersion.skill_id == skill_id).order_by(SkillVersion.number.desc())
    return list((await session.scalars(stmt.limit(limit))).all())
