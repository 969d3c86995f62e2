"""The trigger interceptor: routes every trigger by the agent's maturity (RULES.md, Trigger interceptor).

| trigger   | STUDENT              | INTERN                 | SUPERVISED                 | AUTONOMOUS |
| manual    | per-action governance only ------------------------------------------------------ |
| automated | blocked + training   | blocked + proposal     | supervised session (queue) | runs       |

The run itself is carried out by an executor chosen by name (`TriggerInfo.executor`), so the
workflow engine and the agent runtime plug in without changing this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.agents.models import AgentStatus
from atom.audit import service as audit
from atom.config import QueuePolicy, Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.governance.policy import GovernanceContext, TriggerKind
from atom.training import proposals, supervision
from atom.training import sessions as training_sessions
from atom.training.executor import RunResult, get_executor
from atom.training.models import BlockedTriggerContext, ProposalKind
from atom.training.plan import Plan


class Route(StrEnum):
    TRAINING = "training"
    PROPOSAL = "proposal"
    SUPERVISED = "supervised"
    RUN = "run"
    REFUSED = "refused"


@dataclass(frozen=True)
class TriggerInfo:
    source: str = "api"  # manual | schedule | webhook | event | workflow | agent | api
    kind: TriggerKind = TriggerKind.AUTOMATED
    payload: dict[str, Any] = field(default_factory=dict)
    executor: str = "plan"
    actor_user_id: str | None = None


@dataclass
class RoutingResult:
    route: Route
    agent_id: str
    agent_level: MaturityLevel
    reason: str
    blocked_trigger_id: str | None = None
    proposal_id: str | None = None
    supervision_session_id: str | None = None
    run: RunResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def intercept(
    *, db: Database, settings: Settings, agent_id: str, trigger: TriggerInfo, plan: Plan
) -> RoutingResult:
    get_executor(trigger.executor)  # an unknown executor is refused before anything is recorded
    async with db.session_scope() as session:
        audit.defer_writes(session)  # the routing's audit records (proposal, route): one INSERT, one head move
        result = await decide(session=session, settings=settings, agent_id=agent_id, trigger=trigger, plan=plan)
        await audit.write_deferred(session)
    return await follow_up(db=db, settings=settings, agent_id=agent_id, trigger=trigger, plan=plan, result=result)


async def decide(
    *, session: AsyncSession, settings: Settings, agent_id: str, trigger: TriggerInfo, plan: Plan
) -> RoutingResult:
    """The routing and what it records (blocked trigger, proposal, supervision session, audit), in `session`.

    The caller commits, then calls `follow_up`; a caller that runs the RUN route itself in the same
    transaction (the workflow engine's webhook intake) skips `follow_up` for it."""
    steps = plan.as_json()
    agent = await agents_service.get_agent(session=session, agent_id=agent_id)
    level = MaturityLevel(agent.maturity_level)
    result = RoutingResult(route=Route.RUN, agent_id=agent.id, agent_level=level, reason="")

    async def block(routed_to: str, reason: str) -> BlockedTriggerContext:
        blocked = BlockedTriggerContext(
            agent_id=agent.id,
            source=trigger.source,
            agent_level=level.value,
            routed_to=routed_to,
            reason=reason,
            trigger_payload=trigger.payload,
            plan=steps,
            created_at=utcnow(),
        )
        session.add(blocked)
        await session.flush()
        result.blocked_trigger_id = blocked.id
        return blocked

    if trigger.kind is TriggerKind.MANUAL:
        result.route, result.reason = Route.RUN, "a person asked: per-action governance only"
    elif agent.status != AgentStatus.ACTIVE.value:
        result.route, result.reason = Route.REFUSED, f"the agent is {agent.status}"
        await block("refused", result.reason)
    elif level is MaturityLevel.STUDENT:
        result.route, result.reason = Route.TRAINING, "STUDENT agents do not run automated triggers"
        blocked = await block("training", result.reason)
        estimate = await training_sessions.estimate(
            session=session, agent=agent, planned_actions=[s["action"] for s in steps], settings=settings
        )
        proposal = await proposals.create(
            session=session,
            agent_id=agent.id,
            kind=ProposalKind.TRAINING,
            plan=steps,
            source=trigger.source,
            blocked_trigger_id=blocked.id,
            settings=settings,
            estimate=estimate,
        )
        result.proposal_id = proposal.id
        result.extra = {
            "estimate_hours": estimate.hours,
            "range": [estimate.low, estimate.high],
            "basis": estimate.basis,
        }
    elif level is MaturityLevel.INTERN:
        result.route, result.reason = Route.PROPOSAL, "INTERN agents act on automated triggers after approval"
        blocked = await block("proposal", result.reason)
        proposal = await proposals.create(
            session=session,
            agent_id=agent.id,
            kind=ProposalKind.ACTION,
            plan=steps,
            source=trigger.source,
            blocked_trigger_id=blocked.id,
            settings=settings,
        )
        result.proposal_id = proposal.id
    elif level is MaturityLevel.SUPERVISED:
        result.route, result.reason = Route.SUPERVISED, "SUPERVISED agents run under live supervision"
        row = await supervision.create(session=session, agent_id=agent.id, plan=steps, source=trigger.source)
        result.supervision_session_id = row.id
    else:
        result.route, result.reason = Route.RUN, "AUTONOMOUS agents run"
    await audit.record(
        session=session,
        actor=audit.Actor.agent(agent.id),
        action="trigger.route",
        resource_type="agent",
        resource_id=agent.id,
        decision=result.route.value,
        reason=result.reason,
        details={
            "source": trigger.source,
            "kind": trigger.kind.value,
            "level": level.value,
            "steps": len(steps),
            "proposal_id": result.proposal_id,
            "supervision_session_id": result.supervision_session_id,
        },
    )
    return result


async def follow_up(
    *, db: Database, settings: Settings, agent_id: str, trigger: TriggerInfo, plan: Plan, result: RoutingResult
) -> RoutingResult:
    """After `decide`'s commit: start a supervision session that may run now, or run the RUN route."""
    if result.route is Route.SUPERVISED and result.supervision_session_id:
        session_id = result.supervision_session_id
        if supervision.supervisor_connected(session_id):
            await supervision.start_if_queued(db=db, settings=settings, session_id=session_id)
        elif settings.supervised_queue_policy is QueuePolicy.RUN_AND_NOTIFY:
            await supervision.start_if_queued(db=db, settings=settings, session_id=session_id, notify=True)
    elif result.route is Route.RUN:
        context = GovernanceContext(trigger=trigger.kind, source=trigger.source, actor_user_id=trigger.actor_user_id)
        result.run = await get_executor(trigger.executor).run(
            db=db, settings=settings, agent_id=agent_id, steps=plan.steps, context=context
        )
    return result
