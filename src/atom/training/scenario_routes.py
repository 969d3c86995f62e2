"""Training scenarios and scenario runs over HTTP (docs/training.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from atom.audit import service as audit
from atom.chat.llm import resolve_llm
from atom.deps import ApproverDep, DatabaseDep, SessionDep, SettingsDep, ViewerDep
from atom.runtime import tools as runtime_tools
from atom.training import run_tasks, scenario_runs, scenarios
from atom.training import sessions as training_sessions
from atom.training.scenario_schemas import (
    NAME_PATTERN,
    ScenarioIn,
    ScenarioList,
    ScenarioRead,
    ScenarioSource,
    ScenarioVersions,
    ScoreOverride,
    TrainingRunRead,
)

router = APIRouter(prefix="/api", tags=["training"])
NamePath = Annotated[str, Path(pattern=NAME_PATTERN)]


@router.post("/training-scenarios", response_model=ScenarioRead, status_code=201)
async def create_scenario(body: ScenarioIn, principal: ApproverDep, session: SessionDep) -> ScenarioRead:
    """Store a scenario (a new version when the name exists); a rule that does not compile or an unknown
    tool -> 422 naming the field, nothing stored."""
    scenarios.check(body, prefix="body")
    row = await scenarios.save(session=session, scenario=body, actor=audit.Actor.user(principal.user_id))
    return ScenarioRead.model_validate(row)


@router.post("/training-scenarios/load", response_model=ScenarioList, status_code=201)
async def load_scenarios(body: ScenarioSource, principal: ApproverDep, session: SessionDep) -> ScenarioList:
    """Store every scenario of a YAML file, or none (422 naming the field and its line)."""
    parsed = scenarios.parse_file(body.source)
    rows = await scenarios.save_all(session=session, scenarios=parsed, actor=audit.Actor.user(principal.user_id))
    return ScenarioList(items=[ScenarioRead.model_validate(r) for r in rows])


@router.get("/training-scenarios", response_model=ScenarioList)
async def list_scenarios(
    principal: ViewerDep, session: SessionDep, category: str | None = None, include_retired: bool = False
) -> ScenarioList:
    """The version in force of each scenario, by name."""
    rows = await scenarios.current(session=session, category=category, include_retired=include_retired)
    return ScenarioList(items=[ScenarioRead.model_validate(r) for r in rows])


@router.get("/training-scenarios/{name}", response_model=ScenarioVersions)
async def show_scenario(name: NamePath, principal: ViewerDep, session: SessionDep) -> ScenarioVersions:
    rows = await scenarios.versions(session=session, name=name)
    return ScenarioVersions(
        current=ScenarioRead.model_validate(rows[0]), versions=[ScenarioRead.model_validate(r) for r in rows]
    )


@router.delete("/training-scenarios/{name}", response_model=ScenarioRead)
async def retire_scenario(name: NamePath, principal: ApproverDep, session: SessionDep) -> ScenarioRead:
    """Retire a scenario: runs no longer use it (its versions are kept; saving it again brings it back)."""
    row = await scenarios.retire(session=session, name=name, actor=audit.Actor.user(principal.user_id))
    return ScenarioRead.model_validate(row)


@router.get("/training/{training_id}", response_model=TrainingRunRead)
async def show_training(training_id: str, principal: ViewerDep, session: SessionDep) -> TrainingRunRead:
    """A training session with its scenario run's progress and per-scenario results."""
    return TrainingRunRead.model_validate(await training_sessions.get(session=session, training_id=training_id))


@router.post("/training/{training_id}/run", response_model=TrainingRunRead, status_code=202)
async def run_training(
    training_id: str, request: Request, principal: ApproverDep, db: DatabaseDep, settings: SettingsDep
) -> TrainingRunRead:
    """Run the session's category scenarios as dry runs in the background; follow `GET /api/training/{id}`."""
    llm = await resolve_llm(request.app.state, db, settings)  # no provider: 503 before anything changes
    async with db.session_scope() as session:
        claim = await scenario_runs.start(
            session=session, settings=settings, training_id=training_id, actor=audit.Actor.user(principal.user_id)
        )
    run = scenario_runs.ScenarioRun(db=db, settings=settings, llm=llm, registry=runtime_tools.current(), claim=claim)
    run_tasks.runs_of(request.app.state).spawn(run)
    async with db.session_scope() as session:
        return TrainingRunRead.model_validate(await training_sessions.get(session=session, training_id=training_id))


@router.post("/training/{training_id}/score", response_model=TrainingRunRead)
async def override_score(
    training_id: str, body: ScoreOverride, principal: ApproverDep, db: DatabaseDep, settings: SettingsDep
) -> TrainingRunRead:
    """Replace a completed session's score (audited); confidence moves by the difference of the bands."""
    async with db.session_scope() as session:
        training = await training_sessions.override_score(
            session=session,
            training_id=training_id,
            performance=body.performance,
            reason=body.reason,
            actor=audit.Actor.user(principal.user_id),
            settings=settings,
        )
        agent_id = training.agent_id
    await scenario_runs.auto_promote(db=db, settings=settings, agent_id=agent_id, moment="training.overridden")
    async with db.session_scope() as session:
        return TrainingRunRead.model_validate(await training_sessions.get(session=session, training_id=training_id))
