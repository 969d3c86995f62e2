"""Proposals inbox: the exact plan and its hash, who asked and why, the diff when modified; approve,
reject with a reason, or decide several at once (approvers; a viewer sees no buttons and a POST is 403)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import reads as agents_reads
from atom.deps import DatabaseDep, SessionDep
from atom.errors import AtomError, Conflict, NotFound
from atom.security import service as security_service
from atom.training import proposals as proposals_service
from atom.training import reads as training_reads
from atom.training.models import AgentProposal, ProposalStatus
from atom.web.auth import ApproverForm, PageRouter, ViewerPage, WebUser
from atom.web.ui import pretty_json, redirect, render

router = PageRouter()

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
MAX_REASON = 2000
MAX_BATCH = 100
STATUS_FILTERS = ("pending", "approved", "executed", "execution_failed", "rejected", "expired", "all")


def _diff(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The plan's change as unified-diff lines, each with its kind (add, del, ctx, hunk)."""
    lines = difflib.unified_diff(
        pretty_json(before).splitlines(), pretty_json(after).splitlines(), "asked", "approved", lineterm="", n=3
    )
    out = []
    for line in lines:
        kind = (
            "hunk"
            if line.startswith("@@")
            else "add"
            if line.startswith("+")
            else "del"
            if line.startswith("-")
            else "ctx"
        )
        if line.startswith(("+++", "---")):
            kind = "file"
        out.append((kind, line))
    return out


async def _names(session: AsyncSession, rows: list[AgentProposal]) -> dict[str, str]:
    return await agents_reads.names_by_id(session=session, agent_ids={r.agent_id for r in rows})


