"""Canvases and custom components over HTTP (/api/canvases, /api/canvas-components)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from atom.canvas import components, flows, views
from atom.canvas import reads as canvas_reads
from atom.canvas import service as canvas_service
from atom.canvas.coordination import Editor
from atom.canvas.models import CanvasKind, CanvasStatus
from atom.canvas.schemas import (
    ApprovalRequest,
    CanvasAuditRead,
    CanvasCreate,
    CanvasDetail,
    CanvasEdit,
    CanvasRead,
    ComponentCreate,
    ComponentDetail,
    ComponentRead,
    ComponentVersionCreate,
    ComponentVersionRead,
    LockRequest,
    ModeRequest,
    ParticipantRead,
    ParticipantRequest,
    RollbackRequest,
    SubmitRequest,
)
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
from atom.errors import InvalidInput
from atom.pagination import Page
from atom.security.principal import Principal

router = APIRouter(prefix="/api/canvases", tags=["canvases"])
components_router = APIRouter(prefix="/api/canvas-components", tags=["canvases"])

CanvasId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
AgentIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
ComponentRef = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
IdQuery = Annotated[str | None, Query(max_length=36)]


async def _visible(canvas_id: CanvasId, principal: ViewerDep, session: SessionDep) -> str:
    """The canvas id, once the caller may see the canvas (another person's chat canvas is a 404)."""
    await canvas_service.get(session=session, canvas_id=canvas_id, reader=principal)
    return canvas_id


VisibleCanvas = Annotated[str, Depends(_visible)]


async def _detail(session: Any, canvas_id: str, reader: Principal) -> CanvasDetail:
    canvas = await canvas_service.get(session=session, canvas_id=canvas_id, fresh=True, reader=reader)
    members = await canvas_service.participants(session=session, canvas_id=canvas_id)
    return CanvasDetail.model_validate(
        {
            **CanvasRead.model_validate(canvas).model_dump(),
            "participants": [ParticipantRead.model_validate(m) for m in members],
            "rendered": views.rendered(canvas),
        }
    )


@router.get("", response_model=Page[CanvasRead])
async def list_canvases(
    principal: ViewerDep,
    session: SessionDep,
    session_id: IdQuery = None,
    agent_id: IdQuery = None,
    status: CanvasStatus | None = None,
    kind: CanvasKind | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[CanvasRead]:
    rows, next_cursor = await canvas_reads.list_canvases(
        session=session,
        limit=limit,
        cursor=cursor,
        session_id=session_id,
        agent_id=agent_id,
        status=status,
        kind=kind,
        reader=principal,
    )
    return Page(items=[CanvasRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("", response_model=CanvasDetail, status_code=201)
async def create_canvas(body: CanvasCreate, principal: OperatorDep, session: SessionDep) -> CanvasDetail:
    """A canvas set up by a person, e.g. a shared sheet several agents edit in locked mode."""
    if body.kind is CanvasKind.COMPONENT:
        raise InvalidInput(
            "Custom component canvases are presented by agents (present_component).", details={"field": "kind"}
        )
    canvas = await canvas_service.create(
        session=session,
        kind=body.kind,
        title=body.title,
        content=body.content,
        editor=Editor(user_id=principal.user_id),
        session_id=body.session_id,
        mode=body.mode,
        collaborators=[(p.agent_id, p.role) for p in body.participants],
        reader=principal,
    )
    return await _detail(session, canvas.id, principal)


@router.get("/{canvas_id}", response_model=CanvasDetail)
async def get_canvas(canvas_id: CanvasId, principal: ViewerDep, session: SessionDep) -> CanvasDetail:
    return await _detail(session, canvas_id, principal)


@router.get("/{canvas_id}/audit", response_model=Page[CanvasAuditRead])
async def canvas_audit(
    canvas_id: CanvasId,
    principal: ViewerDep,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[CanvasAuditRead]:
    """Every action on the canvas (also refused ones), newest first."""
    rows, next_cursor = await canvas_reads.audit_rows(session=session, canvas_id=canvas_id, limit=limit, cursor=cursor)
    return Page(items=[CanvasAuditRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("/{canvas_id}/edits", response_model=CanvasRead)
async def edit_canvas(
    canvas_id: VisibleCanvas, body: CanvasEdit, principal: OperatorDep, db: DatabaseDep
) -> CanvasRead:
    """A person's edit: replace and merge name `expected_version` (a stale one is 409, nothing changed)."""
    editor = Editor(user_id=principal.user_id)

    async def work(session: Any) -> CanvasRead:
        canvas = await canvas_service.update(
            session=session,
            canvas_id=canvas_id,
            editor=editor,
            op=body.op,
            data=body.content,
            expected_version=body.expected_version,
            title=body.title,
        )
        return CanvasRead.model_validate(canvas)

    return await flows.act(db, canvas_id, "update", editor, work)


@router.post("/{canvas_id}/submit", response_model=CanvasRead)
async def submit_form(
    canvas_id: VisibleCanvas, body: SubmitRequest, principal: OperatorDep, db: DatabaseDep, settings: SettingsDep
) -> CanvasRead:
    """Submit a form: validated against its schema (422 naming each field); the agent waiting for it gets it."""
    canvas = await flows.submit_form(
        db=db, settings=settings, canvas_id=canvas_id, values=body.values, submitter=Editor(user_id=principal.user_id)
    )
    return CanvasRead.model_validate(canvas)


@router.post("/{canvas_id}/lock", response_model=CanvasRead)
async def lock_canvas(
    canvas_id: VisibleCanvas, body: LockRequest, principal: OperatorDep, db: DatabaseDep, settings: SettingsDep
) -> CanvasRead:
    editor = Editor(user_id=principal.user_id)

    async def work(session: Any) -> CanvasRead:
        canvas = await canvas_service.lock(
            session=session, canvas_id=canvas_id, editor=editor, acquire=body.acquire, ttl_s=settings.canvas_lock_ttl_s
        )
        return CanvasRead.model_validate(canvas)

    return await flows.act(db, canvas_id, "lock" if body.acquire else "unlock", editor, work)


@router.post("/{canvas_id}/close", response_model=CanvasRead)
async def close_canvas(canvas_id: VisibleCanvas, principal: OperatorDep, session: SessionDep) -> CanvasRead:
    canvas = await canvas_service.close(session=session, canvas_id=canvas_id, editor=Editor(user_id=principal.user_id))
    return CanvasRead.model_validate(canvas)


@router.put("/{canvas_id}/mode", response_model=CanvasRead)
async def set_mode(
    canvas_id: VisibleCanvas, body: ModeRequest, principal: OperatorDep, session: SessionDep
) -> CanvasRead:
    canvas = await canvas_service.set_mode(
        session=session, canvas_id=canvas_id, editor=Editor(user_id=principal.user_id), mode=body.mode
    )
    return CanvasRead.model_validate(canvas)


@router.put("/{canvas_id}/participants/{agent_id}", response_model=CanvasDetail)
async def set_participant(
    canvas_id: VisibleCanvas,
    agent_id: AgentIdPath,
    body: ParticipantRequest,
    principal: OperatorDep,
    session: SessionDep,
) -> CanvasDetail:
    await canvas_service.set_participant(
        session=session,
        canvas_id=canvas_id,
        agent_id=agent_id,
        role=body.role,
        editor=Editor(user_id=principal.user_id),
    )
    return await _detail(session, canvas_id, principal)


async def _component_detail(session: Any, ref: str) -> ComponentDetail:
    component = await components.get_component(session=session, ref=ref)
    rows = await components.versions(session=session, component_id=component.id)
    return ComponentDetail.model_validate(
        {
            **ComponentRead.model_validate(component).model_dump(),
            "versions": [ComponentVersionRead.model_validate(r) for r in rows],
        }
    )


@components_router.get("", response_model=Page[ComponentRead])
async def list_components(
    principal: ViewerDep, session: SessionDep, limit: LimitQuery = DEFAULT_PAGE_LIMIT, cursor: CursorQuery = None
) -> Page[ComponentRead]:
    rows, next_cursor = await components.list_components(session=session, limit=limit, cursor=cursor)
    return Page(items=[ComponentRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@components_router.post("", response_model=ComponentDetail, status_code=201)
async def create_component(body: ComponentCreate, principal: OperatorDep, session: SessionDep) -> ComponentDetail:
    """HTML is sanitized (see `sanitized_changes`); a version with JavaScript waits for an approver."""
    component = await components.create(
        session=session,
        name=body.name,
        description=body.description,
        html=body.html,
        css=body.css,
        js=body.js,
        user_id=principal.user_id,
    )
    return await _component_detail(session, component.id)


@components_router.get("/{ref}", response_model=ComponentDetail)
async def get_component(ref: ComponentRef, principal: ViewerDep, session: SessionDep) -> ComponentDetail:
    return await _component_detail(session, ref)


@components_router.post("/{ref}/versions", response_model=ComponentVersionRead, status_code=201)
async def add_version(
    ref: ComponentRef, body: ComponentVersionCreate, principal: OperatorDep, session: SessionDep
) -> ComponentVersionRead:
    row = await components.add_version(
        session=session, ref=ref, html=body.html, css=body.css, js=body.js, user_id=principal.user_id
    )
    return ComponentVersionRead.model_validate(row)


@components_router.post("/{ref}/versions/{version}/approval", response_model=ComponentVersionRead)
async def approve_version(
    ref: ComponentRef,
    version: Annotated[int, Path(ge=1)],
    body: ApprovalRequest,
    principal: ApproverDep,
    session: SessionDep,
) -> ComponentVersionRead:
    """An approver signs off (or rejects) a JavaScript version; its author cannot."""
    row = await components.approve(
        session=session,
        ref=ref,
        version=version,
        approver_id=principal.user_id,
        approve=body.decision == "approve",
        reason=body.reason,
    )
    return ComponentVersionRead.model_validate(row)


@components_router.post("/{ref}/rollback", response_model=ComponentDetail)
async def rollback(
    ref: ComponentRef, body: RollbackRequest, principal: OperatorDep, session: SessionDep
) -> ComponentDetail:
    """Make an earlier usable version current again (canvases already shown keep the version they pinned)."""
    await components.rollback(session=session, ref=ref, version=body.version, user_id=principal.user_id)
    return await _component_detail(session, ref)
