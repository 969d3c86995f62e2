"""The full governance matrix: 4 levels x 4 complexities x (manual, automated) x (active, paused, stopped)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from sqlalchemy import func, select, text

from atom.agents.models import AgentStatus
from atom.audit.models import AuditEvent
from atom.config import Settings
from atom.db.session import Database
from atom.governance import service as governance
from atom.governance.cache import decision_cache
from atom.governance.maturity import MaturityLevel, MaturityThresholds
from atom.governance.policy import AgentSnapshot, GovernanceContext, Outcome, TriggerKind, decide
from atom.registries import Registries
from tests.support.agents import make_agent

ACTION_BY_COMPLEXITY = {1: "read", 2: "analyze", 3: "create", 4: "delete"}
LEVELS = list(MaturityLevel)
STATUSES = list(AgentStatus)
TRIGGERS = list(TriggerKind)


def expected(level: MaturityLevel, complexity: int, trigger: TriggerKind, status: AgentStatus) -> tuple[Outcome, str]:
    if status is AgentStatus.PAUSED:
        return Outcome.DENY, "AGENT_PAUSED"
    if status is AgentStatus.STOPPED:
        return Outcome.DENY, "AGENT_STOPPED"
    if complexity > level.rank:
        return Outcome.DENY, "COMPLEXITY_EXCEEDS_MATURITY"
    if trigger is TriggerKind.MANUAL or level is MaturityLevel.AUTONOMOUS:
        return Outcome.ALLOW, "ALLOWED"
    return {
        MaturityLevel.STUDENT: (Outcome.TRAIN, "STUDENT_BLOCKED_TRAINING"),
        MaturityLevel.INTERN: (Outcome.PROPOSE, "INTERN_NEEDS_PROPOSAL"),
        MaturityLevel.SUPERVISED: (Outcome.SUPERVISE, "SUPERVISED_NEEDS_SUPERVISION"),
    }[level]


CASES = list(itertools.product(LEVELS, [1, 2, 3, 4], TRIGGERS, STATUSES))


# RULES.md counted by hand over the 96 cases: paused or stopped deny everything (64); an active
# agent denies complexities above its level (6 per trigger); manual allows the rest (1+2+3+4);
# automated: STUDENT trains (c1), INTERN proposes (c1-2), SUPERVISED supervises (c1-3), AUTONOMOUS runs (c1-4).
RULES_TALLY = {Outcome.DENY: 64 + 12, Outcome.ALLOW: 10 + 4, Outcome.TRAIN: 1, Outcome.PROPOSE: 2, Outcome.SUPERVISE: 3}


def test_matrix_has_96_cases() -> None:
    """The policy itself, over every distinct case, gives exactly the RULES tally (and so does the oracle)."""
    assert len(set(CASES)) == 96
    decided = Counter(
        decide(
            AgentSnapshot("a", level, status.value), ACTION_BY_COMPLEXITY[c], c, GovernanceContext(trigger=t)
        ).outcome
        for level, c, t, status in CASES
    )
    assert decided == RULES_TALLY
    assert Counter(expected(*case)[0] for case in CASES) == RULES_TALLY


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    decision_cache.clear()


@pytest.mark.parametrize("level", LEVELS)
async def test_governance_matrix(db: Database, settings: Settings, level: MaturityLevel) -> None:
    """Each level's 24 cases on one database round (the 96 cases run on both databases)."""
    agents = {status: await make_agent(db, settings, level, status) for status in STATUSES}
    for lvl, complexity, trigger, status in (c for c in CASES if c[0] is level):
        action = ACTION_BY_COMPLEXITY[complexity]
        async with db.session_scope() as s:
            decision = await governance.check(
                session=s,
                agent_id=agents[status].id,
                action=action,
                context=GovernanceContext(trigger=trigger),
                settings=settings,
            )
        outcome, code = expected(lvl, complexity, trigger, status)
        case = f"{lvl.value} c{complexity} {trigger.value} {status.value}"
        assert (decision.outcome, decision.reason_code) == (outcome, code), case
        assert decision.allowed is (outcome is Outcome.ALLOW), case
        assert decision.complexity == complexity
        assert decision.required_level is MaturityLevel.for_complexity(complexity)
        assert decision.needs_proposal is (outcome is Outcome.PROPOSE)
        assert decision.needs_supervision is (outcome is Outcome.SUPERVISE)


async def test_approved_proposal_and_live_session_never_lift_the_complexity_cap(
    db: Database, settings: Settings
) -> None:
    intern = await make_agent(db, settings, MaturityLevel.INTERN)
    supervised = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    automated_with_proposal = GovernanceContext(trigger=TriggerKind.AUTOMATED, proposal_id="p1")
    automated_supervised = GovernanceContext(trigger=TriggerKind.AUTOMATED, supervision_session_id="s1")
    async with db.session_scope() as s:
        ok = await governance.check(
            session=s, agent_id=intern.id, action="analyze", context=automated_with_proposal, settings=settings
        )
        too_much = await governance.check(
            session=s, agent_id=intern.id, action="create", context=automated_with_proposal, settings=settings
        )
        sup_ok = await governance.check(
            session=s, agent_id=supervised.id, action="create", context=automated_supervised, settings=settings
        )
        sup_no = await governance.check(
            session=s, agent_id=supervised.id, action="delete", context=automated_supervised, settings=settings
        )
    assert ok.allowed and not too_much.allowed and too_much.reason_code == "COMPLEXITY_EXCEEDS_MATURITY"
    assert sup_ok.allowed and not sup_no.allowed


