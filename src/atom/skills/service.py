"""The skills registry: import (parse + scan), versions pinned by content hash, trust and ban.

States: a new version is Untrusted; only an approver, naming the content hash whose findings they
saw, makes it Active; Banned is final. An update is a new version, scanned again, Untrusted until
trusted again: agents keep using the pinned active version meanwhile, so a later malicious
version of a trusted skill never slips in. A version whose scan failed (no verdict) or whose
verdict is malicious cannot be trusted. Running skills: `atom.skills.runs`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.db.base import utcnow
from atom.errors import Conflict, InvalidInput, NotFound
from atom.pagination import paginate
from atom.skills.bundle import SkillBundle, content_hash
from atom.skills.findings import Verdict
from atom.skills.manifest import ParseWarning
from atom.skills.models import Skill, SkillKind, SkillState, SkillVersion
from atom.skills.parser import parse_skill_md
from atom.skills.scanner import ScanReport, scan

RUNNABLE_SUFFIXES = (".py", ".sh", ".bash")


@dataclass(frozen=True)
class ImportOutcome:
    name: str
    source: str
    status: str  # created | updated | unchanged | error
    skill_id: str | None = None
    version_id: str | None = None
    verdict: str | None = None
    error_code: str | None = None
    message: str | None = None


def entrypoints(files: dict[str, str]) -> list[str]:
    """Bundled scripts a code skill can run: scripts/* and top-level files with a runnable suffix."""
    return sorted(p for p in files if p.endswith(RUNNABLE_SUFFIXES) and (p.startswith("scripts/") or "/" not in p))


def _prepare(bundle: SkillBundle) -> tuple[dict[str, str], str]:
    """The files to store and the kind; an older-Atom `type: python` skill's code block becomes main.py."""
    files = dict(bundle.files)
    manifest = bundle.parsed.manifest
    if manifest.skill_type == "python" and not entrypoints(files):
        block = next((b for b in bundle.parsed.code_blocks if b.language in ("python", "py", "python3")), None)
        if block is not None and "main.py" not in files:
            files["main.py"] = block.code + "\n"
            bundle.parsed.warnings.append(
                ParseWarning("python_block_as_main", f"`type: python`: the code block at line {block.line} is main.py.")
            )
    kind = SkillKind.CODE if entrypoints(files) else SkillKind.PROMPT
    return files, kind.value


def _host_warnings(bundle: SkillBundle) -> None:
    for name in bundle.parsed.manifest.requires.bins:
        if shutil.which(name) is None:
            bundle.parsed.warnings.append(
                ParseWarning("bin_missing_on_host", f"requires.bins names {name!r:.60}, which is not on this host.")
            )


def _apply_scan(version: SkillVersion, report: ScanReport) -> None:
    version.verdict = report.verdict.value if report.verdict else None
    version.findings = report.findings_json()
    version.scan_error = report.error
    version.scanner_version = report.scanner_version
    version.scanned_at = utcnow()


async def find_by_name(*, session: AsyncSession, name: str) -> Skill | None:
    return (await session.scalars(select(Skill).where(Skill.name == name))).first()


async def get_skill(*, session: AsyncSession, ref: str) -> Skill:
    """By id or by name."""
    skill = await session.get(Skill, ref) or await find_by_name(session=session, name=ref)
    if skill is None:
        raise NotFound(f"No skill {ref!r:.80}.", code="SKILL_NOT_FOUND")
    return skill


async def get_version(*, session: AsyncSession, version_id: str | None) -> SkillVersion:
    version = await session.get(SkillVersion, version_id) if version_id else None
    if version is None:
        raise NotFound("No such skill version.", code="SKILL_VERSION_NOT_FOUND")
    return version


async def import_bundle(
    *, session: AsyncSession, bundle: SkillBundle, actor: audit.Actor, update: bool = False
) -> tuple[Skill, SkillVersion, str]:
    """Store one parsed bundle as a new skill, or (with `update`) as a new version. Scans it first."""
    name = bundle.parsed.name
    files, kind = _prepare(bundle)
    digest = content_hash(bundle.skill_md, files)
    skill = await find_by_name(session=session, name=name)
    if skill is not None and not update:
        raise Conflict(
            f"A skill named {name!r} is already installed; import it as an update.",
            code="SKILL_EXISTS",
            details={"skill_id": skill.id},
        )
    if skill is not None and skill.state == SkillState.BANNED:
        raise Conflict(f"Skill {name!r} is banned; it takes no new versions.", code="SKILL_BANNED")
    if skill is not None:
        same = await session.scalar(
            select(SkillVersion.id).where(SkillVersion.skill_id == skill.id, SkillVersion.content_hash == digest)
        )
        if same is not None:
            raise Conflict(
                f"This exact version of {name!r} is already stored.",
                code="SKILL_VERSION_EXISTS",
                details={"version_id": same},
            )
    _host_warnings(bundle)
    report = scan(bundle)
    status = "updated" if skill is not None else "created"
    if skill is None:
        skill = Skill(name=name, state=SkillState.UNTRUSTED.value, created_by=actor.id)
        session.add(skill)
        await session.flush()
    number = (await session.scalar(select(func.count()).where(SkillVersion.skill_id == skill.id)) or 0) + 1
    version = SkillVersion(
        skill_id=skill.id,
        number=number,
        content_hash=digest,
        state=SkillState.UNTRUSTED.value,
        kind=kind,
        description=bundle.parsed.description,
        manifest=bundle.parsed.manifest.as_dict(),
        body=bundle.parsed.body,
        skill_md=bundle.skill_md.decode("utf-8", "replace"),
        files=files,
        warnings=[w.as_dict() for w in bundle.parsed.warnings],
        source=bundle.source[:500],
    )
    _apply_scan(version, report)
    session.add(version)
    await session.flush()
    skill.latest_version_id = version.id
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action=f"skill.{'update' if status == 'updated' else 'import'}",
        resource_type="skill",
        resource_id=skill.id,
        decision=version.verdict or "scan_failed",
        details={
            "name": name,
            "version": number,
            "content_hash": digest,
            "kind": kind,
            "findings": report.counts(),
            "scan_error": report.error,
            "warnings": len(version.warnings),
        },
    )
    return skill, version, status


async def import_bundles(
    *, session: AsyncSession, bundles: list[SkillBundle], actor: audit.Actor, update: bool = False
) -> list[ImportOutcome]:
    """Each bundle in its own savepoint: one bad skill is reported and leaves nothing behind."""
    # The import is audited first, before any read: that write makes this transaction a writer at once.
    # On SQLite a savepoint would otherwise open a deferred transaction whose reads pin a snapshot, and a
    # write another connection commits meanwhile (an API key's last-use record) fails the upgrade at once.
    await audit.record(
        session=session,
        actor=actor,
        action="skill.import",
        resource_type="skill",
        decision="started",
        details={"bundles": len(bundles), "update": update},
    )
    outcomes: list[ImportOutcome] = []
    for bundle in bundles:
        name = bundle.parsed.name
        try:
            async with session.begin_nested():
                skill, version, status = await import_bundle(session=session, bundle=bundle, actor=actor, update=update)
            outcomes.append(ImportOutcome(name, bundle.source, status, skill.id, version.id, version.verdict))
        except (Conflict, InvalidInput) as exc:
            outcomes.append(ImportOutcome(name, bundle.source, "error", error_code=exc.code, message=exc.message))
        except IntegrityError:  # another import stored the same name or version meanwhile
            message = f"{name!r} was stored by another import at the same time."
            outcomes.append(ImportOutcome(name, bundle.source, "error", error_code="SKILL_EXISTS", message=message))
    return outcomes


def static_report(skill: Skill, version: SkillVersion) -> ScanReport:
    """The static scanner's report on a stored version (parsed again from what was stored)."""
    parsed = parse_skill_md(version.skill_md.encode("utf-8"), folder_name=skill.name)
    bundled = {p: t for p, t in version.files.items()}
    return scan(SkillBundle(parsed=parsed, skill_md=version.skill_md.encode(), files=bundled, source=version.source))


async def latest(*, session: AsyncSession, ref: str) -> tuple[Skill, SkillVersion]:
    skill = await get_skill(session=session, ref=ref)
    return skill, await get_version(session=session, version_id=skill.latest_version_id)


async def store_scan(
    *,
    session: AsyncSession,
    skill: Skill,
    version: SkillVersion,
    report: ScanReport,
    actor: audit.Actor,
    details: dict[str, Any] | None = None,
) -> SkillVersion:
    """Keep a scan's outcome; an active version that now scans malicious or fails loses its trust."""
    _apply_scan(version, report)
    if version.state == SkillState.ACTIVE and version.verdict in (None, Verdict.MALICIOUS.value):
        version.state = SkillState.UNTRUSTED.value
        skill.active_version_id = None
        skill.state = SkillState.UNTRUSTED.value
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="skill.scan",
        resource_type="skill",
        resource_id=skill.id,
        decision=version.verdict or "scan_failed",
        details={"version": version.number, "findings": report.counts(), "error": report.error, **(details or {})},
    )
    return version


async def rescan(*, session: AsyncSession, ref: str, actor: audit.Actor) -> SkillVersion:
    """Scan the latest version again (static analysis only; the LLM review: `atom.skills.review`)."""
    skill, version = await latest(session=session, ref=ref)
    return await store_scan(
        session=session, skill=skill, version=version, report=static_report(skill, version), actor=actor
    )


async def trust(*, session: AsyncSession, ref: str, content_hash_seen: str, actor: audit.Actor) -> Skill:
    """Untrusted -> Active for the latest version, by an approver who saw its findings (named by hash)."""
    skill = await get_skill(session=session, ref=ref)
    if skill.state == SkillState.BANNED:
        raise Conflict(f"Skill {skill.name!r} is banned.", code="SKILL_BANNED")
    version = await get_version(session=session, version_id=skill.latest_version_id)
    if version.content_hash != content_hash_seen:
        raise Conflict(
            "The skill changed since you looked: review the latest version's findings.",
            code="SKILL_VERSION_CHANGED",
            details={"content_hash": version.content_hash},
        )
    if version.state == SkillState.ACTIVE:
        raise Conflict("This version is already trusted.", code="SKILL_ALREADY_ACTIVE")
    if version.verdict is None:
        raise Conflict(
            "This version has no completed scan; scan it again before trusting it.",
            code="SKILL_SCAN_MISSING",
            details={"scan_error": version.scan_error},
        )
    if version.verdict == Verdict.MALICIOUS.value:
        raise Conflict("A skill the scanner found malicious cannot be trusted; ban it.", code="SKILL_MALICIOUS")
    if skill.active_version_id:
        previous = await session.get(SkillVersion, skill.active_version_id)
        if previous is not None:
            previous.state = SkillState.UNTRUSTED.value
    version.state = SkillState.ACTIVE.value
    version.trusted_by, version.trusted_at = actor.id, utcnow()
    skill.active_version_id = version.id
    skill.state = SkillState.ACTIVE.value
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="skill.trust",
        resource_type="skill",
        resource_id=skill.id,
        decision="active",
        details={
            "version": version.number,
            "content_hash": version.content_hash,
            "verdict": version.verdict,
            "findings": len(version.findings),
        },
    )
    return skill


async def ban(*, session: AsyncSession, ref: str, actor: audit.Actor, reason: str) -> Skill:
    skill = await get_skill(session=session, ref=ref)
    skill.state = SkillState.BANNED.value
    skill.active_version_id = None
    for version in await session.scalars(select(SkillVersion).where(SkillVersion.skill_id == skill.id)):
        version.state = SkillState.BANNED.value
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="skill.ban",
        resource_type="skill",
        resource_id=skill.id,
        decision="banned",
        reason=reason[:500],
    )
    return skill


async def list_skills(
    *, session: AsyncSession, limit: int, cursor: str | None, state: SkillState | None = None
) -> tuple[list[Skill], str | None]:
    stmt = select(Skill)
    if state is not None:
        stmt = stmt.where(Skill.state == state.value)
    return await paginate(session, stmt, id_column=Skill.id, limit=limit, cursor=cursor)


async def list_versions(
    *, session: AsyncSession, skill_id: str, limit: int, cursor: str | None
) -> tuple[list[SkillVersion], str | None]:
    stmt = select(SkillVersion).where(SkillVersion.skill_id == skill_id)
    return await paginate(session, stmt, id_column=SkillVersion.id, limit=limit, cursor=cursor)


async def latest_versions(*, session: AsyncSession, skills: list[Skill]) -> dict[str, SkillVersion]:
    ids = [s.latest_version_id for s in skills if s.latest_version_id]
    if not ids:
        return {}
    rows = await session.scalars(select(SkillVersion).where(SkillVersion.id.in_(ids)))
    return {v.skill_id: v for v in rows}


async def active_skills(*, session: AsyncSession) -> list[tuple[Skill, SkillVersion]]:
    """Every Active skill with its pinned version."""
    stmt = (
        select(Skill, SkillVersion)
        .join(SkillVersion, SkillVersion.id == Skill.active_version_id)
        .where(Skill.state == SkillState.ACTIVE.value, SkillVersion.state == SkillState.ACTIVE.value)
        .order_by(Skill.name)
    )
    return [(s, v) for s, v in (await session.execute(stmt)).all()]


def summary(version: SkillVersion) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in version.findings:
        counts[str(finding.get("severity"))] = counts.get(str(finding.get("severity")), 0) + 1
    return counts
