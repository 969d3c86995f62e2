"""Community skills: the registry with verdicts and findings, filtered by status and verdict; importing a
zip (operators); a skill's page with its metadata, findings and files (flagged lines highlighted), its
warnings and versions; Scan again (operators), Trust / Ban (approvers; a malicious verdict cannot be
trusted, and the page says why). A viewer sees no buttons and a forged POST is 403."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.deps import DatabaseDep, SessionDep
from atom.errors import AtomError, Conflict, InvalidInput, NotFound
from atom.security import service as security_service
from atom.skills import bundle, reads, service
from atom.skills.findings import Verdict
from atom.skills.models import SkillState
from atom.skills.schemas import BanRequest
from atom.web import source_view
from atom.web.auth import ApproverForm, OperatorForm, PageRouter, ViewerPage, WebUser
from atom.web.forms import validate
from atom.web.ui import redirect, render
from atom.web.uploads import OperatorUpload

router = PageRouter()

RefPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
STATES = tuple(s.value for s in SkillState)
VERDICTS = (*(v.value for v in Verdict), reads.SCAN_FAILED)
PAGE_SIZE = 50
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream", "")


def _list_context(
    request: Request, rows: list[reads.SkillRow], state: str, verdict: str, next_cursor: str | None
) -> dict[str, Any]:
    return {
        "title": "Skills",
        "rows": rows,
        "state": state,
        "verdict": verdict,
        "states": STATES,
        "verdicts": VERDICTS,
        "next_cursor": next_cursor,
        "report": None,
        "errors": {},
        "max_bytes": request.app.state.settings.max_body_bytes,
    }


async def _rows(session: AsyncSession, state: str, verdict: str, cursor: str | None) -> Any:
    return await reads.list_rows(
        session=session,
        state=SkillState(state) if state else None,
        verdict=verdict or None,
        limit=PAGE_SIZE,
        cursor=cursor,
    )


@router.get("/skills")
async def skill_list(
    request: Request,
    user: ViewerPage,
    session: SessionDep,
    state: Annotated[str, Query(max_length=16)] = "",
    verdict: Annotated[str, Query(max_length=16)] = "",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    state = state if state in STATES else ""
    verdict = verdict if verdict in VERDICTS else ""
    rows, next_cursor = await _rows(session, state, verdict, cursor)
    return render(request, "skills.html", _list_context(request, rows, state, verdict, next_cursor))


@router.post("/skills/import")
async def import_zip(request: Request, upload_user: OperatorUpload, db: DatabaseDep) -> Response:
    """The API's zip import (`POST /api/skills/import`) from a form: the same reader, limits and checks."""
    user, upload = upload_user
    errors: dict[str, str] = {}
    report = None
    data = b""
    filename = (upload.file.filename or "") if upload.file is not None else ""
    if upload.file is None or not filename:
        errors["archive"] = "Choose a .zip file."
    else:
        try:
            data = await upload.file.read()
        finally:
            await upload.file.close()
        if (upload.file.content_type or "") not in ZIP_TYPES and not filename.lower().endswith(".zip"):
            errors["archive"] = "Upload a .zip archive."
        elif not data:
            errors["archive"] = "The file is empty."
    update = upload.fields.get("update") == "yes"
    if not errors:
        try:
            found = bundle.read_zip(data, name=filename[:200])
            async with db.session_scope() as session:
                report = await service.import_bundles(
                    session=session, bundles=found, actor=audit.Actor.user(user.principal.user_id), update=update
                )
        except AtomError as exc:
            errors["archive"] = exc.message
    async with db.session_scope() as session:
        rows, next_cursor = await _rows(session, "", "", None)
    context = _list_context(request, rows, "", "", next_cursor)
    context.update(report=report, errors=errors, update=update)
    return render(request, "skills.html", context, status_code=422 if errors else 200)


async def _detail(session: AsyncSession, ref: str) -> dict[str, Any]:
    skill = await service.get_skill(session=session, ref=ref)
    version = await service.get_version(session=session, version_id=skill.latest_version_id)
    versions = await reads.versions_of(session=session, skill_id=skill.id)
    trusted_by = None
    active = next((v for v in versions if v.id == skill.active_version_id), None)
    if active is not None and active.trusted_by:
        try:
            trusted_by = (await security_service.get_user(session=session, user_id=active.trusted_by)).username
        except NotFound:
            trusted_by = active.trusted_by
    sources, findings = source_view.build(version.skill_md, version.files, version.findings)
    critical = [f for f in findings if f.severity == "critical"]
    return {
        "title": skill.name,
        "skill": skill,
        "version": version,
        "versions": versions,
        "active": active,
        "trusted_by": trusted_by,
        "sources": sources,
        "findings": findings,
        "critical": critical,
        "counts": reads.severity_counts(version),
        "manifest": version.manifest,
        "errors": {},
        "values": {},
    }


def _show(request: Request, context: dict[str, Any], *, status_code: int = 200) -> Response:
    return render(request, "skill.html", context, status_code=status_code)


@router.get("/skills/{ref}")
async def skill_page(request: Request, ref: RefPath, user: ViewerPage, session: SessionDep) -> Response:
    return _show(request, await _detail(session, ref))


async def _again(
    request: Request, db: DatabaseDep, ref: str, errors: dict[str, str], values: dict[str, str]
) -> Response:
    async with db.session_scope() as session:
        context = await _detail(session, ref)
    context.update(errors=errors, values=values)
    return _show(request, context, status_code=409 if "form" in errors else 422)


@router.post("/skills/{ref}/trust")
async def trust(request: Request, ref: RefPath, form_user: ApproverForm, db: DatabaseDep) -> Response:
    """Trust exactly the version whose findings the approver saw (its content hash is in the form)."""
    user, form = form_user
    seen = form.get("content_hash").strip()
    if not seen:
        return await _again(request, db, ref, {"form": "The content hash you trust is missing; reload the page."}, {})
    try:
        async with db.session_scope() as session:
            skill = await service.trust(session=session, ref=ref, content_hash_seen=seen, actor=_actor(user))
        return redirect(f"/skills/{skill.id}?flash=skill_trusted")
    except Conflict as exc:
        return await _again(request, db, ref, {"form": exc.message}, {})


@router.post("/skills/{ref}/ban")
async def ban(request: Request, ref: RefPath, form_user: ApproverForm, db: DatabaseDep) -> Response:
    user, form = form_user
    reason = form.get("reason").strip()
    body, errors = validate(BanRequest, {"reason": reason}, prefix="ban_")
    if body is None:
        return await _again(request, db, ref, errors, {"ban_reason": reason[:500]})
    async with db.session_scope() as session:
        skill = await service.ban(session=session, ref=ref, actor=_actor(user), reason=body.reason)
    return redirect(f"/skills/{skill.id}?flash=skill_banned")


@router.post("/skills/{ref}/scan")
async def scan_again(request: Request, ref: RefPath, form_user: OperatorForm, db: DatabaseDep) -> Response:
    user, _ = form_user
    try:
        async with db.session_scope() as session:
            await service.rescan(session=session, ref=ref, actor=_actor(user))
            skill = await service.get_skill(session=session, ref=ref)
    except InvalidInput as exc:
        return await _again(request, db, ref, {"form": exc.message}, {})
    return redirect(f"/skills/{skill.id}?flash=skill_scanned")


def _actor(user: WebUser) -> audit.Actor:
    return audit.Actor.user(user.principal.user_id)
