"""Feedback and A/B tests over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from atom.deps import (
    DEFAULT_PAGE_LIMIT,
    ApproverDep,
    CursorQuery,
    LimitQuery,
    OperatorDep,
    SessionDep,
    SettingsDep,
    ViewerDep,
)
from atom.feedback import abtests
from atom.feedback import service as feedback_service
from atom.feedback.models import FeedbackKind, FeedbackStatus, TargetType
from atom.feedback.schemas import (
    ABTestCreate,
    ABTestRead,
    ABTestResults,
    AgentFeedbackStats,
    FeedbackCreate,
    FeedbackRead,
    ReviewRead,
    ReviewRequest,
)
from atom.pagination import Page

router = APIRouter(prefix="/api/feedback", tags=["feedback"])
ab_router = APIRouter(prefix="/api/abtests", tags=["feedback"])


@router.post("", response_model=FeedbackRead, status_code=201)
async def give_feedback(
    body: FeedbackCreate, principal: ViewerDep, session: SessionDep, settings: SettingsDep
) -> FeedbackRead:
    """Thumbs, a 1-5 rating, a correction or a comment on an agent run, a chat message or a workflow step."""
    row = await feedback_service.create(session=session, settings=settings, feedback_in=body, principal=principal)
    return FeedbackRead.model_validate(row)


@router.get("", response_model=Page[FeedbackRead])
async def list_feedback(
    principal: ViewerDep,
    session: SessionDep,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
    status: FeedbackStatus | None = None,
    kind: FeedbackKind | None = None,
    target_type: TargetType | None = None,
    target_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[FeedbackRead]:
    rows, next_cursor = await feedback_service.list_feedback(
        session=session,
        limit=limit,
        cursor=cursor,
        agent_id=agent_id,
        status=status,
        kind=kind,
        target_type=target_type,
        target_id=target_id,
    )
    return Page(items=[FeedbackRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("/review", response_model=ReviewRead)
async def review_corrections(
    body: ReviewRequest, principal: ApproverDep, session: SessionDep, settings: SettingsDep
) -> ReviewRead:
    """Accept or reject pending corrections in one batch (all or none)."""
    rows = await feedback_service.review(
        session=session,
        settings=settings,
        feedback_ids=body.feedback_ids,
        accept=body.decision == "accept",
        reason=body.reason,
        reviewer=principal,
    )
    return ReviewRead(reviewed=[FeedbackRead.model_validate(r) for r in rows])


@router.get("/stats/{agent_id}", response_model=AgentFeedbackStats)
async def agent_stats(
    agent_id: str, principal: ViewerDep, session: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> AgentFeedbackStats:
    """Counts, mean rating, correction rate and a per-day trend for one agent over the last `days`."""
    return await feedback_service.agent_stats(session=session, agent_id=agent_id, days=days)


@router.get("/{feedback_id}", response_model=FeedbackRead)
async def get_feedback(feedback_id: str, principal: ViewerDep, session: SessionDep) -> FeedbackRead:
    return FeedbackRead.model_validate(await feedback_service.get(session=session, feedback_id=feedback_id))


@ab_router.post("", response_model=ABTestRead, status_code=201)
async def create_test(
    body: ABTestCreate, principal: ApproverDep, session: SessionDep, settings: SettingsDep
) -> ABTestRead:
    """Start an A/B test of two variants of one agent (one running test per agent)."""
    test = await abtests.create(session=session, settings=settings, test_in=body, principal=principal)
    return ABTestRead.model_validate(test)


@ab_router.get("", response_model=Page[ABTestRead])
async def list_tests(
    principal: ViewerDep, session: SessionDep, limit: LimitQuery = DEFAULT_PAGE_LIMIT, cursor: CursorQuery = None
) -> Page[ABTestRead]:
    rows, next_cursor = await abtests.list_tests(session=session, limit=limit, cursor=cursor)
    return Page(items=[ABTestRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@ab_router.get("/{test_ref}", response_model=ABTestRead)
async def get_test(test_ref: str, principal: ViewerDep, session: SessionDep) -> ABTestRead:
    return ABTestRead.model_validate(await abtests.get(session=session, test_ref=test_ref))


@ab_router.get("/{test_ref}/results", response_model=ABTestResults)
async def test_results(test_ref: str, principal: ViewerDep, session: SessionDep) -> ABTestResults:
    """Per-variant figures, the test used, p-value, 95% interval and a suggestion (never an automatic switch)."""
    return await abtests.results(session=session, test_ref=test_ref)


@ab_router.post("/{test_ref}/stop", response_model=ABTestRead)
async def stop_test(test_ref: str, principal: OperatorDep, session: SessionDep) -> ABTestRead:
    return ABTestRead.model_validate(await abtests.stop(session=session, test_ref=test_ref, principal=principal))
