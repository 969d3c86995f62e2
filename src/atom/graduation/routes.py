"""Graduation over HTTP: readiness, exams and the constitutional rule set."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.deps import AdminDep, ApproverDep, SessionDep, SettingsDep, ViewerDep
from atom.governance import catalogue as governance_catalogue
from atom.governance.maturity import MaturityLevel
from atom.graduation import service
from atom.graduation.schemas import ExamRead, ExamRequest, ReadinessRead, RuleSetList, RuleSetRead, RuleSetWrite

router = APIRouter(prefix="/api/graduation", tags=["graduation"])


@router.get("/agents/{agent_ref}/readiness", response_model=ReadinessRead)
async def readiness(
    agent_ref: str, principal: ViewerDep, session: SessionDep, settings: SettingsDep, level: MaturityLevel | None = None
) -> ReadinessRead:
    """Readiness for the next level (or `level`): episodes, intervention rate, constitutional score, gaps."""
    report = await service.readiness(session=session, settings=settings, agent_ref=agent_ref, target=level)
    return ReadinessRead.model_validate(asdict(report))


@router.post("/agents/{agent_ref}/exams", response_model=ExamRead, status_code=201)
async def take_exam(agent_ref: str, body: ExamRequest, principal: ApproverDep, session: SessionDep) -> ExamRead:
    """Replay the agent's edge-case episodes as a dry run at the target level; stored with its evidence."""
    exam = await service.take_exam(
        session=session,
        agent_ref=agent_ref,
        classify=governance_catalogue.current().classify,
        actor=audit.Actor.user(principal.user_id),
        target=body.target_level,
    )
    return ExamRead.model_validate(exam)


@router.get("/agents/{agent_ref}/exams", response_model=list[ExamRead])
async def list_exams(agent_ref: str, principal: ViewerDep, session: SessionDep) -> list[ExamRead]:
    agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
    return [ExamRead.model_validate(e) for e in await service.list_exams(session=session, agent_id=agent.id)]


@router.get("/rules", response_model=RuleSetList)
async def rule_sets(principal: ViewerDep, session: SessionDep) -> RuleSetList:
    """Every version of the rule set, newest (in force) first."""
    return RuleSetList(items=[RuleSetRead.model_validate(r) for r in await service.rule_versions(session=session)])


@router.put("/rules", response_model=RuleSetRead, status_code=201)
async def save_rules(body: RuleSetWrite, principal: AdminDep, session: SessionDep) -> RuleSetRead:
    """A new version of the rule set; a rule that does not compile -> 422 naming the rule and its line."""
    row = await service.save_rules(session=session, source=body.source, actor=audit.Actor.user(principal.user_id))
    return RuleSetRead.model_validate(row)
