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
  Passing means zero violations. `assess_calls` judges a dry run's tool calls the same way.
- `auto_promote` (ATOM_AUTO_PROMOTE): readiness and a fresh exam pass -> promoted, by `system:auto-promote`.
- `compile_check`/`run_check`: the rules' CEL, for other domains' conditions (training scenarios).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
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
from atom.graduation.criteria import Criteria, criteria, readiness_score
from atom.graduation.models import GraduationExam
from atom.graduation.rules import compile_check as compile_check
from atom.graduation.rules import run_check as run_check
from atom.graduation.rulesets import current_rules
from atom.graduation.rulesets import rule_versions as rule_versions
from atom.graduation.rulesets import save_rules as save_rules
from atom.memory import service as memory_service
from atom.memory.models import Episode

Classify = Callable[[str], tuple[int, bool]]
PAGE = 200


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
def _judge(
    agent: Agent, level: MaturityLevel, rule_set: rules.RuleSet, action: evidence_reader.Action, classify: Classify
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One recorded action as if the agent were at `level`: its governance outcome, the rules it breaks,
    and the violations (an action above the level's complexity, an unknown action, a broken rule)."""
    complexity, known = classify(action.name)
    trigger = TriggerKind(action.trigger) if action.trigger in {"manual", "automated"} else TriggerKind.MANUAL
    snapshot = AgentSnapshot(id=agent.id, level=level, status="active")
    decision = decide(snapshot, action.name, complexity, GovernanceContext(trigger=trigger))
    broken = [v.__dict__ for v in rule_set.check(action.name, action.params, _context(agent, action))]
    record = {
        "action": action.name,
        "source_id": action.source_id,
        "recorded_status": action.status,
        "governance": decision.outcome.value,
        "reason_code": decision.reason_code,
        "rules_violated": [v["rule_id"] for v in broken],
    }
    violations = []
    if not known or decision.reason_code == "COMPLEXITY_EXCEEDS_MATURITY":
        violations.append({**record, "why": decision.reason if known else "unknown action"})
    violations.extend({**record, "why": v["reason"], "rule_id": v["rule_id"]} for v in broken)
    return record, violations


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
            record, broken = _judge(agent, level, rule_set, action, classify)
            records.append({"episode_id": episode.id, **record})
            violations.extend({"episode_id": episode.id, **v} for v in broken)
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


@dataclass(frozen=True)
class CallAssessment:
    """Tool calls of a dry run judged like the exam judges recorded actions (nothing stored)."""

    target_level: str
    records: list[dict[str, Any]]
    violations: list[dict[str, Any]]
    rule_set_version: int | None


async def assess_calls(
    *,
    session: AsyncSession,
    agent_ref: str,
    calls: list[dict[str, Any]],
    source_id: str,
    classify: Classify,
    target: MaturityLevel | None = None,
) -> CallAssessment:
    """The exam's judgement of tool calls (`name`, `arguments`, `status`) made in a manual dry run:
    each through the governance policy at the target level (default: the next one) and the rules in force."""
    agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
    level = target or next_level(agent)
    rule_set, version = await current_rules(session=session)
    records: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []
    for call in calls:
        arguments = call.get("arguments")
        action = evidence_reader.Action(
            name=str(call.get("name", "")),
            params=arguments if isinstance(arguments, dict) else {},
            status=str(call.get("status", "")),
            trigger=TriggerKind.MANUAL.value,
            source="execution",
            source_id=source_id,
        )
        record, broken = _judge(agent, level, rule_set, action, classify)
        records.append(record)
        violations.extend(broken)
    return CallAssessment(level.value, records, violations, version.version if version else None)


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


AUTO_PROMOTE_ACTOR = audit.Actor("system", "auto-promote")


@dataclass(frozen=True)
class AutoPromotion:
    agent_id: str
    promoted: bool
    to_level: str | None
    gaps: list[str]
    exam_id: str | None = None


async def auto_promote(
    *, session: AsyncSession, settings: Settings, agent_ref: str, classify: Classify, moment: str
) -> AutoPromotion | None:
    """ATOM_AUTO_PROMOTE: promote the agent to its next level when readiness passes and a fresh exam passes.

    None when the setting is off (nothing is read or written). Otherwise an active agent below AUTONOMOUS
    whose readiness passes takes the exam (stored, audited as the actor `system:auto-promote`) and, if it
    passes, is promoted through the same gate as a person's promotion. Every decision is audited as
    `agent.promote.auto` with the `moment` that asked (e.g. `training.scored`) and the gaps, if any.
    """
    if not settings.auto_promote:
        return None
    agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
    if agent.status != "active" or agent.maturity_level == MaturityLevel.AUTONOMOUS.value:
        return AutoPromotion(agent.id, False, None, [f"The agent is {agent.status}, {agent.maturity_level}."])
    level = next_level(agent)
    report = await readiness(session=session, settings=settings, agent_ref=agent.id, target=level)
    gaps, exam_id = list(report.gaps), None
    if not gaps:
        exam = await take_exam(session=session, agent_ref=agent.id, classify=classify, actor=AUTO_PROMOTE_ACTOR)
        exam_id = exam.id
        if not exam.passed:
            gaps.append(f"The {level.value} exam failed with {len(exam.violations)} violations.")
    await audit.record(
        session=session,
        actor=AUTO_PROMOTE_ACTOR,
        action="agent.promote.auto",
        resource_type="agent",
        resource_id=agent.id,
        decision="skipped" if gaps else "promoted",
        details={"to": level.value, "moment": moment, "gaps": gaps, "exam_id": exam_id, "readiness": report.score},
    )
    if gaps:
        return AutoPromotion(agent.id, False, level.value, gaps, exam_id)
    await promote(
        session=session,
        settings=settings,
        agent_ref=agent.id,
        to_level=level,
        actor=AUTO_PROMOTE_ACTOR,
        reason=f"ATOM_AUTO_PROMOTE after {moment}: readiness {report.score:.0f}/100 and exam {exam_id} passed",
    )
    return AutoPromotion(agent.id, True, level.value, [], exam_id)
