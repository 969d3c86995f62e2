"""`check(agent, action, context) -> Decision`: the one gate every agent action passes.

Fail closed: an unknown agent, an unknown action or any internal error denies. Cached decisions
answer in microseconds; every decision that is not a cached repeat of an allowed read (complexity
1) writes an audit record, and denials always do.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.config import Settings
from atom.governance import catalogue
from atom.governance.cache import decision_cache
from atom.governance.catalogue import ActionSpec
from atom.governance.maturity import MaturityLevel
from atom.governance.policy import AgentSnapshot, Decision, GovernanceContext, Outcome, decide
from atom.observability.logging import get_logger
from atom.observability.metrics import GOVERNANCE_DECISIONS

log = get_logger("atom.governance")
# Not cached: these can change without the agent changing (a new agent id, a newly registered
# action, a transient failure), and arbitrary names must not grow the cache.
_NOT_CACHED = frozenset({"AGENT_NOT_FOUND", "GOVERNANCE_ERROR", "UNKNOWN_ACTION"})


async def check(
    *, session: AsyncSession, agent_id: str, action: str, context: GovernanceContext, settings: Settings
) -> Decision:
    complexity, known = catalogue.current().classify(action)
    if settings.emergency_governance_bypass:
        return await _bypass(session, agent_id, action, complexity, context)
    key = context.cache_key(action)
    cached = decision_cache.lookup(agent_id, key)
    if cached is not None:
        if not (cached.allowed and cached.complexity == 1):
            await _audit(session, agent_id, cached, context)
        return cached
    generation = decision_cache.generation(agent_id)
    decision = await _decide_fresh(session, agent_id, action, complexity, known, context)
    if decision.reason_code not in _NOT_CACHED:
        decision_cache.store(agent_id, key, decision, generation)
    GOVERNANCE_DECISIONS.labels(outcome=decision.outcome.value).inc()
    await _audit(session, agent_id, decision, context)
    return decision


async def _decide_fresh(
    session: AsyncSession, agent_id: str, action: str, complexity: int, known: bool, context: GovernanceContext
) -> Decision:
    try:
        agent = await agents_service.find_agent(session=session, agent_id=agent_id)
        snapshot = AgentSnapshot(agent.id, MaturityLevel(agent.maturity_level), agent.status) if agent else None
        if snapshot is not None and snapshot.status == "active" and not known:
            return _unavailable(action, complexity, snapshot.level)
        return decide(snapshot, action, complexity, context)
    except Exception as exc:  # fail closed: whatever went wrong, the action does not run
        log.error("governance check failed; denying", agent_id=agent_id, action=action, exc_info=exc)
        return Decision(
            allowed=False,
            outcome=Outcome.DENY,
            reason_code="GOVERNANCE_ERROR",
            reason="Governance could not decide; the action is denied.",
            action=action,
            complexity=complexity,
            required_level=MaturityLevel.for_complexity(complexity),
            agent_level=None,
        )


def _unavailable(action: str, complexity: int, level: MaturityLevel | None) -> Decision:
    """Fail closed: nothing in this build implements `action` (planned, or not in the catalogue at all)."""
    spec = catalogue.current().get(action)
    if spec is not None:
        reason = (
            f"{action!r} is in the catalogue (complexity {complexity}) but nothing implements it yet; "
            "it is not available."
        )
    else:
        reason = f"{action!r} is not a registered action; unknown actions are denied."
    return Decision(
        allowed=False,
        outcome=Outcome.DENY,
        reason_code="UNKNOWN_ACTION",
        reason=reason,
        action=action,
        complexity=complexity,
        required_level=MaturityLevel.AUTONOMOUS,
        agent_level=level,
    )


async def _bypass(
    session: AsyncSession, agent_id: str, action: str, complexity: int, context: GovernanceContext
) -> Decision:
    decision = Decision(
        allowed=True,
        outcome=Outcome.ALLOW,
        reason_code="EMERGENCY_BYPASS",
        reason="ATOM_EMERGENCY_GOVERNANCE_BYPASS is on: governance is not enforced.",
        action=action,
        complexity=complexity,
        required_level=MaturityLevel.for_complexity(complexity),
        agent_level=None,
        bypassed=True,
    )
    log.warning("GOVERNANCE BYPASSED", agent_id=agent_id, action=action, complexity=complexity)
    await _audit(session, agent_id, decision, context, decision_label="bypassed")
    return decision


async def _audit(
    session: AsyncSession,
    agent_id: str,
    decision: Decision,
    context: GovernanceContext,
    decision_label: str | None = None,
) -> None:
    await audit.record(
        session=session,
        actor=audit.Actor.agent(agent_id),
        action="governance.check",
        resource_type="action",
        resource_id=decision.action[:64],
        decision=decision_label or decision.outcome.value,
        reason=decision.reason,
        details={
            "reason_code": decision.reason_code,
            "complexity": decision.complexity,
            "agent_level": decision.agent_level.value if decision.agent_level else None,
            "trigger": context.trigger.value,
            "source": context.source,
            "proposal_id": context.proposal_id,
            "supervision_session_id": context.supervision_session_id,
            "actor_user_id": context.actor_user_id,
            "cached": decision.cached,
        },
    )


def actions() -> list[ActionSpec]:
    """Every action in this process's catalogue, by complexity then name."""
    return catalogue.current().all()


def dry_run(agent_level: MaturityLevel, status: str, agent_id: str) -> list[tuple[str, int, Decision, Decision]]:
    """What may this agent do: each catalogued action's decision, manual and automated (no audit per row).
    An action nothing implements is denied UNKNOWN_ACTION (not available) for an active agent, as `check` does."""
    from atom.governance.policy import TriggerKind

    snapshot = AgentSnapshot(agent_id, agent_level, status)
    rows = []
    for spec in catalogue.current().all():
        if not spec.available and status == "active":
            unavailable = _unavailable(spec.name, spec.complexity, agent_level)
            rows.append((spec.name, spec.complexity, unavailable, unavailable))
            continue
        manual = decide(snapshot, spec.name, spec.complexity, GovernanceContext(trigger=TriggerKind.MANUAL))
        automated = decide(snapshot, spec.name, spec.complexity, GovernanceContext(trigger=TriggerKind.AUTOMATED))
        rows.append((spec.name, spec.complexity, manual, automated))
    return rows
