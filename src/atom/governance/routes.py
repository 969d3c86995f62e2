"""Governance for external callers: the action catalogue and a decision endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from atom.deps import OperatorDep, SessionDep, SettingsDep, ViewerDep
from atom.governance import service
from atom.governance.maturity import MaturityLevel
from atom.governance.policy import GovernanceContext, Outcome, TriggerKind

router = APIRouter(prefix="/api/governance", tags=["governance"])


class ActionRead(BaseModel):
    name: str
    complexity: int
    required_level: MaturityLevel
    description: str
    source: str
    implemented_by: str = Field(description="tool | workflow | integration | chat, or planned (not available).")
    available: bool = Field(description="False: nothing implements the action yet; governance denies it.")


class CheckRequest(BaseModel):
    agent_id: str = Field(min_length=1, max_length=64)
    action: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    trigger: TriggerKind = TriggerKind.MANUAL
    source: str = Field(default="api", max_length=32)


class DecisionRead(BaseModel):
    allowed: bool
    outcome: Outcome
    reason_code: str
    reason: str
    action: str
    complexity: int
    required_level: MaturityLevel
    agent_level: MaturityLevel | None
    needs_proposal: bool
    needs_supervision: bool
    cached: bool
    bypassed: bool


@router.get("/actions", response_model=list[ActionRead])
async def list_actions(principal: ViewerDep) -> list[ActionRead]:
    return [
        ActionRead(
            name=spec.name,
            complexity=spec.complexity,
            required_level=MaturityLevel.for_complexity(spec.complexity),
            description=spec.description,
            source=spec.source,
            implemented_by=spec.implemented_by,
            available=spec.available,
        )
        for spec in service.actions()
    ]


@router.post("/check", response_model=DecisionRead)
async def check(body: CheckRequest, principal: OperatorDep, session: SessionDep, settings: SettingsDep) -> DecisionRead:
    """Ask whether an agent may perform an action. Proposal and supervision context are never taken
    from callers: only the executors that hold an approved proposal or a live session pass them."""
    context = GovernanceContext(trigger=body.trigger, source=body.source, actor_user_id=principal.user_id)
    decision = await service.check(
        session=session, agent_id=body.agent_id, action=body.action, context=context, settings=settings
    )
    return DecisionRead.model_validate(decision, from_attributes=True)  # read off the dataclass: no deep copy
