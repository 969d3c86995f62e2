"""The constitutional rule set: versions of a YAML source, the newest in force (docs/graduation.md)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.db.base import utcnow
from atom.graduation import rules
from atom.graduation.models import RuleSetVersion


async def current_rules(*, session: AsyncSession) -> tuple[rules.RuleSet, RuleSetVersion | None]:
    row = await session.scalar(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1))
    return (rules.parse(row.source) if row is not None else rules.EMPTY), row


async def save_rules(*, session: AsyncSession, source: str, actor: audit.Actor) -> RuleSetVersion:
    parsed = rules.parse(source)  # refused whole, with the rule and line, before anything is stored
    latest = await session.scalar(select(func.max(RuleSetVersion.version)))
    row = RuleSetVersion(
        version=(latest or 0) + 1,
        source=source,
        rule_ids=[rule.id for rule in parsed.rules],
        created_by=actor.id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="graduation.rules.update",
        resource_type="rule_set",
        resource_id=row.id,
        decision="done",
        details={"version": row.version, "rules": row.rule_ids},
    )
    return row


async def rule_versions(*, session: AsyncSession) -> list[RuleSetVersion]:
    return list((await session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()))).all())
