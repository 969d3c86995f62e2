"""Automated agent runs go through the trigger interceptor (RULES.md, Trigger interceptor).

A run a person asked for (a chat message, execute with `trigger: manual`) gets per-action
governance only. An automated run (`trigger: automated`, `atom-os execute --automated`,
`delegate_to_agent`) is routed by the agent's maturity before anything runs:

- STUDENT: the interceptor records a BlockedTriggerContext and a training proposal; nothing runs.
- INTERN: the model runs, and each tool call that needs approval becomes an action proposal holding
  exactly that call. This is the "action proposal holding the exact plan" of an agent run: its plan
  is not known before the model thinks.
- SUPERVISED: the run is the plan of a supervision session; it starts when a supervisor connects
  (or at once under run-and-notify) and each tool call passes the supervisor's hooks.
- AUTONOMOUS: the interceptor runs it at once.

The interceptor runs agent plans (`[{"action": "agent.run", "params": {"task": ...}}]`) with the
"agent" executor below. In the task of the request that fired the trigger, the executor reuses that
request's runtime and event sink (a context variable), so a streamed answer still reaches its
client; a supervised run's events go to its supervisor instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from atom.agents import service as agents_service
from atom.agents.models import AgentStatus
from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.errors import AtomError, Unavailable
from atom.governance.maturity import MaturityLevel
from atom.governance.policy import GovernanceContext, TriggerKind
from atom.training import interceptor, supervision
from atom.training.executor import Executors, StepHooks, StepOutcome
from atom.training.executor import RunResult as PlanRunResult
from atom.training.interceptor import Route, RoutingResult
from atom.training.plan import Plan, PlanStep

if TYPE_CHECKING:
    from atom.chat.runtime import AgentRuntime, Emit, RunRequest, RunResult

AGENT_EXECUTOR = "agent"
RUN_ACTION = "agent.run"
TERMINATED = "SUPERVISION_TERMINATED"
INTERN_REASON = "INTERN agents run; each tool call that needs approval becomes a proposal holding that call"
ROUTE_CODES = {
    Route.TRAINING: "ROUTED_TO_TRAINING",
    Route.PROPOSAL: "ROUTED_TO_PROPOSAL",
    Route.SUPERVISED: "ROUTED_TO_SUPERVISION",
    Route.REFUSED: "TRIGGER_REFUSED",
}
SOURCES = {"delegation": "agent", "workflow": "workflow"}  # the run's trigger -> the interceptor's source


class AgentRunParams(BaseModel):
    """The params of an `agent.run` step: what the agent is asked, and who asked."""

    task: str = Field(min_length=1)
    model: str | None = None
    trigger: str = "api"
    user_id: str | None = None
    parent_execution_id: str | None = None
    depth: int = Field(default=0, ge=0)


class TriggerRouted(AtomError):
    """An automated run was routed elsewhere (training, supervision, refused): it did not run here."""

    status_code = 202

    def __init__(self, routed: RoutingResult, supervision_status: str | None = None) -> None:
        message = describe(routed, supervision_status)
        super().__init__(
            message,
            code=ROUTE_CODES.get(routed.route, "TRIGGER_ROUTED"),
            details={
                "route": routed.route.value,
                "agent_id": routed.agent_id,
                "agent_level": routed.agent_level.value,
                "reason": routed.reason,
                "message": message,
                "blocked_trigger_id": routed.blocked_trigger_id,
                "proposal_id": routed.proposal_id,
                "supervision_session_id": routed.supervision_session_id,
                "supervision_status": supervision_status,
                "estimate_hours": routed.extra.get("estimate_hours"),
            },
        )
        self.routed = routed


def describe(routed: RoutingResult, supervision_status: str | None) -> str:
    if routed.route is Route.TRAINING:
        hours = routed.extra.get("estimate_hours")
        return (
            f"Routed to training: {routed.reason}. Nothing ran. Blocked trigger {routed.blocked_trigger_id}; "
            f"training proposal {routed.proposal_id}" + (f" (estimate {hours} h)." if hours is not None else ".")
        )
    if routed.route is Route.SUPERVISED:
        when = (
            "waits in the supervised queue until a supervisor connects"
            if supervision_status == "queued"
            else "has started under supervision"
        )
        return (
            f"Routed to supervision: {routed.reason}. The run happens in supervision session "
            f"{routed.supervision_session_id}, which {when}."
        )
    if routed.route is Route.PROPOSAL:
        return f"Routed to a proposal: {routed.reason}. Nothing ran yet; proposal {routed.proposal_id}."
    return f"Refused: {routed.reason}. Nothing ran (blocked trigger {routed.blocked_trigger_id})."


@dataclasses.dataclass
class _Caller:
    """The request that fired the trigger, as seen from the executor running in its task."""

    runtime: AgentRuntime
    emit: Emit
    request: RunRequest
    result: RunResult | None = None


_caller: ContextVar[_Caller | None] = ContextVar("atom_agent_trigger_caller", default=None)


def plan_of(request: RunRequest) -> Plan:
    params = AgentRunParams(
        task=request.input,
        model=request.model,
        trigger=request.trigger,
        user_id=request.user_id,
        parent_execution_id=request.parent_execution_id,
        depth=request.depth,
    )
    return Plan(steps=[PlanStep(action=RUN_ACTION, params=params.model_dump(exclude_none=True))])


async def run_automated(runtime: AgentRuntime, request: RunRequest, emit: Emit) -> RunResult:
    """Route an automated run; returns the run when it ran here, else raises `TriggerRouted`."""
    async with runtime.db.session_scope() as session:
        agent = await agents_service.resolve_ref(session=session, ref=request.agent_ref)
        agent_id = agent.id
        per_call = agent.maturity_level == MaturityLevel.INTERN.value and agent.status == AgentStatus.ACTIVE.value
        if per_call:
            await audit.record(
                session=session,
                actor=audit.Actor.agent(agent_id),
                action="trigger.route",
                resource_type="agent",
                resource_id=agent_id,
                decision=Route.PROPOSAL.value,
                reason=INTERN_REASON,
                details={"source": SOURCES.get(request.trigger, "api"), "kind": TriggerKind.AUTOMATED.value},
            )
    if per_call:
        return await runtime.run(dataclasses.replace(request, routed=True), emit)

    caller = _Caller(runtime=runtime, emit=emit, request=request)
    token = _caller.set(caller)
    try:
        routed = await interceptor.intercept(
            db=runtime.db,
            settings=runtime.settings,
            agent_id=agent_id,
            trigger=interceptor.TriggerInfo(
                source=SOURCES.get(request.trigger, "api"),
                kind=TriggerKind.AUTOMATED,
                payload={"execution_trigger": request.trigger, "parent_execution_id": request.parent_execution_id},
                executor=AGENT_EXECUTOR,
                actor_user_id=request.user_id,
            ),
            plan=plan_of(request),
        )
    finally:
        _caller.reset(token)
    if routed.route is Route.RUN and caller.result is not None:
        return caller.result
    status = None
    if routed.supervision_session_id is not None:
        async with runtime.db.session_scope() as session:
            status = (await supervision.get(session=session, session_id=routed.supervision_session_id)).status
    refusal = TriggerRouted(routed, status)
    emit({"type": "routed", "code": refusal.code, **refusal.details})
    raise refusal


def _discard(event: dict[str, Any]) -> None:
    return None


class AgentExecutor:
    """Runs an `agent.run` plan with the agent runtime, under the governance context it is given
    (the interceptor's automated run, an approved proposal, a supervision session)."""

    def __init__(self) -> None:
        self.state: Any = None  # the app state the LLM gateway lives on (`install`)

    async def run(
        self,
        *,
        db: Database,
        settings: Settings,
        agent_id: str,
        steps: list[PlanStep],
        context: GovernanceContext,
        hooks: StepHooks | None = None,
    ) -> PlanRunResult:
        from atom.chat.runtime import RunRequest  # the runtime imports this module

        step = steps[0]
        try:
            params = AgentRunParams.model_validate(step.params)
        except ValidationError as exc:
            error = f"{RUN_ACTION} params are invalid: {exc.errors()[0]['msg']}"
            return PlanRunResult(ok=False, steps=[StepOutcome(0, step.action, step.params, "failed", error=error)])
        caller = _caller.get()
        runtime = caller.runtime if caller is not None else await self._runtime(db, settings)
        live = caller if caller is not None and hooks is None else None  # a supervised run reports to its hooks
        request = RunRequest(
            agent_ref=agent_id,
            input=params.task,
            trigger=params.trigger,
            trigger_kind=context.trigger,
            session_id=live.request.session_id if live else None,
            user_id=params.user_id or context.actor_user_id,
            parent_execution_id=params.parent_execution_id,
            depth=params.depth,
            model=params.model,
            stream=live.request.stream if live else False,
            routed=True,
            proposal_id=context.proposal_id,
            supervision_session_id=context.supervision_session_id,
        )
        try:
            result = await runtime.run(request, live.emit if live else _discard, hooks=hooks)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if hooks is None or task is None:
                raise
            task.uncancel()  # cancelling a supervised run ends it (recorded cancelled); the session finishes
            return PlanRunResult(ok=False, terminated=True, error="The run was cancelled.")
        if live is not None:
            live.result = result
        outcome = StepOutcome(
            index=sum(1 for call in result.tool_calls if "supervision_step" in call),
            action=RUN_ACTION,
            params=step.params,
            status="done" if result.ok else "failed",
            output={"execution_id": result.execution_id, "status": result.status.value, "output": result.output},
            error=result.error,
            reason_code=result.error_code,
        )
        if hooks is not None:
            await hooks.after_step(outcome)  # the supervisor sees the answer and the execution it belongs to
        return PlanRunResult(
            ok=result.ok, steps=[outcome], error=result.error, terminated=result.error_code == TERMINATED
        )

    async def _runtime(self, db: Database, settings: Settings) -> AgentRuntime:
        from atom.chat.driver import runtime_for  # the driver imports the runtime, which imports this module

        if self.state is None:
            raise Unavailable(
                "Agent runs are not set up in this process; they run in `atom-os serve`.",
                code="AGENT_RUNTIME_UNAVAILABLE",
            )
        return await runtime_for(self.state, db, settings)


def register(executors: Executors) -> AgentExecutor:
    """Register the "agent" executor for `agent.run` plans (called by `atom.registries.build_registries`)."""
    executor = AgentExecutor()
    executors.register(AGENT_EXECUTOR, executor, first_actions=(RUN_ACTION,))
    return executor


def install(executors: Executors, state: Any) -> None:
    """Let agent plans started outside a request (a supervisor connecting later) reach the app's LLM gateway."""
    executor = executors.get(AGENT_EXECUTOR)
    if isinstance(executor, AgentExecutor):
        executor.state = state
