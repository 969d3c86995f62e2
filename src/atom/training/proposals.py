"""Proposals: an INTERN's exact plan (or a STUDENT's training) waiting for a person.

Approval claims the proposal with one conditional UPDATE (`WHERE status = 'pending' AND not
expired`): of any number of concurrent approvals exactly one wins and executes. The approver
sends the plan hash they were shown; it must be the stored plan's, and it is checked again
before execution.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database, rows_affected
from atom.errors import Conflict, NotFound
from atom.governance.policy import GovernanceContext, TriggerKind
from atom.pagination import paginate
from atom.training import sessions as training_sessions
from atom.training.executor import RunResult, executor_for
from atom.training.models import AgentProposal, ProposalKind, ProposalStatus
from atom.training.plan import Plan, PlanStep, plan_hash


async def create(
    *,
    session: AsyncSession,
    agent_id: str,
    kind: ProposalKind,
    plan: list[dict[str, Any]],
    source: str,
    blocked_trigger_id: str | None,
    settings: Settings,
    estimate: training_sessions.Estimate | None = None,
) -> AgentProposal:
    now = utcnow()
    digest = plan_hash(plan)
    proposal = AgentProposal(
        agent_id=agent_id,
        kind=kind.value,
        status=ProposalStatus.PENDING.value,
        source=source,
        blocked_trigger_id=blocked_trigger_id,
        plan=plan,
        plan_hash=digest,
        original_plan_hash=digest,
        created_at=now,
        expires_at=now + timedelta(hours=settings.proposal_ttl_hours),
        estimate_hours=estimate.hours if estimate else None,
        estimate_low_hours=estimate.low if estimate else None,
        estimate_high_hours=estimate.high if estimate else None,
    )
    session.add(proposal)
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.agent(agent_id),
        action="proposal.create",
        resource_type="proposal",
        resource_id=proposal.id,
        decision="proposed",
        details={"kind": kind.value, "plan_hash": digest, "source": source},
    )
    return proposal


async def expire_due(*, session: AsyncSession) -> int:
    """Mark every pending proposal past its expiry as expired (also done lazily on every read).

    Looked for first: on SQLite an UPDATE takes the database's write lock to the end of the transaction
    even when it matches nothing, and every read of a proposal (a page view) would then be a writer."""
    due = (AgentProposal.status == ProposalStatus.PENDING.value, AgentProposal.expires_at <= utcnow())
    if await session.scalar(select(AgentProposal.id).where(*due).limit(1)) is None:
        return 0
    result = await session.execute(update(AgentProposal).where(*due).values(status=ProposalStatus.EXPIRED.value))
    return rows_affected(result)


async def get(*, session: AsyncSession, proposal_id: str) -> AgentProposal:
    await expire_due(session=session)
    proposal = await session.get(AgentProposal, proposal_id, populate_existing=True)
    if proposal is None:
        raise NotFound(
            f"No proposal with id {proposal_id!r}.", code="PROPOSAL_NOT_FOUND", details={"proposal_id": proposal_id}
        )
    return proposal


async def list_proposals(
    *,
    session: AsyncSession,
    status: ProposalStatus | None,
    kind: ProposalKind | None,
    agent_id: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AgentProposal], str | None]:
    await expire_due(session=session)
    stmt = select(AgentProposal)
    if status is not None:
        stmt = stmt.where(AgentProposal.status == status.value)
    if kind is not None:
        stmt = stmt.where(AgentProposal.kind == kind.value)
    if agent_id is not None:
        stmt = stmt.where(AgentProposal.agent_id == agent_id)
    return await paginate(session, stmt, id_column=AgentProposal.id, limit=limit, cursor=cursor)


def _not_pending(proposal: AgentProposal) -> Conflict:
    return Conflict(
        f"The proposal is {proposal.status}; only a pending proposal can be decided.",
        code="PROPOSAL_NOT_PENDING",
        details={"status": proposal.status},
    )


@dataclass
class Approval:
    proposal: AgentProposal
    run: RunResult | None
    training_id: str | None


async def approve(
    *,
    db: Database,
    settings: Settings,
    proposal_id: str,
    approver_id: str,
    seen_hash: str,
    modified_plan: Plan | None = None,
    reason: str | None = None,
) -> Approval:
    """Claim, then execute exactly the stored plan (or schedule the training). Runs its own transactions.

    `seen_hash` is the plan hash the approver was shown: the approval holds only for that plan.
    A different hash (the plan changed since, or the approver looked at another one) is a
    conflict and nothing runs. A modified plan gets its own hash and counts as a correction from
    a trusted reviewer (ATOM_CONFIDENCE_CORRECTION_TRUSTED) instead of an unchanged approval.
    """
    async with db.session_scope() as session:
        proposal = await get(session=session, proposal_id=proposal_id)
        if proposal.status != ProposalStatus.PENDING.value:
            raise _not_pending(proposal)
        if not hmac.compare_digest(seen_hash.lower(), proposal.plan_hash):
            raise Conflict(
                "The plan hash you approved is not the proposal's: the plan is not the one you saw. "
                "Nothing was executed; look at the proposal again.",
                code="PLAN_HASH_MISMATCH",
                details={"field": "plan_hash", "expected": proposal.plan_hash, "got": seen_hash},
            )
        if plan_hash(proposal.plan) != proposal.plan_hash:
            raise Conflict(
                "The stored plan does not match its hash; it will not be executed.",
                code="PLAN_HASH_MISMATCH",
                details={"expected": proposal.plan_hash},
            )
        new_plan = modified_plan.as_json() if modified_plan is not None else proposal.plan
        modified = modified_plan is not None and plan_hash(new_plan) != proposal.plan_hash
        claimed = await session.execute(
            update(AgentProposal)
            .where(
                AgentProposal.id == proposal_id,
                AgentProposal.status == ProposalStatus.PENDING.value,
                AgentProposal.expires_at > utcnow(),
            )
            .values(
                status=ProposalStatus.APPROVED.value,
                decided_at=utcnow(),
                decided_by=approver_id,
                decision_reason=reason,
                plan=new_plan,
                plan_hash=plan_hash(new_plan),
                modified=modified,
            )
        )
        if rows_affected(claimed) != 1:
            await session.rollback()
            async with db.session_scope() as fresh:
                current = await get(session=fresh, proposal_id=proposal_id)
                raise _not_pending(current)
        await audit.record(
            session=session,
            actor=audit.Actor.user(approver_id),
            action="proposal.approve",
            resource_type="proposal",
            resource_id=proposal_id,
            decision="approved",
            reason=reason,
            details={
                "plan_hash": plan_hash(new_plan),
                "approved_hash": proposal.plan_hash,
                "modified": modified,
                "kind": proposal.kind,
            },
        )
        if modified:
            await audit.record(
                session=session,
                actor=audit.Actor.user(approver_id),
                action="proposal.correct",
                resource_type="proposal",
                resource_id=proposal_id,
                decision="corrected",
                reason=reason,
                details={"original_plan_hash": proposal.original_plan_hash, "plan_hash": plan_hash(new_plan)},
            )
        if proposal.kind == ProposalKind.ACTION.value:
            await agents_service.record_confidence(
                session=session,
                agent_id=proposal.agent_id,
                delta=settings.confidence_correction_trusted if modified else settings.confidence_proposal_approved,
                reason="plan corrected by the approver" if modified else "proposal approved unchanged",
                source="correction" if modified else "proposal",
                source_id=proposal_id,
                settings=settings,
            )
        training_id = None
        if proposal.kind == ProposalKind.TRAINING.value:
            agent = await agents_service.get_agent(session=session, agent_id=proposal.agent_id)
            training = await training_sessions.schedule(
                session=session, agent=agent, proposal_id=proposal_id, estimate_hours=proposal.estimate_hours or 0.0
            )
            training_id = training.id
        agent_id, stored_plan, stored_hash = proposal.agent_id, new_plan, plan_hash(new_plan)

    if training_id is not None:
        async with db.session_scope() as session:
            proposal = await get(session=session, proposal_id=proposal_id)
        return Approval(proposal=proposal, run=None, training_id=training_id)
    executed, run = await _execute(db, settings, proposal_id, agent_id, stored_plan, stored_hash)
    return Approval(proposal=executed, run=run, training_id=None)


async def _execute(
    db: Database, settings: Settings, proposal_id: str, agent_id: str, plan: list[dict[str, Any]], expected_hash: str
) -> tuple[AgentProposal, RunResult]:
    if plan_hash(plan) != expected_hash:  # defence in depth: what runs is what was approved
        raise Conflict("The plan changed after approval; not executed.", code="PLAN_HASH_MISMATCH")
    steps = [PlanStep.model_validate(step) for step in plan]
    context = GovernanceContext(trigger=TriggerKind.AUTOMATED, source="proposal", proposal_id=proposal_id)
    try:
        run = await executor_for(steps).run(db=db, settings=settings, agent_id=agent_id, steps=steps, context=context)
    except Exception as exc:  # recorded on the proposal below, never half-applied silently
        run = RunResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    async with db.session_scope() as session:
        status = ProposalStatus.EXECUTED if run.ok else ProposalStatus.EXECUTION_FAILED
        await session.execute(
            update(AgentProposal)
            .where(AgentProposal.id == proposal_id)
            .values(status=status.value, executed_at=utcnow(), result=run.as_dict(), error=run.error)
        )
        await audit.record(
            session=session,
            actor=audit.Actor.agent(agent_id),
            action="proposal.execute",
            resource_type="proposal",
            resource_id=proposal_id,
            decision=status.value,
            reason=run.error,
            details={"steps": len(run.steps)},
        )
        return await get(session=session, proposal_id=proposal_id), run


async def reject(
    *, session: AsyncSession, proposal_id: str, approver_id: str, reason: str, settings: Settings
) -> AgentProposal:
    proposal = await get(session=session, proposal_id=proposal_id)
    claimed = await session.execute(
        update(AgentProposal)
        .where(AgentProposal.id == proposal_id, AgentProposal.status == ProposalStatus.PENDING.value)
        .values(
            status=ProposalStatus.REJECTED.value, decided_at=utcnow(), decided_by=approver_id, decision_reason=reason
        )
    )
    if rows_affected(claimed) != 1:
        raise _not_pending(proposal)
    await audit.record(
        session=session,
        actor=audit.Actor.user(approver_id),
        action="proposal.reject",
        resource_type="proposal",
        resource_id=proposal_id,
        decision="rejected",
        reason=reason,
    )
    if proposal.kind == ProposalKind.ACTION.value:
        await agents_service.record_confidence(
            session=session,
            agent_id=proposal.agent_id,
            delta=settings.confidence_proposal_rejected,
            reason="proposal rejected",
            source="proposal",
            source_id=proposal_id,
            settings=settings,
        )
    return await get(session=session, proposal_id=proposal_id)
