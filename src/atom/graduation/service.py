"""Graduation (RULES.md): readiness from real episodes, the exam, rule sets, and gated promotion.

Readiness for a level: episodes >= the minimum, intervention rate <= the maximum, constitutional
score >= the minimum (all settings, RULES.md defaults). score = 40 * min(episodes / min, 1)
+ 30 * (1 - min(rate / max, 1)) (when max is 0: 30 if the rate is 0, else 0) + 30 * min(score / min, 1).

- An episode counts when it is active (not archived or consolidated into another).
- Its intervention: a supervisor's intervention, a corrected tool call, a rejected proposal, or a
  correction of one of its runs.
- Its constitutional score: the share of its actions that satisfy every rule of the rule set in
  force; an episode without actions has nothing to violate (1.0).
- The exam replays the agent's edge-case episodes (failures, interventions, corrections) as a dry
  run: each recorded action goes through the governance policy at the target level and through
  the rules. Nothing is executed (side-effecting tools are represented by their recorded calls).
  Passing means zero violations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.agents.models import Agent
from atom.audit import service as audit
from atom.config import Settings
from atom.db.base import utcnow
from atom.errors import Conflict, Forbidden, InvalidInput
from atom.governance.maturity import MaturityLevel
from atom.governance.policy import AgentSnapshot, GovernanceContext, TriggerKind, decide
from atom.graduation import evidence as evidence_reader
from atom.graduation import rules
from atom.graduation.models import GraduationExam, RuleSetVersion
from atom.memory import service as memory_service
from atom.memory.models import Episode

Classify = Callable[[str], tuple[int, bool]]
PAGE = 200


@dataclass(frozen=True)
class Criteria:
    min_episodes: int
    max_intervention_rate: float
    min_constitutional_score: float


def criteria(settings: Settings, level: MaturityLevel) -> Criteria:
    if level is MaturityLevel.INTERN:
        return Criteria(
            settings.graduation_intern_min_episodes,
            settings.graduation_intern_max_intervention_rate,
            settings.graduation_intern_min_constitutional_score,
        )
    if level is MaturityLevel.SUPERVISED:
        return Criteria(
            settings.graduation_supervised_min_episodes,
            settings.graduation_supervised_max_intervention_rate,
            settings.graduation_supervised_min_constitutional_score,
        )
    if level is MaturityLevel.AUTONOMOUS:
        return Criteria(
            settings.graduation_autonomous_min_episodes,
            settings.graduation_autonomous_max_intervention_rate,
            settings.graduation_autonomous_min_constitutional_score,
        )
    raise InvalidInput("Nobody graduates to STUDENT.", code="NOT_A_PROMOTION", details={"field": "level"})


def readiness_score(c: Criteria, episodes: int, rate: float, score: float) -> float:
    part_episodes = 40 * min(episodes / c.min_episodes, 1) if c.min_episodes > 0 else 40
    if c.max_intervention_rate == 0:
        part_rate = 30.0 if rate == 0 else 0.0
    else:
        part_rate = 30 * (1 - min(rate / c.max_intervention_rate, 1))
    part_score = 30 * min(score / c.min_constitutional_score, 1) if c.min_constitutional_score > 0 else 30
    return round(part_episodes + part_rate + part_score, 2)


# --- rule sets -------------------------------------------------------------------------------
async def current_rules(*, session: AsyncSession) -> tuple[rules.RuleSet, RuleSetVersion | None]:
    row = await session.scalar(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1))
    return (rules.parse(row.source) if row is not None else rules.EMPTY), row


async def save_rules(*, session: AsyncSession, source: str, actor: audit.Actor) -> RuleSetVersion:
    parsed = rules.parse(source)  # refused whole, with the rule and line, before anything is stored
    latest = await session.scalar(select(func.max(RuleSetVersion.version)))
    row = RuleSetVersion(
        version=(latest or 0) + 1,
        source=source,
        rule_ids=[rule.id for rule in parsed.rules],
        created_by=actor.id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="graduation.rules.update",
        resource_type="rule_set",
        resource_id=row.id,
        decision="done",
        details={"version": row.version, "rules": row.rule_ids},
    )
    return row


async def rule_versions(*, session: AsyncSession) -> list[RuleSetVersion]:
    return list((await session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version.desc()))).all())


# --- readiness -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Readiness:
    agent_id: str
    agent_name: str
    current_level: str
    target_level: str
    episodes: int
    intervention_rate: float
    constitutional_score: float
    score: float
    ready: bool
    gaps: list[str]
    criteria: Criteria
    rule_set_version: int | None


async def _agent_episodes(session: AsyncSession, agent_id: str) -> list[Episode]:
    found: list[Episode] = []
    cursor: str | None = None
    while True:
        page, cursor = await memory_service.list_episodes(
            session=session, agent_id=agent_id, reader=None, status="active", since=None, limit=PAGE, cursor=cursor
        )
        found.extend(page)
        if cursor is None:
            return found


def _context(agent: Agent, action: evidence_reader.Action) -> dict[str, Any]:
    return {"level": agent.maturity_level, "trigger": action.trigger, "status": action.status, "source": action.source}


def next_level(agent: Agent) -> MaturityLevel:
    current = MaturityLevel(agent.maturity_level)
    order = list(MaturityLevel)
    if current is order[-1]:
        raise Conflict("The agent is already AUTONOMOUS.", code="ALREADY_AUTONOMOUS", details={"agent_id": agent.id})
    return order[order.index(current) + 1]


async def readiness(
    *, session: AsyncSession, settings: Settings, agent_ref: str, target: MaturityLevel | None = None
) -> Readiness:
    agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
    level = target or next_level(agent)
    c = criteria(settings, level)
    rule_set, version = await current_rules(session=session)
    episodes = await _agent_episodes(session, agent.id)
    intervened, scores = 0, []
    for episode in episodes:
        found = await evidence_reader.for_episode(session, episode)
        intervened += found.intervened
        if found.actions:
            ok = sum(not rule_set.check(a.name, a.params, _context(agent, a)) for a in found.actions)
            scores.append(ok / len(found.actions))
        else:
            scores.append(1.0)
    count = len(episodes)
    rate = intervened / count if count else 0.0
    constitutional = sum(scores) / len(scores) if scores else 0.0
    gaps = []
    if count < c.min_episodes:
        gaps.append(f"{count} episodes of the {c.min_episodes} {level.value} needs ({c.min_episodes - count} more).")
    if rate > c.max_intervention_rate:
        gaps.append(f"Intervention rate {rate:.2f} is above the {c.max_intervention_rate:.2f} {level.value} allows.")
    if constitutional < c.min_constitutional_score:
        gaps.append(
            f"Constitutional score {constitutional:.2f} is below the "
            f"{c.min_constitutional_score:.2f} {level.value} needs."
        )
    return Readiness(
        agent_id=agent.id,
        agent_name=agent.name,
        current_level=agent.maturity_level,
        target_level=level.value,
        episodes=count,
        intervention_rate=round(rate, 4),
        constitutional_score=round(constitutional, 4),
        score=readiness_score(c, count, rate, constitutional),
        ready=not gaps,
        gaps=gaps,
        criteria=c,
        rule_set_version=version.version if version else None,
    )


# --- the exam ---------------------------------------------------------------------------------
async def take_exam(
    *,
    session: AsyncSession,
    agent_ref: str,
    classify: Classify,
    actor: audit.Actor,
    target: MaturityLevel | None = None,
) -> GraduationExam:
    agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
    level = target or next_level(agent)
    rule_set, version = await current_rules(session=session)
    snapshot = AgentSnapshot(id=agent.id, level=level, status="active")
    violations: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    replayed = actions = 0
    for episode in await _agent_episodes(session, agent.id):
        found = await evidence_reader.for_episode(session, episode)
        if not found.edge_case:
            continue
        replayed += 1
        for action in found.actions:
            actions += 1
            complexity, known = classify(action.name)
            trigger = TriggerKind(action.trigger) if action.trigger in {"manual", "automated"} else TriggerKind.MANUAL
            decision = decide(snapshot, action.name, complexity, GovernanceContext(trigger=trigger))
            broken = [v.__dict__ for v in rule_set.check(action.name, action.params, _context(agent, action))]
            record = {
                "episode_id": episode.id,
                "action": action.name,
                "source_id": action.source_id,
                "recorded_status": action.status,
                "governance": decision.outcome.value,
                "reason_code": decision.reason_code,
                "rules_violated": [v["rule_id"] for v in broken],
            }
            records.append(record)
            if not known or decision.reason_code == "COMPLEXITY_EXCEEDS_MATURITY":
                violations.append({**record, "why": decision.reason if known else "unknown action"})
            violations.extend({**record, "why": v["reason"], "rule_id": v["rule_id"]} for v in broken)
    exam = GraduationExam(
        agent_id=agent.id,
        target_level=level.value,
        passed=not violations,
        episodes=replayed,
        actions=actions,
        violations=violations,
        evidence=records,
        rule_set_version=version.version if version else None,
        created_by=actor.id,
        created_at=utcnow(),
    )
    session.add(exam)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="graduation.exam",
        resource_type="agent",
        resource_id=agent.id,
        decision="passed" if exam.passed else "failed",
        details={"exam_id": exam.id, "target": level.value, "episodes": replayed, "violations": len(violations)},
    )
    return exam


async def latest_exam(*, session: AsyncSession, agent_id: str, level: MaturityLevel) -> GraduationExam | None:
    stmt = (
        select(GraduationExam)
        .where(GraduationExam.agent_id == agent_id, GraduationExam.target_level == level.value)
        .order_by(GraduationExam.id.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


async def list_exams(*, session: AsyncSession, agent_id: str) -> list[GraduationExam]:
    stmt = select(GraduationExam).where(GraduationExam.agent_id == agent_id).order_by(GraduationExam.id.desc())
    return list((await session.scalars(stmt.limit(50))).all())


# --- promotion ---------------------------------------------------------------------------------
async def check_promotion(
    *, session: AsyncSession, settings: Settings, agent_ref: str, to_level: MaturityLevel
) -> list[str]:
    """What stands between the agent and `to_level`: readiness gaps and the exam. Empty: may promote."""
    agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
    report = await readiness(session=session, settings=settings, agent_ref=agent.id, target=to_level)
    gaps = list(report.gaps)
    exam = await latest_exam(session=session, agent_id=agent.id, level=to_level)
    if exam is None:
        gaps.append(f"No graduation exam for {to_level.value} yet (atom-os agents exam {agent.name}).")
    elif not exam.passed:
        gaps.append(f"The latest {to_level.value} exam failed with {len(exam.violations)} violations.")
    return gaps


async def promote(
    *,
    session: AsyncSession,
    settings: Settings,
    agent_ref: str,
    to_level: MaturityLevel,
    actor: audit.Actor,
    reason: str,
    override: bool = False,
    actor_is_admin: bool = False,
) -> Agent:
    """A person's promotion, allowed only when readiness passes and the exam for the level passed.

    An admin may override the gate (`override`); the override is audited with the gaps it skipped.
    """
    agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
    current = MaturityLevel(agent.maturity_level)
    if to_level.rank <= current.rank:
        raise InvalidInput(
            f"{to_level.value} is not above the agent's level {current.value}.",
            code="NOT_A_PROMOTION",
            details={"field": "to_level", "current": current.value},
        )
    gaps = await check_promotion(session=session, settings=settings, agent_ref=agent.id, to_level=to_level)
    if gaps and not override:
        raise Conflict(
            f"{agent.name} is not ready for {to_level.value}: " + " ".join(gaps),
            code="PROMOTION_NOT_READY",
            details={"gaps": gaps, "to_level": to_level.value},
        )
    if gaps and not actor_is_admin:
        raise Forbidden(
            "Only an admin may promote past the graduation gate.",
            code="ROLE_REQUIRED",
            details={"required_role": "admin", "gaps": gaps},
        )
    if gaps:
        await audit.record(
            session=session,
            actor=actor,
            action="agent.promote.override",
            resource_type="agent",
            resource_id=agent.id,
            decision="overridden",
            reason=reason,
            details={"to": to_level.value, "gaps": gaps},
        )
    return await agents_service.promote(
        session=session, agent_id=agent.id, to_level=to_level, actor=actor, reason=reason, settings=settings
    )
