"""Running a STUDENT's training session: its category's scenarios as scored dry runs (docs/training.md).

`start` claims the session (scheduled -> running, progress 0 of N); `execute` runs each scenario as a
dry run of the agent through the real agent runtime — a manual run (trigger `training`) offered only
the scenario's tools, with side-effecting calls recorded instead of executed (`recorder.py`) — scores
it (`scoring.py`), and stores the progress after each one. The calls are also judged as the graduation
exam judges recorded actions (governance at the next level, the rules in force), as evidence.

The mean of the scenario scores is the performance p; RULES.md turns it into the confidence change
(`sessions.complete`: a ledger row naming the session). A scenario that cannot be scored — the LLM
judge gave no valid score, the provider failed — stops the run: the session goes back to scheduled
with the error and the results so far, no score and no confidence change. A run stopped by the
agent's own bounds (steps, tokens, time) is the agent's outcome and scores 0.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.chat.llm import LLMSource
from atom.chat.runtime import AgentRuntime, RunRequest, RunResult
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database, rows_affected
from atom.errors import AtomError, Conflict
from atom.governance import catalogue as governance_catalogue
from atom.governance.maturity import MaturityLevel
from atom.graduation import service as graduation
from atom.observability.logging import get_logger
from atom.runtime.tools import ToolRegistry
from atom.training import scenarios as scenarios_service
from atom.training import scoring
from atom.training import sessions as training_sessions
from atom.training.models import TrainingSession, TrainingStatus
from atom.training.recorder import DryRunRecorder
from atom.training.scenario_schemas import Expectation

log = get_logger("atom.training.runs")
AGENT_BOUNDS = frozenset({"STEP_LIMIT", "TOKEN_LIMIT", "RUN_TIMEOUT"})
MAX_ANSWER_CHARS = 4000
CANCELLED = "The run was cancelled (the server stopped)."


class ScenarioFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Scenario:
    """What a run needs of one scenario version (read once, when the run starts)."""

    id: str
    name: str
    version: int
    task: str
    tools: tuple[str, ...]
    expect: Expectation


@dataclass(frozen=True)
class Claim:
    training_id: str
    agent_id: str
    scenarios: tuple[Scenario, ...]
    user_id: str | None


def stale_after(settings: Settings) -> timedelta:
    """A running session whose run has not reported for this long was abandoned (its process died)."""
    return timedelta(seconds=settings.chat_max_seconds + settings.training_judge_timeout_s + 60)


async def start(*, session: AsyncSession, settings: Settings, training_id: str, actor: audit.Actor) -> Claim:
    """Claim a scheduled session (or an abandoned run) for a scenario run; nothing changes when refused."""
    training = await training_sessions.get(session=session, training_id=training_id)
    agent = await agents_service.get_agent(session=session, agent_id=training.agent_id)
    if agent.maturity_level != MaturityLevel.STUDENT.value:
        raise Conflict(
            f"{agent.name} is {agent.maturity_level}; training scenarios run for STUDENT agents.",
            code="TRAINING_NOT_STUDENT",
            details={"agent_id": agent.id, "level": agent.maturity_level},
        )
    if agent.status != "active":
        raise Conflict(f"{agent.name} is {agent.status}.", code="AGENT_NOT_ACTIVE", details={"agent_id": agent.id})
    rows = await scenarios_service.current(session=session, category=training.category)
    if not rows:
        raise Conflict(
            f"No training scenarios for the category {training.category!r}: add some "
            "(`atom-os training load-scenarios FILE` or POST /api/training-scenarios).",
            code="NO_SCENARIOS",
            details={"category": training.category},
        )
    now = utcnow()
    claimed = await session.execute(
        update(TrainingSession)
        .where(
            TrainingSession.id == training_id,
            or_(
                TrainingSession.status == TrainingStatus.SCHEDULED.value,
                (TrainingSession.status == TrainingStatus.RUNNING.value)
                & (TrainingSession.run_heartbeat_at < now - stale_after(settings)),
            ),
        )
        .values(
            status=TrainingStatus.RUNNING.value,
            progress_done=0,
            progress_total=len(rows),
            current_scenario=None,
            results=[],
            run_error=None,
            run_started_at=now,
            run_heartbeat_at=now,
        )
    )
    if rows_affected(claimed) != 1:
        await session.refresh(training)
        raise Conflict(
            f"This training session is {training.status}; only a scheduled one can be run.",
            code="TRAINING_RUNNING" if training.status == TrainingStatus.RUNNING.value else "TRAINING_FINISHED",
            details={"status": training.status},
        )
    await session.refresh(training)
    await audit.record(
        session=session,
        actor=actor,
        action="training.run.start",
        resource_type="training",
        resource_id=training.id,
        decision="started",
        details={"scenarios": [f"{r.name}@{r.version}" for r in rows], "category": training.category},
    )
    scenarios = tuple(
        Scenario(r.id, r.name, r.version, r.task, tuple(r.tools), Expectation.model_validate(r.expect)) for r in rows
    )
    return Claim(training.id, agent.id, scenarios, actor.id if actor.type == "user" else None)


class ScenarioRun:
    """Runs a claimed session's scenarios one by one and scores the session (or gives it back)."""

    def __init__(
        self, *, db: Database, settings: Settings, llm: LLMSource, registry: ToolRegistry, claim: Claim
    ) -> None:
        self.db, self.settings, self.llm, self.registry, self.claim = db, settings, llm, registry, claim
        self.classify = governance_catalogue.current().classify
        self.results: list[dict[str, Any]] = []
        self.settled = False  # scored or given back

    async def execute(self) -> None:
        claim = self.claim
        try:
            for scenario in claim.scenarios:
                await self._progress(current=scenario.name)
                try:
                    self.results.append(await self._run(scenario))
                except (ScenarioFailed, scoring.JudgeFailed) as exc:
                    self.results.append({"scenario": scenario.name, "version": scenario.version, "error": exc.message})
                    await self.give_back(f"{scenario.name}: {exc.message}")
                    return
                await self._progress(current=None)
            performance = round(sum(r["score"] for r in self.results) / len(self.results), 4)
            async with self.db.session_scope() as session:
                await training_sessions.complete(
                    session=session,
                    training_id=claim.training_id,
                    performance=performance,
                    duration_hours=None,
                    actor=audit.Actor.user(claim.user_id) if claim.user_id else audit.Actor.system(),
                    settings=self.settings,
                    scored_by="scenarios",
                    results=self.results,
                )
            self.settled = True
        except asyncio.CancelledError:
            await asyncio.shield(self.give_back(CANCELLED))
            raise
        except Exception as exc:
            log.error("training run failed", training_id=claim.training_id, exc_info=exc)
            await self.give_back(f"Internal error ({type(exc).__name__}).")
            return
        await auto_promote(db=self.db, settings=self.settings, agent_id=claim.agent_id, moment="training.scored")

    async def _run(self, scenario: Scenario) -> dict[str, Any]:
        registry = self.registry.restricted_to(set(scenario.tools))
        runtime = AgentRuntime(
            db=self.db, settings=self.settings, llm=self.llm, registry=registry, prices=self.settings.llm_prices
        )
        request = RunRequest(
            agent_ref=self.claim.agent_id,
            input=scenario.task,
            trigger="training",
            user_id=self.claim.user_id,
            stream=False,
        )
        result = await runtime.run(request, recorder=DryRunRecorder(self.classify))
        entry: dict[str, Any] = {
            "scenario": scenario.name,
            "version": scenario.version,
            "scenario_id": scenario.id,
            "execution_id": result.execution_id,
            "run_status": result.status.value,
            "error_code": result.error_code,
            "answer": result.output[:MAX_ANSWER_CHARS],
            "calls": [
                {k: c.get(k) for k in ("name", "action", "arguments", "status", "decision")} for c in result.tool_calls
            ],
            "recorded": sum(1 for c in result.tool_calls if c.get("status") == "recorded"),
            "unavailable_tools": [t for t in scenario.tools if registry.get(t) is None],
        }
        entry["evidence"] = await self._evidence(result)
        if not result.ok:
            if result.error_code not in AGENT_BOUNDS:
                raise ScenarioFailed(f"the agent's run failed: {result.error} ({result.error_code})")
            entry.update(score=0.0, measures={}, note=f"The agent did not finish: {result.error}")
            return entry
        measures = await self._measures(scenario, result)
        entry["measures"] = {m.kind: m.as_dict() for m in measures}
        entry["score"] = round(sum(m.score for m in measures) / len(measures), 4)
        return entry

    async def _measures(self, scenario: Scenario, result: RunResult) -> list[scoring.Measure]:
        expect, found = scenario.expect, []
        if expect.rules:
            activation = scoring.outcome(result.output, result.status.value, result.steps, result.tool_calls)
            found.append(scoring.score_rules(expect, activation, scenario.name))
        if expect.reference is not None:
            found.append(scoring.score_reference(expect.reference, result.output))
        if expect.judge is not None:
            reference = expect.reference.answer if expect.reference else None
            prompt = scoring.judge_prompt(
                scenario.task, expect.judge.rubric, result.output, result.tool_calls, reference
            )
            found.append(
                await scoring.score_judge(self.llm, self.settings, prompt=prompt, execution_id=result.execution_id)
            )
        return found

    async def _evidence(self, result: RunResult) -> dict[str, Any]:
        async with self.db.session_scope() as session:
            judged = await graduation.assess_calls(
                session=session,
                agent_ref=self.claim.agent_id,
                calls=result.tool_calls,
                source_id=result.execution_id,
                classify=self.classify,
            )
        return {
            "target_level": judged.target_level,
            "governance": judged.records,
            "violations": judged.violations,
            "rule_set_version": judged.rule_set_version,
        }

    async def _progress(self, *, current: str | None) -> None:
        async with self.db.session_scope() as session:
            moved = await session.execute(
                update(TrainingSession)
                .where(
                    TrainingSession.id == self.claim.training_id,
                    TrainingSession.status == TrainingStatus.RUNNING.value,
                )
                .values(
                    progress_done=len(self.results),
                    current_scenario=current,
                    results=list(self.results),
                    run_heartbeat_at=utcnow(),
                )
            )
            if rows_affected(moved) != 1:
                raise Conflict("The training session is no longer running.", code="TRAINING_NOT_RUNNING")

    async def give_back(self, error: str) -> None:
        """No score: the session is scheduled again, with the error and the results so far (audited)."""
        if self.settled:
            return
        self.settled = True
        async with self.db.session_scope() as session:
            await session.execute(
                update(TrainingSession)
                .where(
                    TrainingSession.id == self.claim.training_id,
                    TrainingSession.status == TrainingStatus.RUNNING.value,
                )
                .values(
                    status=TrainingStatus.SCHEDULED.value,
                    current_scenario=None,
                    results=list(self.results),
                    progress_done=sum(1 for r in self.results if "score" in r),
                    run_error=error[:2000],
                    run_heartbeat_at=utcnow(),
                )
            )
            await audit.record(
                session=session,
                actor=audit.Actor.user(self.claim.user_id) if self.claim.user_id else audit.Actor.system(),
                action="training.run.failed",
                resource_type="training",
                resource_id=self.claim.training_id,
                decision="failed",
                reason=error[:2000],
                details={"scenarios_done": len(self.results)},
            )


async def auto_promote(
    *, db: Database, settings: Settings, agent_id: str, moment: str
) -> graduation.AutoPromotion | None:
    """ATOM_AUTO_PROMOTE's moment: a training session of the agent was scored (by a run or a person).

    In its own transaction, after the score is committed: a refused promotion never undoes the score."""
    if not settings.auto_promote:
        return None
    try:
        async with db.session_scope() as session:
            return await graduation.auto_promote(
                session=session,
                settings=settings,
                agent_ref=agent_id,
                classify=governance_catalogue.current().classify,
                moment=moment,
            )
    except AtomError as exc:  # e.g. promoted meanwhile by a person: nothing to do, said in the log
        log.warning("auto-promotion not made", agent_id=agent_id, code=exc.code, reason=exc.message)
        return None