@router.get("/proposals")
async def inbox(
    request: Request,
    user: ViewerPage,
    session: SessionDep,
    status: Annotated[str, Query(max_length=20)] = "pending",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if status not in STATUS_FILTERS:
        status = "pending"
    rows, next_cursor = await proposals_service.list_proposals(
        session=session,
        status=None if status == "all" else ProposalStatus(status),
        kind=None,
        agent_id=None,
        limit=50,
        cursor=cursor,
    )
    return render(
        request,
        "proposals.html",
        {
            "title": "Proposals",
            "rows": rows,
            "names": await _names(session, rows),
            "status": status,
            "filters": STATUS_FILTERS,
            "next_cursor": next_cursor,
            "results": [],
        },
    )


@dataclass
class Detail:
    proposal: AgentProposal
    agent_name: str
    asked: Any  # the blocked trigger: source, reason, payload, the plan as asked
    decided_by: str | None
    diff: list[tuple[str, str]]


async def _detail(session: AsyncSession, proposal_id: str) -> Detail:
    proposal = await proposals_service.get(session=session, proposal_id=proposal_id)
    names = await agents_reads.names_by_id(session=session, agent_ids={proposal.agent_id})
    asked = None
    if proposal.blocked_trigger_id:
        try:
            asked = await training_reads.get_blocked_trigger(
                session=session, blocked_trigger_id=proposal.blocked_trigger_id
            )
        except NotFound:
            asked = None
    decided_by = None
    if proposal.decided_by:
        try:
            decided_by = (await security_service.get_user(session=session, user_id=proposal.decided_by)).username
        except NotFound:
            decided_by = proposal.decided_by
    diff = _diff(asked.plan, proposal.plan) if asked is not None and proposal.modified else []
    return Detail(proposal, names.get(proposal.agent_id, proposal.agent_id), asked, decided_by, diff)


def _show(
    request: Request,
    detail: Detail,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "proposal.html",
        {
            "title": f"Proposal {detail.proposal.id[:8]}",
            "d": detail,
            "p": detail.proposal,
            "errors": errors or {},
            "values": values or {},
        },
        status_code=status_code,
    )


@router.get("/proposals/{proposal_id}")
async def show(request: Request, proposal_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    return _show(request, await _detail(session, proposal_id))


async def _approve(db: Any, settings: Any, user: WebUser, proposal_id: str, seen_hash: str, reason: str | None) -> str:
    """Approve exactly the plan the approver saw: the service refuses a hash that no longer matches (409)."""
    approval = await proposals_service.approve(
        db=db,
        settings=settings,
        proposal_id=proposal_id,
        approver_id=user.principal.user_id,
        seen_hash=seen_hash,
        reason=reason,
    )
    if approval.training_id is not None:
        return "approved_training"
    return "approved" if approval.proposal.status == ProposalStatus.EXECUTED.value else "approved_failed"


@router.post("/proposals/{proposal_id}/approve")
async def approve(request: Request, proposal_id: IdPath, form_user: ApproverForm, db: DatabaseDep) -> Response:
    user, form = form_user
    reason = form.get("reason").strip()
    seen_hash = form.get("plan_hash").strip()
    errors = {}
    if len(reason) > MAX_REASON:
        errors["approve_reason"] = f"At most {MAX_REASON} characters."
    if not seen_hash:
        errors["form"] = "The plan hash you approve is missing; reload the page."
    if not errors:
        try:
            flash = await _approve(db, request.app.state.settings, user, proposal_id, seen_hash, reason or None)
            return redirect(f"/proposals/{proposal_id}?flash={flash}")
        except Conflict as exc:
            errors["form"] = exc.message
    async with db.session_scope() as session:
        detail = await _detail(session, proposal_id)
    return _show(
        request,
        detail,
        errors=errors,
        values={"approve_reason": reason[:MAX_REASON]},
        status_code=409 if "form" in errors and seen_hash else 422,
    )


@router.post("/proposals/{proposal_id}/reject")
async def reject(request: Request, proposal_id: IdPath, form_user: ApproverForm, db: DatabaseDep) -> Response:
    user, form = form_user
    reason = form.get("reason").strip()
    errors = {}
    if not reason:
        errors["reject_reason"] = "Say why you reject it: the agent learns from it."
    elif len(reason) > MAX_REASON:
        errors["reject_reason"] = f"At most {MAX_REASON} characters."
    if not errors:
        try:
            async with db.session_scope() as session:
                await proposals_service.reject(
                    session=session,
                    proposal_id=proposal_id,
                    approver_id=user.principal.user_id,
                    reason=reason,
                    settings=request.app.state.settings,
                )
            return redirect(f"/proposals/{proposal_id}?flash=rejected")
        except Conflict as exc:
            errors["form"] = exc.message
    async with db.session_scope() as session:
        detail = await _detail(session, proposal_id)
    status_code = 409 if "form" in errors else 422
    return _show(request, detail, errors=errors, values={"reject_reason": reason[:MAX_REASON]}, status_code=status_code)


@router.post("/proposals/batch")
async def batch(request: Request, form_user: ApproverForm, db: DatabaseDep) -> Response:
    """Approve or reject the ticked proposals; each approval carries the hash shown in its row."""
    user, form = form_user
    decision = form.get("decision")
    reason = form.get("reason").strip()
    ids = list(dict.fromkeys(form.getlist("ids")))[:MAX_BATCH]
    errors: dict[str, str] = {}
    if decision not in ("approve", "reject"):
        errors["decision"] = "Choose approve or reject."
    if not ids:
        errors["ids"] = "Tick at least one proposal."
    if decision == "reject" and not reason:
        errors["reason"] = "Rejecting needs a reason."
    if len(reason) > MAX_REASON:
        errors["reason"] = f"At most {MAX_REASON} characters."
    results: list[dict[str, str]] = []
    if not errors:
        settings = request.app.state.settings
        for proposal_id in ids:
            try:
                if decision == "approve":
                    outcome = await _approve(
                        db, settings, user, proposal_id, form.get(f"hash_{proposal_id}"), reason or None
                    )
                else:
                    async with db.session_scope() as session:
                        await proposals_service.reject(
                            session=session,
                            proposal_id=proposal_id,
                            approver_id=user.principal.user_id,
                            reason=reason,
                            settings=settings,
                        )
                    outcome = "rejected"
                results.append({"id": proposal_id, "ok": "yes", "message": outcome.replace("_", " ")})
            except AtomError as exc:
                results.append({"id": proposal_id, "ok": "", "message": exc.message})
    async with db.session_scope() as session:
        rows, next_cursor = await proposals_service.list_proposals(
            session=session, status=ProposalStatus.PENDING, kind=None, agent_id=None, limit=50, cursor=None
        )
        names = await _names(session, rows)
    return render(
        request,
        "proposals.html",
        {
            "title": "Proposals",
            "rows": rows,
            "names": names,
            "status": "pending",
            "filters": STATUS_FILTERS,
            "next_cursor": next_cursor,
            "results": results,
            "errors": errors,
            "values": {"reason": reason[:MAX_REASON], "decision": decision},
        },
        status_code=422 if errors else 200,
    )
