"""Skills over HTTP: import (JSON or zip), the registry, findings, trust/ban, scan, run, an agent's skills."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from atom.audit import service as audit
from atom.deps import (
    DEFAULT_PAGE_LIMIT,
    ApproverDep,
    CursorQuery,
    DatabaseDep,
    LimitQuery,
    OperatorDep,
    SessionDep,
    SettingsDep,
    ViewerDep,
)
from atom.errors import Forbidden, InvalidInput
from atom.llm.gateway import get_gateway
from atom.pagination import Page
from atom.skills import bundle, review, runs, service
from atom.skills.models import Skill, SkillState, SkillVersion
from atom.skills.schemas import (
    AgentSkillsRead,
    BanRequest,
    DecisionRead,
    ImportOutcomeRead,
    ImportReport,
    ReviewOutcomeRead,
    ReviewRead,
    ReviewRequest,
    RunRead,
    RunRequest,
    SkillImport,
    SkillInstructionRead,
    SkillRead,
    SkillToolRead,
    SkillVersionRead,
    TrustRequest,
    VersionSummary,
)

router = APIRouter(prefix="/api/skills", tags=["skills"])


def _report(outcomes: list[service.ImportOutcome]) -> ImportReport:
    verdicts: dict[str, int] = {}
    for o in outcomes:
        if o.status != "error":
            verdicts[o.verdict or "scan_failed"] = verdicts.get(o.verdict or "scan_failed", 0) + 1
    return ImportReport(items=[ImportOutcomeRead(**o.__dict__) for o in outcomes], verdicts=verdicts)


async def _skill_read(session: SessionDep, skill: Skill) -> SkillRead:
    latest = (await service.latest_versions(session=session, skills=[skill])).get(skill.id)
    return _with_latest(skill, latest)


def _with_latest(skill: Skill, latest: SkillVersion | None) -> SkillRead:
    read = SkillRead.model_validate(skill)
    if latest is not None:
        read.latest = VersionSummary.model_validate(latest)
        read.findings = service.summary(latest)
    read.update_pending = skill.latest_version_id != skill.active_version_id and skill.active_version_id is not None
    return read


@router.post("", response_model=ImportReport, status_code=201)
async def import_skill(body: SkillImport, principal: OperatorDep, session: SessionDep) -> ImportReport:
    members = {**{p: t.encode() for p, t in body.files.items()}, "SKILL.md": body.skill_md.encode()}
    for path in body.files:
        bundle.safe_relative(path)
    found = bundle.build_bundle(body.folder_name, members, f"api:{body.folder_name}")
    outcomes = await service.import_bundles(
        session=session, bundles=[found], actor=audit.Actor.user(principal.user_id), update=body.update
    )
    return _report(outcomes)


@router.post("/import", response_model=ImportReport, status_code=201)
async def import_archive(
    request: Request, principal: OperatorDep, session: SessionDep, update: bool = False
) -> ImportReport:
    """A zip archive as the request body (`Content-Type: application/zip`): one skill or a tree of them."""
    if request.headers.get("content-type", "").split(";")[0].strip() not in (
        "application/zip",
        "application/x-zip-compressed",
    ):
        raise InvalidInput("Send the archive with Content-Type: application/zip.", code="SKILL_ARCHIVE_INVALID")
    found = bundle.read_zip(await request.body(), name="upload.zip")
    outcomes = await service.import_bundles(
        session=session, bundles=found, actor=audit.Actor.user(principal.user_id), update=update
    )
    return _report(outcomes)


@router.get("", response_model=Page[SkillRead])
async def list_skills(
    principal: ViewerDep,
    session: SessionDep,
    state: SkillState | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[SkillRead]:
    skills, next_cursor = await service.list_skills(session=session, limit=limit, cursor=cursor, state=state)
    latest = await service.latest_versions(session=session, skills=skills)
    return Page(items=[_with_latest(s, latest.get(s.id)) for s in skills], next_cursor=next_cursor)


@router.get("/for-agent", response_model=AgentSkillsRead)
async def skills_for_agent(
    principal: ViewerDep, session: SessionDep, agent_id: str = Query(min_length=1, max_length=36)
) -> AgentSkillsRead:
    found = await runs.agent_skills(session=session, agent_id=agent_id)
    return AgentSkillsRead(
        instructions=[SkillInstructionRead(**i.__dict__) for i in found.instructions],
        tools=[SkillToolRead(**t.__dict__) for t in found.tools],
    )


@router.get("/{ref}", response_model=SkillRead)
async def get_skill(ref: str, principal: ViewerDep, session: SessionDep) -> SkillRead:
    return await _skill_read(session, await service.get_skill(session=session, ref=ref))


@router.get("/{ref}/latest", response_model=SkillVersionRead)
async def latest_version(ref: str, principal: ViewerDep, session: SessionDep) -> SkillVersionRead:
    """The latest version in full: SKILL.md, bundled files, warnings and findings (file + line)."""
    skill = await service.get_skill(session=session, ref=ref)
    return SkillVersionRead.model_validate(
        await service.get_version(session=session, version_id=skill.latest_version_id)
    )


@router.get("/{ref}/versions", response_model=Page[VersionSummary])
async def list_versions(
    ref: str,
    principal: ViewerDep,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[VersionSummary]:
    skill = await service.get_skill(session=session, ref=ref)
    rows, next_cursor = await service.list_versions(session=session, skill_id=skill.id, limit=limit, cursor=cursor)
    return Page(items=[VersionSummary.model_validate(v) for v in rows], next_cursor=next_cursor)


@router.post("/{ref}/scan", response_model=SkillVersionRead)
async def scan_skill(ref: str, principal: OperatorDep, session: SessionDep) -> SkillVersionRead:
    version = await service.rescan(session=session, ref=ref, actor=audit.Actor.user(principal.user_id))
    return SkillVersionRead.model_validate(version)


@router.post("/{ref}/review", response_model=ReviewRead)
async def review_skill(
    ref: str,
    request: Request,
    principal: OperatorDep,
    db: DatabaseDep,
    settings: SettingsDep,
    body: ReviewRequest | None = None,
) -> ReviewRead:
    """Scan the latest version again and have the configured LLM review it; findings merged (docs/skills.md).
    A review that fails leaves the version without a verdict (Untrusted), said in `review.error`."""
    outcome = await review.review_latest(
        db=db,
        llm=get_gateway(request.app.state, db, settings),
        ref=ref,
        actor=audit.Actor.user(principal.user_id),
        model=body.model if body is not None else None,
    )
    async with db.session_scope() as session:
        version = await service.get_version(session=session, version_id=outcome.version_id)
        return ReviewRead(
            review=ReviewOutcomeRead.model_validate(outcome.__dict__), version=SkillVersionRead.model_validate(version)
        )


@router.post("/{ref}/trust", response_model=SkillRead)
async def trust_skill(ref: str, body: TrustRequest, principal: ApproverDep, session: SessionDep) -> SkillRead:
    skill = await service.trust(
        session=session, ref=ref, content_hash_seen=body.content_hash, actor=audit.Actor.user(principal.user_id)
    )
    return await _skill_read(session, skill)


@router.post("/{ref}/ban", response_model=SkillRead)
async def ban_skill(ref: str, body: BanRequest, principal: ApproverDep, session: SessionDep) -> SkillRead:
    skill = await service.ban(session=session, ref=ref, actor=audit.Actor.user(principal.user_id), reason=body.reason)
    return await _skill_read(session, skill)


def run_read(outcome: runs.RunOutcome) -> RunRead:
    read = RunRead(
        skill=outcome.skill,
        version=outcome.version,
        content_hash=outcome.content_hash,
        script=outcome.script,
        status="denied",
    )
    if outcome.decision is not None:
        d = outcome.decision
        read.decision = DecisionRead(
            allowed=d.allowed,
            reason_code=d.reason_code,
            reason=d.reason,
            complexity=d.complexity,
            required_level=d.required_level.value,
        )
    if outcome.result is not None:
        r = outcome.result
        read.status = "completed" if r.ok else "failed"
        read.exit_code, read.violation, read.stdout, read.stderr = r.exit_code, r.violation, r.stdout, r.stderr
        read.duration_ms, read.confinement = r.duration_ms, r.confinement
    return read


@router.post("/{ref}/run", response_model=RunRead)
async def run_skill(
    ref: str, body: RunRequest, principal: OperatorDep, session: SessionDep, settings: SettingsDep
) -> RunRead:
    """Run the trusted version in the sandbox; with `agent_id`, as that agent under governance."""
    outcome = await runs.run_skill(
        session=session,
        settings=settings,
        ref=ref,
        actor=audit.Actor.user(principal.user_id),
        agent_id=body.agent_id,
        script=body.script,
        args=body.args,
        stdin=body.stdin,
        timeout_s=body.timeout_s,
    )
    if outcome.denied:
        assert outcome.decision is not None
        await session.commit()  # the denial's audit records stay, though the request fails
        raise Forbidden(outcome.decision.reason, code="SKILL_RUN_DENIED", details=run_read(outcome).model_dump())
    return run_read(outcome)
