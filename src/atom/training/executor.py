"""Executors run an approved or allowed plan, one governed step at a time.

The interceptor never knows how a run is carried out: it picks an executor by name from
`executors` ("plan" today; the workflow engine and the agent runtime register their own) and
hands it the steps, the governance context and optional hooks (supervision uses them to pause,
correct or terminate before the next step). Each step is checked by governance and its outcome
committed before the next one starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from atom.agents import service as agents_service
from atom.config import Settings
from atom.db.session import Database
from atom.errors import AtomError
from atom.governance import service as governance
from atom.governance.policy import GovernanceContext
from atom.observability.logging import get_logger
from atom.runtime.tools import Tool, ToolRegistry, tools
from atom.training.plan import PlanStep

log = get_logger("atom.executor")


@dataclass
class StepOutcome:
    index: int
    action: str
    params: dict[str, Any]
    status: str  # done | denied | failed
    output: dict[str, Any] | None = None
    error: str | None = None
    reason_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    ok: bool
    steps: list[StepOutcome] = field(default_factory=list)
    error: str | None = None
    terminated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "terminated": self.terminated,
            "steps": [s.as_dict() for s in self.steps],
        }


class StepHooks(Protocol):
    async def before_step(self, index: int, step: PlanStep) -> PlanStep | None:
        """The step to run (possibly corrected), or None to stop the run here."""

    async def after_step(self, outcome: StepOutcome) -> None: ...


class Executor(Protocol):
    async def run(
        self,
        *,
        db: Database,
        settings: Settings,
        agent_id: str,
        steps: list[PlanStep],
        context: GovernanceContext,
        hooks: StepHooks | None = None,
    ) -> RunResult: ...


class PlanExecutor:
    """Runs each step's action as a registered tool, after governance allows it."""

    def __init__(self, registry: ToolRegistry = tools) -> None:
        self.registry = registry

    async def run(
        self,
        *,
        db: Database,
        settings: Settings,
        agent_id: str,
        steps: list[PlanStep],
        context: GovernanceContext,
        hooks: StepHooks | None = None,
    ) -> RunResult:
        result = RunResult(ok=True)
        for index, planned in enumerate(steps):
            step = planned
            if hooks is not None:
                adjusted = await hooks.before_step(index, planned)
                if adjusted is None:
                    result.ok, result.terminated, result.error = False, True, "terminated by the supervisor"
                    return result
                step = adjusted
            outcome = await self._run_step(db, settings, agent_id, index, step, context)
            result.steps.append(outcome)
            if hooks is not None:
                await hooks.after_step(outcome)
            if outcome.status != "done":
                result.ok = False
                result.error = f"step {index + 1} ({outcome.action}) {outcome.status}: {outcome.error}"
                return result
        return result

    async def _run_step(
        self, db: Database, settings: Settings, agent_id: str, index: int, step: PlanStep, context: GovernanceContext
    ) -> StepOutcome:
        tool = self.registry.get(step.action)
        async with db.session_scope() as session:
            decision = await governance.check(
                session=session, agent_id=agent_id, action=_governed_as(tool, step), context=context, settings=settings
            )
        if not decision.allowed:
            return StepOutcome(
                index, step.action, step.params, "denied", error=decision.reason, reason_code=decision.reason_code
            )
        if tool is None:
            return StepOutcome(index, step.action, step.params, "failed", error=f"no tool performs {step.action!r}")
        try:
            output = await tool.handler(tool.validate(step.params))
            outcome = StepOutcome(index, step.action, step.params, "done", output=output)
        except AtomError as exc:
            outcome = StepOutcome(index, step.action, step.params, "failed", error=exc.message)
        except Exception as exc:  # a tool's own failure is the step's outcome, recorded, never lost
            log.error("tool failed", action=step.action, agent_id=agent_id, exc_info=exc)
            outcome = StepOutcome(index, step.action, step.params, "failed", error=f"{type(exc).__name__}: {exc}")
        delta = settings.confidence_action_success if outcome.status == "done" else settings.confidence_action_failure
        async with db.session_scope() as session:
            await agents_service.record_confidence(
                session=session,
                agent_id=agent_id,
                delta=delta,
                reason=f"{step.action} {outcome.status}",
                source="action",
                source_id=context.proposal_id or context.supervision_session_id,
                settings=settings,
            )
        return outcome


def _governed_as(tool: Tool | None, step: PlanStep) -> str:
    """The action governance checks: a tool governed by its input (http_request: by method) is checked as
    that action, as in the agent runtime that proposed it; invalid params fail when the step runs."""
    if tool is None:
        return step.action
    try:
        return tool.governance_action(tool.validate(step.params))
    except AtomError:
        return step.action


executors: dict[str, Executor] = {"plan": PlanExecutor()}
# A stored plan whose first step is one of these actions is run by the named executor wherever
# stored plans run (approved proposals, supervision sessions): the agent runtime's "agent.run".
plan_starts: dict[str, str] = {}


def register_executor(name: str, executor: Executor, *, first_action: str | None = None) -> None:
    executors[name] = executor
    if first_action is not None:
        plan_starts[first_action] = name


def executor_for(steps: list[PlanStep]) -> Executor:
    """The executor of a stored plan: the one registered for its first action, else "plan"."""
    return get_executor(plan_starts.get(steps[0].action, "plan") if steps else "plan")


def get_executor(name: str) -> Executor:
    executor = executors.get(name)
    if executor is None:
        from atom.errors import InvalidInput

        raise InvalidInput(f"No executor named {name!r}.", code="UNKNOWN_EXECUTOR", details={"field": "executor"})
    return executor
