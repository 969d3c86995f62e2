"""A/B tests of agent variants (RULES.md, Feedback and A/B tests).

Assignment is deterministic: sha256("test_id:subject") mod 10000 / 10000 < traffic share -> B, so a
person keeps their variant for the whole test. The subject is the user, else the chat session, else
"anonymous" (runs with neither, such as automated ones, all share one variant). Only one test runs
per agent at a time. Results never switch anything: they suggest a promotion of the variant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.chat import service as chat_service
from atom.config import Settings
from atom.db.base import utcnow
from atom.errors import Conflict, NotFound
from atom.feedback import service as feedback_service
from atom.feedback import stats
from atom.feedback.models import ABExposure, ABTest, ABTestStatus
from atom.feedback.schemas import ABTestCreate, ABTestRead, ABTestResults, VariantResult
from atom.pagination import paginate
from atom.security.principal import Principal

BUCKETS = 10_000
SIGNIFICANCE = 0.05


def assign(test_id: str, subject: str, traffic_share: float) -> str:
    bucket = int.from_bytes(hashlib.sha256(f"{test_id}:{subject}".encode()).digest(), "big") % BUCKETS
    return "B" if bucket / BUCKETS < traffic_share else "A"


def subject_of(user_id: str | None, session_id: str | None) -> str:
    return user_id or session_id or "anonymous"


@dataclass(frozen=True)
class Choice:
    test_id: str
    variant: str
    overrides: dict[str, Any]
    subject: str


async def create(*, session: AsyncSession, settings: Settings, test_in: ABTestCreate, principal: Principal) -> ABTest:
    agent = await agents_service.resolve_ref(session=session, ref=test_in.agent_id)
    if await _running_for(session, agent.id) is not None:
        raise Conflict(
            f"Agent {agent.name!r} already has a running A/B test; stop it first.",
            code="AB_TEST_RUNNING",
            details={"agent_id": agent.id},
        )
    if await session.scalar(select(ABTest.id).where(ABTest.name == test_in.name)) is not None:
        raise Conflict(
            f"An A/B test named {test_in.name!r} exists.", code="AB_TEST_EXISTS", details={"name": test_in.name}
        )
    test = ABTest(
        name=test_in.name,
        agent_id=agent.id,
        variant_a=test_in.variant_a.overrides(),
        variant_b=test_in.variant_b.overrides(),
        traffic_share=test_in.traffic_share,
        metric=test_in.metric,
        min_sample=test_in.min_sample or settings.ab_min_sample,
        status=ABTestStatus.RUNNING.value,
        created_by=principal.user_id,
        created_at=utcnow(),
    )
    session.add(test)
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.user(principal.user_id),
        action="abtest.create",
        resource_type="ab_test",
        resource_id=test.id,
        decision="done",
        details={"agent_id": agent.id, "traffic_share": test.traffic_share, "metric": test.metric},
    )
    return test


async def get(*, session: AsyncSession, test_ref: str) -> ABTest:
    test = await session.get(ABTest, test_ref) or await session.scalar(select(ABTest).where(ABTest.name == test_ref))
    if test is None:
        raise NotFound(f"No A/B test {test_ref!r}.", code="AB_TEST_NOT_FOUND", details={"test": test_ref})
    return test


async def list_tests(*, session: AsyncSession, limit: int, cursor: str | None) -> tuple[list[ABTest], str | None]:
    return await paginate(session, select(ABTest), id_column=ABTest.id, limit=limit, cursor=cursor)


async def stop(*, session: AsyncSession, test_ref: str, principal: Principal) -> ABTest:
    test = await get(session=session, test_ref=test_ref)
    if test.status == ABTestStatus.STOPPED.value:
        raise Conflict(f"A/B test {test.name!r} is already stopped.", code="AB_TEST_STOPPED", details={"id": test.id})
    test.status = ABTestStatus.STOPPED.value
    test.stopped_at = utcnow()
    await audit.record(
        session=session,
        actor=audit.Actor.user(principal.user_id),
        action="abtest.stop",
        resource_type="ab_test",
        resource_id=test.id,
        decision="done",
    )
    await session.flush()
    return test


async def _running_for(session: AsyncSession, agent_id: str) -> ABTest | None:
    stmt = select(ABTest).where(ABTest.agent_id == agent_id, ABTest.status == ABTestStatus.RUNNING.value)
    return (await session.scalars(stmt.limit(1))).first()


async def choose(*, session: AsyncSession, agent_id: str, user_id: str | None, session_id: str | None) -> Choice | None:
    """The variant an agent run uses, if a test of the agent is running."""
    test = await _running_for(session, agent_id)
    if test is None:
        return None
    subject = subject_of(user_id, session_id)
    variant = assign(test.id, subject, test.traffic_share)
    overrides = test.variant_b if variant == "B" else test.variant_a
    return Choice(test_id=test.id, variant=variant, overrides=dict(overrides), subject=subject)


async def record_exposure(*, session: AsyncSession, choice: Choice, execution_id: str) -> None:
    session.add(
        ABExposure(
            test_id=choice.test_id,
            variant=choice.variant,
            execution_id=execution_id,
            subject=choice.subject[:100],
            created_at=utcnow(),
        )
    )


async def results(*, session: AsyncSession, test_ref: str) -> ABTestResults:
    test = await get(session=session, test_ref=test_ref)
    exposures = list((await session.scalars(select(ABExposure).where(ABExposure.test_id == test.id))).all())
    runs: dict[str, list[str]] = {"A": [], "B": []}
    for exposure in exposures:
        runs[exposure.variant].append(exposure.execution_id)
    all_ids = runs["A"] + runs["B"]
    statuses = await chat_service.execution_statuses(session=session, execution_ids=all_ids)
    feedback = await feedback_service.feedback_for_executions(session=session, execution_ids=all_ids)
    observations: dict[str, list[float]] = {"A": [], "B": []}
    for variant, ids in runs.items():
        wanted = set(ids)
        if test.metric == "success_rate":
            finished = [statuses[i] for i in ids if statuses.get(i) not in (None, "running")]
            observations[variant] = [1.0 if status == "completed" else 0.0 for status in finished]
        elif test.metric == "positive_feedback":
            observations[variant] = [
                1.0 if row.thumbs == 1 else 0.0 for row in feedback if row.target_id in wanted and row.thumbs
            ]
        else:
            observations[variant] = [float(row.rating) for row in feedback if row.target_id in wanted and row.rating]
    a, b = observations["A"], observations["B"]
    if test.metric == "rating":
        comparison, used = stats.welch(a, b), "Welch's t-test"
    else:
        comparison = stats.two_proportions(int(sum(a)), len(a), int(sum(b)), len(b))
        used = "two-proportion z-test"
    enough = len(a) >= test.min_sample and len(b) >= test.min_sample
    winner = None
    if enough and comparison.p_value is not None and comparison.p_value < SIGNIFICANCE and comparison.difference:
        winner = "B" if comparison.difference > 0 else "A"
    if not enough:
        suggestion = f"Not enough data: at least {test.min_sample} observations per variant are needed."
    elif winner == "B":
        suggestion = "Variant B is better: consider making its configuration the agent's (a person decides)."
    elif winner == "A":
        suggestion = "Variant A (the current configuration) is better: keep it."
    else:
        suggestion = "No significant difference yet."
    return ABTestResults(
        test=ABTestRead.model_validate(test),
        a=VariantResult(variant="A", runs=len(runs["A"]), samples=len(a), value=sum(a) / len(a) if a else None),
        b=VariantResult(variant="B", runs=len(runs["B"]), samples=len(b), value=sum(b) / len(b) if b else None),
        test_used=used,
        statistic=comparison.statistic,
        p_value=comparison.p_value,
        difference=comparison.difference,
        ci_low=comparison.ci_low,
        ci_high=comparison.ci_high,
        enough_data=enough,
        winner=winner,
        suggestion=suggestion,
    )
