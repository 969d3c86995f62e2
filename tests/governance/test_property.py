"""Property: whatever confidence does, governance never lets an agent exceed its maturity."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from atom.agents import service as agents_service
from atom.config import Settings
from atom.db.session import Database
from atom.governance import service as governance
from atom.governance.cache import decision_cache
from atom.governance.maturity import MaturityLevel, MaturityThresholds
from atom.governance.policy import GovernanceContext, TriggerKind
from tests.support.agents import make_agent

ACTIONS = {1: "read", 2: "analyze", 3: "create", 4: "delete"}

confidence_step = st.tuples(st.just("confidence"), st.floats(min_value=-0.3, max_value=0.3, allow_nan=False))
action_step = st.tuples(
    st.just("action"),
    st.tuples(st.integers(min_value=1, max_value=4), st.sampled_from(list(TriggerKind)), st.booleans()),
)


@hypothesis_settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # the thresholds themselves and just above them, where a small fall must demote
    start=st.one_of(st.sampled_from([0.5, 0.52, 0.7, 0.75, 0.9, 0.97]), st.floats(min_value=0, max_value=1)),
    steps=st.lists(st.one_of(confidence_step, action_step), max_size=12),
)
@example(start=0.9, steps=[("confidence", -0.01), ("action", (4, TriggerKind.AUTOMATED, False))])
@example(start=0.75, steps=[("confidence", -0.3), ("confidence", 0.3)])
def test_no_action_above_the_agents_level_is_ever_allowed(
    settings: Settings, db: Database, start: float, steps: list[tuple[str, object]]
) -> None:
    asyncio.run(_run(settings, start, steps))


async def _run(settings: Settings, start: float, steps: list[tuple[str, object]]) -> None:
    database = Database(settings)
    decision_cache.clear()
    thresholds = MaturityThresholds.from_settings(settings)
    try:
        agent = await make_agent(database, settings, confidence=start)
        previous = MaturityLevel(agent.maturity_level)
        assert previous is thresholds.level_for(start)
        for kind, value in steps:
            decision = None
            if kind == "confidence":
                assert isinstance(value, float)
                async with database.session_scope() as s:
                    await agents_service.record_confidence(
                        session=s, agent_id=agent.id, delta=value, reason="property", source="test", settings=settings
                    )
            else:
                complexity, trigger, with_proposal = value  # type: ignore[misc]
                context = GovernanceContext(trigger=trigger, proposal_id="approved-proposal" if with_proposal else None)
                async with database.session_scope() as s:
                    decision = await governance.check(
                        session=s, agent_id=agent.id, action=ACTIONS[complexity], context=context, settings=settings
                    )
            async with database.sessionmaker() as s:
                current = await agents_service.get_agent(session=s, agent_id=agent.id)
            level = MaturityLevel(current.maturity_level)
            # Invariant after every step: never at a level whose floor is above the confidence (a fall
            # demotes at once), and without a promotion the level never rises.
            assert current.confidence >= thresholds.floor(level), (current.confidence, level)
            assert level.rank <= thresholds.level_for(current.confidence).rank
            assert level.rank <= previous.rank
            previous = level
            if decision is not None and decision.allowed:
                assert complexity <= level.max_complexity
                if trigger is TriggerKind.AUTOMATED:
                    assert level is not MaturityLevel.STUDENT
                    if level is MaturityLevel.INTERN:
                        assert with_proposal
                    if level is MaturityLevel.SUPERVISED:
                        raise AssertionError("SUPERVISED automated actions need a supervision session")
    finally:
        await database.dispose()