@pytest.mark.parametrize(
    ("confidence", "level"),
    [
        (0.0, MaturityLevel.STUDENT),
        (0.4999, MaturityLevel.STUDENT),
        (0.5, MaturityLevel.INTERN),
        (0.6999, MaturityLevel.INTERN),
        (0.7, MaturityLevel.SUPERVISED),
        (0.8999, MaturityLevel.SUPERVISED),
        (0.9, MaturityLevel.AUTONOMOUS),
        (1.0, MaturityLevel.AUTONOMOUS),
    ],
)
async def test_confidence_boundaries(db: Database, settings: Settings, confidence: float, level: MaturityLevel) -> None:
    assert MaturityThresholds().level_for(confidence) is level
    agent = await make_agent(db, settings, confidence=confidence)
    assert agent.maturity_level == level.value


async def test_unknown_agent_is_denied_and_audited(db: Database, settings: Settings) -> None:
    async with db.session_scope() as s:
        decision = await governance.check(
            session=s, agent_id="no-such-agent", action="read", context=GovernanceContext(), settings=settings
        )
    assert decision.outcome is Outcome.DENY and decision.reason_code == "AGENT_NOT_FOUND"
    async with db.sessionmaker() as s:
        denied = await s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.decision == "deny"))
    assert denied == 1


async def test_unknown_action_is_denied_even_for_autonomous(db: Database, settings: Settings) -> None:
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS)
    async with db.session_scope() as s:
        unknown = await governance.check(
            session=s, agent_id=agent.id, action="frobnicate", context=GovernanceContext(), settings=settings
        )
        prefixed = await governance.check(
            session=s, agent_id=agent.id, action="delete_invoice", context=GovernanceContext(), settings=settings
        )
    assert unknown.reason_code == "UNKNOWN_ACTION" and not unknown.allowed and unknown.complexity == 4
    # classified by its verb prefix (complexity 4, for the record), but nothing implements it
    assert prefixed.reason_code == "UNKNOWN_ACTION" and not prefixed.allowed and prefixed.complexity == 4


async def test_a_planned_action_is_not_available_though_rules_classify_it(
    db: Database, settings: Settings, registries: Registries
) -> None:
    """RULES.md lists browser_click (3) and browser_navigate (2); nothing implements them: denied, not allowed."""
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS)
    for name, complexity in (("browser_click", 3), ("browser_navigate", 2), ("device_screen_record", 3)):
        spec = registries.catalogue.get(name)
        assert spec is not None and spec.complexity == complexity and spec.implemented_by == "planned"
        async with db.session_scope() as s:
            decision = await governance.check(
                session=s, agent_id=agent.id, action=name, context=GovernanceContext(), settings=settings
            )
        assert (decision.allowed, decision.reason_code, decision.complexity) == (False, "UNKNOWN_ACTION", complexity)
        assert "nothing implements it" in decision.reason
    rows = {
        name: (manual, automated)
        for name, _, manual, automated in governance.dry_run(MaturityLevel.AUTONOMOUS, "active", agent.id)
    }
    assert rows["browser_click"][0].reason_code == rows["browser_click"][1].reason_code == "UNKNOWN_ACTION"
    assert rows["get_current_time"][0].allowed  # a tool implements it


async def test_internal_error_denies(db: Database, settings: Settings) -> None:
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS)
    async with db.session_scope() as s:
        await s.execute(text("UPDATE agents SET maturity_level = 'EMPEROR' WHERE id = :id"), {"id": agent.id})
    async with db.session_scope() as s:
        decision = await governance.check(
            session=s, agent_id=agent.id, action="read", context=GovernanceContext(), settings=settings
        )
    assert decision.outcome is Outcome.DENY and decision.reason_code == "GOVERNANCE_ERROR"


async def test_emergency_bypass_allows_and_audits_loudly(db: Database, settings: Settings) -> None:
    student = await make_agent(db, settings, MaturityLevel.STUDENT)
    bypass = settings.model_copy(update={"emergency_governance_bypass": True})
    async with db.session_scope() as s:
        decision = await governance.check(
            session=s,
            agent_id=student.id,
            action="delete",
            context=GovernanceContext(trigger=TriggerKind.AUTOMATED),
            settings=bypass,
        )
    assert decision.allowed and decision.bypassed and decision.reason_code == "EMERGENCY_BYPASS"
    async with db.sessionmaker() as s:
        rows = (await s.scalars(select(AuditEvent).where(AuditEvent.decision == "bypassed"))).all()
    assert len(rows) == 1 and rows[0].actor_id == student.id and rows[0].resource_id == "delete"


async def test_cached_allowed_reads_are_not_re_audited_but_denials_always_are(db: Database, settings: Settings) -> None:
    agent = await make_agent(db, settings, MaturityLevel.STUDENT)

    async def audit_count() -> int:
        async with db.sessionmaker() as s:
            return int(
                await s.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "governance.check")
                )
                or 0
            )

    for _ in range(3):
        async with db.session_scope() as s:
            read = await governance.check(
                session=s, agent_id=agent.id, action="read", context=GovernanceContext(), settings=settings
            )
    assert read.allowed and read.cached
    assert await audit_count() == 1
    for _ in range(3):
        async with db.session_scope() as s:
            denied = await governance.check(
                session=s, agent_id=agent.id, action="delete", context=GovernanceContext(), settings=settings
            )
    assert not denied.allowed and denied.cached
    assert await audit_count() == 4
