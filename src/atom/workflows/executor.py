"""The workflow runner as an executor of the trigger interceptor (training domain).

A workflow reaches the interceptor as a plan: a `workflow.start` step naming the workflow's
immutable version, its inputs and trigger payload, followed by one step per workflow step (what
a person approving an INTERN's proposal reads). Executing that plan starts a durable run:

- AUTONOMOUS agents and manual runs: the run starts at once and proceeds on the workers.
- an approved proposal: the run starts with the proposal's id in its governance context; the
  plan's steps must equal the version's (the workflow is edited by a new version, not in a proposal).
- a supervision session: the run is driven step by step in this process, with the supervisor's
  hooks before and after each step (pause, correct the next step's input, terminate).

Approval steps inside a workflow are proposals too (plan `workflow.approve_step`); approving one
through the proposals API continues the run.

A started runner (`workflows/app.py`) registers this executor as "workflow" for plans whose first
action is `workflow.start` or `workflow.approve_step`, so the proposal and supervision services, which
pick a stored plan's executor by its first action, send workflow plans here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.governance.policy import GovernanceContext
from atom.training import proposals as proposals_service
from atom.training.executor import Executors, RunResult, StepHooks, StepOutcome
from atom.training.plan import Plan, PlanStep
from atom.workflows import interventions, machine, run_context, service, templates
from atom.workflows.definition import WorkflowDefinition
from atom.workflows.models import RunStatus, StepStatus, Workflow, WorkflowVersion
from atom.workflows.state import RunState

if TYPE_CHECKING:
    from atom.workflows.runner import StepRunner

START_ACTION = "workflow.start"
WORKFLOW_EXECUTOR = "workflow"
INLINE_POLL_S = 1.0


def build_plan(
    *,
    workflow: Workflow,
    version: WorkflowVersion,
    definition: WorkflowDefinition,
    inputs: dict[str, Any],
    payload: dict[str, Any],
    source: str,
    trigger_id: str | None,
    chain_depth: int,
) -> Plan:
    start = PlanStep(
        action=START_ACTION,
        params={
            "workflow_id": workflow.id,
            "workflow": workflow.name,
            "version": version.version,
            "definition_hash": version.definition_hash,
            "inputs": inputs,
            "trigger": payload,
            "trigger_id": trigger_id,
            "source": source,
            "chain_depth": chain_depth,
        },
    )
    return Plan(steps=[start, *step_plan(definition, version)])


def step_plan(definition: WorkflowDefinition, version: WorkflowVersion) -> list[PlanStep]:
    steps = []
    for spec in definition.steps:
        summary = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude={"id", "agent"})
        summary["step"] = spec.id
        summary["agent_id"] = version.agent_ids.get(spec.id) or version.agent_ids.get("")
        steps.append(PlanStep(action=spec.action or f"workflow.{spec.type.value}", params=summary))
    return steps


async def start_run_in(
    session: AsyncSession,
    runner: StepRunner,
    *,
    workflow: Workflow,
    version: WorkflowVersion,
    definition: WorkflowDefinition,
    agent_id: str,
    params: dict[str, Any],
    context: GovernanceContext,
    inline: bool = False,
    claim: machine.ClaimNext | None = None,
    insert: bool = True,
) -> tuple[RunState, machine.Advance]:
    """Create the run of a `workflow.start` plan step's `params` in `session` and audit it (the caller
    commits, then hands `Advance` to `runner.after_commit`). With `claim`, a first step ready now is
    claimed for the caller in the same transaction (`Advance.claimed`); `insert=False`: see
    `machine.create_run`."""
    from atom.audit import service as audit

    inputs = service.require_inputs(definition, dict(params.get("inputs") or {}))
    run_context = GovernanceContext(
        trigger=context.trigger,
        source=str(params.get("source") or context.source),
        proposal_id=context.proposal_id,
        supervision_session_id=context.supervision_session_id,
        actor_user_id=context.actor_user_id,
    )
    run, advance = await machine.create_run(
        session,
        workflow=workflow,
        version=version,
        definition=definition,
        agent_id=agent_id,
        inputs=inputs,
        payload=dict(params.get("trigger") or {}),
        context=run_context,
        trigger_id=params.get("trigger_id"),
        chain_depth=int(params.get("chain_depth") or 0),
        mode="inline" if inline else "pool",
        now=runner.clock(),
        settings=runner.settings,
        claim=claim,
        insert=insert,
    )
    await audit.record(
        session=session,
        actor=audit.Actor.user(context.actor_user_id) if context.actor_user_id else audit.Actor.agent(agent_id),
        action="workflow.run.start",
        resource_type="workflow_run",
        resource_id=run.id,
        decision="done",
        details={
            "workflow_id": workflow.id,
            "version": version.version,
            "source": run.source,
            "trigger": context.trigger.value,
            "proposal_id": context.proposal_id,
            "supervision_session_id": context.supervision_session_id,
        },
    )
    return run, advance


class WorkflowExecutor:
    def __init__(self, runner: StepRunner) -> None:
        self.runner = runner

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
        if not steps:
            return RunResult(ok=False, error="empty plan")
        if steps[0].action == machine.APPROVE_STEP_ACTION:
            return await self._approve_step(steps[0], context)
        if steps[0].action != START_ACTION:
            return RunResult(ok=False, error=f"not a workflow plan (starts with {steps[0].action!r})")
        try:
            run_id = await self._start(agent_id, steps, context, inline=hooks is not None)
        except Exception as exc:
            from atom.errors import AtomError

            message = exc.message if isinstance(exc, AtomError) else f"{type(exc).__name__}: {exc}"
            return RunResult(ok=False, error=message, steps=[StepOutcome(0, START_ACTION, {}, "failed", error=message)])
        started = StepOutcome(
            0, START_ACTION, {"workflow_id": steps[0].params.get("workflow_id")}, "done", {"run_id": run_id}
        )
        if hooks is None:
            return RunResult(ok=True, steps=[started])
        return await self._drive_inline(run_id, hooks, started)

    async def _start(self, agent_id: str, steps: list[PlanStep], context: GovernanceContext, *, inline: bool) -> str:
        from atom.errors import Conflict

        runner = self.runner
        params = steps[0].params
        async with runner.db.session_scope() as session:
            workflow = await service.get_workflow(session=session, ref=str(params["workflow_id"]))
            version = await service.get_version(
                session=session, workflow_id=workflow.id, version=int(params["version"])
            )
            if version.definition_hash != params.get("definition_hash"):
                raise Conflict("The workflow version does not match the plan's hash.", code="PLAN_HASH_MISMATCH")
            definition = await runner.definition(session, workflow.id, version.version)
            expected = [s.model_dump() for s in step_plan(definition, version)]
            if [s.model_dump() for s in steps[1:]] != expected:
                raise Conflict(
                    "A workflow's steps cannot be changed in a proposal; update the workflow (a new version) instead.",
                    code="PLAN_MODIFIED",
                )
            run, advance = await start_run_in(
                session,
                runner,
                workflow=workflow,
                version=version,
                definition=definition,
                agent_id=agent_id,
                params=params,
                context=context,
                inline=inline,
            )
            run_id = run.id
        if inline:
            runner.wakeup_event(run_id)
        await runner.after_commit(advance)
        return run_id

    async def _drive_inline(self, run_id: str, hooks: StepHooks, started: StepOutcome) -> RunResult:
        runner = self.runner
        outcomes = [started]
        terminated = False
        wakeup = runner.wakeup_event(run_id)
        try:
            while True:
                wakeup.clear()
                async with runner.db.session_scope() as session:
                    run = await service.get_run(session=session, run_id=run_id)
                    if run.status != RunStatus.RUNNING.value:
                        break
                    steps = await machine.load_steps(session, run_id)
                    now = runner.clock()
                    ready = [
                        s
                        for s in steps
                        if s.status == StepStatus.QUEUED.value and (s.due_at is None or s.due_at <= now)
                    ]
                    preview: dict[str, Any] = {}
                    if ready:
                        definition = await runner.definition(session, run.workflow_id, run.version)
                        spec = definition.step(ready[0].step_key)
                        try:
                            preview = templates.render_value(
                                spec.with_, run_context.template_context(run, steps), field=f"steps.{spec.id}.with"
                            )
                        except templates.TemplateError:
                            preview = dict(spec.with_)
                if not ready:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wakeup.wait(), timeout=INLINE_POLL_S)
                    continue
                step = ready[0]
                planned = PlanStep(action=step.action or "noop", params=preview)
                decided = await hooks.before_step(step.position, planned)
                if decided is None:
                    terminated = True
                    await self._terminate(run_id)
                    break
                override = decided.params if decided.params != planned.params else None
                outcome = await runner.run_step(step.id, override_input=override)
                if outcome is None:
                    continue
                status = "done" if outcome.ok else ("denied" if outcome.code and "GOVERN" in outcome.code else "failed")
                record = StepOutcome(
                    step.position,
                    step.action or "",
                    decided.params,
                    status,
                    output=outcome.output,
                    error=outcome.error,
                    reason_code=outcome.code,
                )
                outcomes.append(record)
                await hooks.after_step(record)
        finally:
            runner.forget_wakeup(run_id)
        async with runner.db.session_scope() as session:
            run = await service.get_run(session=session, run_id=run_id)
        return RunResult(
            ok=run.status == RunStatus.SUCCEEDED.value, steps=outcomes, error=run.error, terminated=terminated
        )

    async def _terminate(self, run_id: str) -> None:
        from atom.audit import service as audit
        from atom.errors import Conflict

        async def body(session: Any) -> machine.Advance | None:
            try:
                return await interventions.cancel_run(session, run_id=run_id, actor=audit.Actor.system(), now=utcnow())
            except Conflict:
                return None

        await self.runner.transact(body)

    async def _approve_step(self, step: PlanStep, context: GovernanceContext) -> RunResult:
        runner = self.runner
        run_id, key = str(step.params.get("run_id")), str(step.params.get("step"))

        async def body(session: Any) -> machine.Advance | None:
            run = await service.get_run(session=session, run_id=run_id)
            steps = await machine.load_steps(session, run_id)
            row = next((s for s in steps if s.step_key == key), None)
            if row is None or row.proposal_id != context.proposal_id or context.proposal_id is None:
                return None
            proposal = await proposals_service.get(session=session, proposal_id=context.proposal_id)
            definition = await runner.definition(session, run.workflow_id, run.version)
            return await interventions.resolve_waiting(
                session,
                run_id=run_id,
                step_run_id=row.id,
                definition=definition,
                approved=True,
                output={"approved": True, "approved_by": proposal.decided_by, "proposal_id": proposal.id},
                error=None,
                code=None,
                now=runner.clock(),
                settings=runner.settings,
            )

        advance = await runner.transact(body)
        if advance is None:
            return RunResult(ok=False, error="the workflow step is no longer waiting for this approval")
        return RunResult(
            ok=True, steps=[StepOutcome(0, step.action, step.params, "done", {"run_id": run_id, "step": key})]
        )


def register_executor(executors: Executors, runner: StepRunner) -> WorkflowExecutor:
    executor = WorkflowExecutor(runner)
    executors.register(WORKFLOW_EXECUTOR, executor, first_actions=(START_ACTION, machine.APPROVE_STEP_ACTION))
    return executor


def unregister_executor(executors: Executors, runner: StepRunner) -> None:
    current = executors.get(WORKFLOW_EXECUTOR)
    if isinstance(current, WorkflowExecutor) and current.runner is runner:
        executors.unregister(WORKFLOW_EXECUTOR)
