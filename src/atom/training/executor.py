"""Executors run an approved or allowed plan, one governed step at a time.

The interceptor never knows how a run is carried out: it picks an executor by name from this
process's `Executors` ("plan"; the agent runtime registers "agent" for plans starting `agent.run`,
a started workflow engine registers "workflow" for plans starting `workflow.start`) and
hands it the steps, the governance context and optional hooks (supervision uses them to pause,
correct or terminate before the next step). Each step is checked by governance and its outcome
committed before the next one starts. The registry is built by `atom.registries.build_registries()`
(never at import time) and made this process's with `install`.

The plan executor runs each step as the agent the plan belongs to, as the agent runtime would: the
tool's handler sees a `ToolContext` of that agent (memory, canvas, guidance tools act for it), and a
step naming a tool of an agent run (`read_skill`, `skill_<name>`) gets the tools a `RunToolsProvider`
builds for that agent (the skills domain's, passed in by `atom.registries`). A step's `pin` (the
skill version its proposal recorded) reaches the handler, which runs exactly that or refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from atom.agents import service as agents_service
from atom.config import Settings
from atom.db.session import Database
from atom.errors import AtomError
from atom.governance import service as governance
from atom.governance.policy import GovernanceContext
from atom.observability.logging import get_logger
from atom.runtime.context import ToolContext, current_tool_context
from atom.runtime.tools import Tool, ToolRegistry
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


class RunToolsProvider(Protocol):
    async def __call__(
        self, *, db: Database, base: ToolRegistry, agent_id: str, pins: Mapping[str, dict[str, Any]]
    ) -> ToolRegistry:
        """`base` plus the tools of an agent run of `agent_id`; `pins`: each pinned step's action -> its pin."""


class PlanExecutor:
    """Runs each step's action as a registered tool (or one of the agent's run tools), after governance allows it."""

    def __init__(self, registry: ToolRegistry, run_tools: RunToolsProvider | None = None) -> None:
        self.registry = registry
        self.run_tools = run_tools

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
        tools = _PlanTools(self, db, agent_id, steps)
        for index, planned in enumerate(steps):
            step = planned
            if hooks is not None:
                adjusted = await hooks.before_step(index, planned)
                if adjusted is None:
                    result.ok, result.terminated, result.error = False, True, "terminated by the supervisor"
                    return result
                step = adjusted
            outcome = await self._run_step(db, settings, agent_id, index, step, context, await tools.get(step))
            result.steps.append(outcome)
            if hooks is not None:
                await hooks.after_step(outcome)
            if outcome.status != "done":
                result.ok = False
                result.error = f"step {index + 1} ({outcome.action}) {outcome.status}: {outcome.error}"
                return result
        return result

    async def _run_step(
        self,
        db: Database,
        settings: Settings,
        agent_id: str,
        index: int,
        step: PlanStep,
        context: GovernanceContext,
        tool: Tool | None,
    ) -> StepOutcome:
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
        # The handler runs as the plan's agent, like in its run (memory is its own, canvases are its own),
        # with what the proposal recorded of the tool (a skill version) to hold it to.
        run_context = ToolContext(
            settings=settings,
            agent_id=agent_id,
            execution_id=context.proposal_id or context.supervision_session_id or "",
            depth=0,
            db=db,
            pin=step.pin,
        )
        token = current_tool_context.set(run_context)
        try:
            output = await tool.handler(tool.validate(step.params))
            outcome = StepOutcome(index, step.action, step.params, "done", output=output)
        except AtomError as exc:
            outcome = StepOutcome(index, step.action, step.params, "failed", error=exc.message, reason_code=exc.code)
        except Exception as exc:  # a tool's own failure is the step's outcome, recorded, never lost
            log.error("tool failed", action=step.action, agent_id=agent_id, exc_info=exc)
            outcome = StepOutcome(index, step.action, step.params, "failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            current_tool_context.reset(token)
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


class _PlanTools:
    """The tools of one plan run: the process's, and the agent's run tools, built once when a step needs one."""

    def __init__(self, executor: PlanExecutor, db: Database, agent_id: str, steps: list[PlanStep]) -> None:
        self.executor, self.db, self.agent_id = executor, db, agent_id
        self.pins = {s.action: s.pin for s in steps if s.pin is not None}
        self.built: ToolRegistry | None = None

    async def get(self, step: PlanStep) -> Tool | None:
        tool = self.executor.registry.get(step.action)
        provider = self.executor.run_tools
        if provider is None or (tool is not None and step.pin is None):
            return tool
        if step.pin is not None and self.pins.get(step.action) != step.pin:  # a step the supervisor corrected
            self.pins[step.action], self.built = step.pin, None
        if self.built is None:
            self.built = await provider(db=self.db, base=self.executor.registry, agent_id=self.agent_id, pins=self.pins)
        return self.built.get(step.action)


def _governed_as(tool: Tool | None, step: PlanStep) -> str:
    """The action governance checks: a tool governed by its input (http_request: by method) is checked as
    that action, as in the agent runtime that proposed it; invalid params fail when the step runs."""
    if tool is None:
        return step.action
    try:
        return tool.governance_action(tool.validate(step.params))
    except AtomError:
        return step.action


class Executors:
    """Executors by name, and which executor runs a stored plan by its first action."""

    def __init__(self) -> None:
        self._executors: dict[str, Executor] = {}
        # A stored plan whose first step is one of these actions is run by the named executor wherever
        # stored plans run (approved proposals, supervision sessions): "agent.run", "workflow.start"...
        self._plan_starts: dict[str, str] = {}

    def register(self, name: str, executor: Executor, *, first_actions: tuple[str, ...] = ()) -> None:
        self._executors[name] = executor
        for action in first_actions:
            self._plan_starts[action] = name

    def unregister(self, name: str) -> None:
        self._executors.pop(name, None)
        for action in [a for a, n in self._plan_starts.items() if n == name]:
            del self._plan_starts[action]

    def get(self, name: str) -> Executor | None:
        return self._executors.get(name)

    def named(self, name: str) -> Executor:
        executor = self._executors.get(name)
        if executor is None:
            from atom.errors import InvalidInput

            raise InvalidInput(f"No executor named {name!r}.", code="UNKNOWN_EXECUTOR", details={"field": "executor"})
        return executor

    def for_plan(self, steps: list[PlanStep]) -> Executor:
        """The executor of a stored plan: the one registered for its first action, else "plan"."""
        return self.named(self._plan_starts.get(steps[0].action, "plan") if steps else "plan")


_current: Executors | None = None


def install(value: Executors | None) -> None:
    global _current
    _current = value


def current() -> Executors:
    """This process's executors (built by `atom.registries.ensure_registries`)."""
    if _current is None:
        from atom.errors import Unavailable

        raise Unavailable("The executors are not built in this process.", code="REGISTRIES_NOT_BUILT")
    return _current


def executor_for(steps: list[PlanStep]) -> Executor:
    """The executor of a stored plan: the one registered for its first action, else "plan"."""
    return current().for_plan(steps)


def get_executor(name: str) -> Executor:
    return current().named(name)
