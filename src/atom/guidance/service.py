"""Error guidance and the progress of runs, as the API and the dashboard show them.

- Each error is classified (classify.py) and shown with its category's agent-can-fix and
  person-must-fix resolutions (resolutions.yaml); the suggested one is the one people marked as
  having worked most often in that category, ties going to the documented default.
- A person marks whether a resolution worked for one error (`record_outcome`); the error is looked
  up again on the server (the failed workflow step, the agent run or its tool call), so only a real
  error can be marked, in the category it really has, once per resolution.
- `agent_run_progress` / `workflow_run_progress` assemble a run's `Progress` with guidance on each
  failed step.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.db.base import utcnow
from atom.db.session import on_commit
from atom.errors import Conflict, InvalidInput
from atom.events.bus import get_bus
from atom.guidance import operations
from atom.guidance.classify import ErrorCategory, classify
from atom.guidance.models import Operation, ResolutionOutcome
from atom.guidance.resolutions import CategoryGuide, Resolution, guide
from atom.guidance.schemas import (
    ClassifyRead,
    ErrorGuidance,
    OutcomeCreate,
    Progress,
    ResolutionRead,
    StepProgress,
)
from atom.guidance.workflow_progress import describe
from atom.pagination import paginate
from atom.security.principal import Principal
from atom.workflows import presenters
from atom.workflows import service as workflows_service

OUTCOME_RECORDED = "guidance.outcome_recorded"
Counts = dict[tuple[str, str], tuple[int, int]]  # (category, resolution) -> (successes, failures)


@dataclass(frozen=True)
class ErrorFacts:
    subject_type: str
    subject_id: str
    error: str
    error_code: str | None = None
    status_code: int | None = None

    @property
    def category(self) -> ErrorCategory:
        return classify(status_code=self.status_code, message=self.error, code=self.error_code)


# --- suggestion ---------------------------------------------------------------------------------


async def outcome_counts(*, session: AsyncSession, categories: set[ErrorCategory]) -> Counts:
    if not categories:
        return {}
    rows = await session.execute(
        select(ResolutionOutcome.category, ResolutionOutcome.resolution_id, ResolutionOutcome.worked, func.count())
        .where(ResolutionOutcome.category.in_([c.value for c in categories]))
        .group_by(ResolutionOutcome.category, ResolutionOutcome.resolution_id, ResolutionOutcome.worked)
    )
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for category, resolution_id, worked, n in rows.all():
        counts[(category, resolution_id)][0 if worked else 1] += int(n)
    return {key: (value[0], value[1]) for key, value in counts.items()}


def suggested(category: ErrorCategory, counts: Counts) -> Resolution:
    """The resolution with the most recorded successes in `category`; ties (and no history): the default."""
    entry = guide(category)
    best = max(counts.get((category.value, r.id), (0, 0))[0] for r in entry.resolutions)
    leaders = [r for r in entry.resolutions if counts.get((category.value, r.id), (0, 0))[0] == best]
    return entry.default if entry.default in leaders else leaders[0]


def _resolution(category: ErrorCategory, resolution: Resolution, counts: Counts) -> ResolutionRead:
    successes, failures = counts.get((category.value, resolution.id), (0, 0))
    return ResolutionRead(
        id=resolution.id,
        who=resolution.who,
        title=resolution.title,
        steps=list(resolution.steps),
        default=resolution.default,
        successes=successes,
        failures=failures,
    )


def _fixes(category: ErrorCategory, entry: CategoryGuide, counts: Counts) -> dict[str, ResolutionRead | str]:
    return {
        "agent_fix": _resolution(category, entry.by_who("agent"), counts),
        "person_fix": _resolution(category, entry.by_who("person"), counts),
        "suggested": suggested(category, counts).id,
    }


async def classify_error(
    *, session: AsyncSession, status_code: int | None, code: str | None, message: str
) -> ClassifyRead:
    category = classify(status_code=status_code, message=message, code=code)
    entry = guide(category)
    counts = await outcome_counts(session=session, categories={category})
    return ClassifyRead(category=category, label=entry.label, meaning=entry.meaning, **_fixes(category, entry, counts))


async def advise(*, session: AsyncSession, errors: list[ErrorFacts]) -> list[ErrorGuidance]:
    """Guidance for each error, with two queries however many errors there are."""
    if not errors:
        return []
    categories = {e.category for e in errors}
    counts = await outcome_counts(session=session, categories=categories)
    marks: dict[tuple[str, str], dict[str, bool]] = defaultdict(dict)
    rows = await session.execute(
        select(
            ResolutionOutcome.subject_type,
            ResolutionOutcome.subject_id,
            ResolutionOutcome.resolution_id,
            ResolutionOutcome.worked,
        ).where(ResolutionOutcome.subject_id.in_(sorted({e.subject_id for e in errors})))
    )
    for subject_type, subject_id, resolution_id, worked in rows.all():
        marks[(subject_type, subject_id)][resolution_id] = bool(worked)
    out = []
    for facts in errors:
        category = facts.category
        entry = guide(category)
        out.append(
            ErrorGuidance(
                subject_type=facts.subject_type,
                subject_id=facts.subject_id,
                category=category,
                label=entry.label,
                meaning=entry.meaning,
                error=facts.error,
                error_code=facts.error_code,
                marked=marks.get((facts.subject_type, facts.subject_id), {}),
                **_fixes(category, entry, counts),
            )
        )
    return out


# --- outcomes -----------------------------------------------------------------------------------


def _tool_call_facts(row: Operation, call_id: str) -> ErrorFacts | None:
    for entry in row.steps:
        if entry.get("kind") == "tool" and entry.get("key") == call_id and entry.get("error"):
            return ErrorFacts("agent_tool_call", f"{row.subject_id}/{call_id}", entry["error"], entry.get("error_code"))
    return None


async def find_error(
    *, session: AsyncSession, subject_type: str, subject_id: str, reader: Principal | None = None
) -> ErrorFacts:
    """The error a subject holds, read again from its record; NotFound / Conflict when there is none."""
    if subject_type == "workflow_step":
        step, _run = await workflows_service.get_step(session=session, step_id=subject_id)
        if step.status != "failed" or not step.error:
            raise Conflict("This workflow step has no error to mark.", code="NO_ERROR")
        return ErrorFacts("workflow_step", step.id, step.error, step.error_code)
    execution_id, _, call_id = subject_id.partition("/")
    row = await operations.get_by_execution(session=session, execution_id=execution_id, reader=reader)
    if subject_type == "agent_run":
        if call_id or not row.error or row.status == "completed":
            raise Conflict("This agent run has no error to mark.", code="NO_ERROR")
        return ErrorFacts("agent_run", row.subject_id, row.error, row.error_code)
    facts = _tool_call_facts(row, call_id) if call_id else None
    if facts is None:
        raise Conflict("This tool call has no error to mark.", code="NO_ERROR")
    return facts


async def record_outcome(
    *, session: AsyncSession, outcome_in: OutcomeCreate, principal: Principal
) -> ResolutionOutcome:
    user_id = principal.user_id
    facts = await find_error(
        session=session, subject_type=outcome_in.subject_type, subject_id=outcome_in.subject_id, reader=principal
    )
    category = facts.category
    if guide(category).get(outcome_in.resolution_id) is None:
        names = ", ".join(r.id for r in guide(category).resolutions)
        raise InvalidInput(
            f"{outcome_in.resolution_id!r} is not a resolution of {category.value} errors (use {names}).",
            code="UNKNOWN_RESOLUTION",
            details={"fields": [{"field": "body.resolution_id", "message": f"one of {names}"}]},
        )
    row = ResolutionOutcome(
        category=category.value,
        resolution_id=outcome_in.resolution_id,
        worked=outcome_in.worked,
        subject_type=facts.subject_type,
        subject_id=facts.subject_id,
        user_id=user_id,
        note=outcome_in.note,
        created_at=utcnow(),
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "Someone already marked whether this resolution worked for this error.", code="OUTCOME_EXISTS"
        ) from exc
    await audit.record(
        session=session,
        actor=audit.Actor.user(user_id),
        action="guidance.resolution_outcome",
        resource_type=facts.subject_type,
        resource_id=facts.subject_id,
        decision="worked" if outcome_in.worked else "did_not_work",
        details={"category": category.value, "resolution": outcome_in.resolution_id},
    )
    payload = {"subject_type": facts.subject_type, "subject_id": facts.subject_id, "category": category.value}
    on_commit(session, lambda: get_bus().publish_soon(OUTCOME_RECORDED, payload))
    return row


# --- progress -----------------------------------------------------------------------------------


async def agent_run_progress(*, session: AsyncSession, execution_id: str, reader: Principal | None = None) -> Progress:
    row = await operations.get_by_execution(session=session, execution_id=execution_id, reader=reader)
    return (await agent_progresses(session=session, rows=[row]))[0]


async def agent_progresses(*, session: AsyncSession, rows: list[Operation]) -> list[Progress]:
    errors: list[ErrorFacts] = []
    for row in rows:
        errors += [
            f
            for e in row.steps
            if e.get("kind") == "tool" and (f := _tool_call_facts(row, str(e.get("key")))) is not None
        ]
        if row.error and row.status != "completed":
            errors.append(ErrorFacts("agent_run", row.subject_id, row.error, row.error_code))
    advice = {(g.subject_type, g.subject_id): g for g in await advise(session=session, errors=errors)}
    out = []
    for row in rows:
        steps = [
            StepProgress(
                key=str(e.get("key")),
                label=str(e.get("label")),
                kind=str(e.get("kind")),
                status=str(e.get("status")),
                detail=e.get("detail"),
                error=e.get("error"),
                error_code=e.get("error_code"),
                guidance=advice.get(("agent_tool_call", f"{row.subject_id}/{e.get('key')}")),
            )
            for e in row.steps
        ]
        out.append(
            Progress(
                kind="agent_run",
                subject_id=row.subject_id,
                title=row.title,
                status=row.status,
                step=row.step,
                total=row.total,
                bounded=row.bounded,
                percent=row.percent,
                what=row.what,
                why=row.why,
                next=row.next,
                error=row.error,
                error_code=row.error_code,
                guidance=advice.get(("agent_run", row.subject_id)),
                steps=steps,
                started_at=row.started_at,
                updated_at=row.updated_at,
                finished_at=row.finished_at,
            )
        )
    return out


async def workflow_run_progress(*, session: AsyncSession, run_id: str) -> Progress:
    run = await workflows_service.get_run(session=session, run_id=run_id)
    steps = await workflows_service.list_steps(session=session, run_id=run_id)
    workflow = await workflows_service.get_workflow(session=session, ref=run.workflow_id)
    version = await workflows_service.get_version(session=session, workflow_id=run.workflow_id, version=run.version)
    described = describe(presenters.run_detail(run, steps), version.definition, workflow.name)
    errors = [ErrorFacts("workflow_step", s.id, s.error or "", s.error_code) for s in described.failed if s.error]
    advice = {g.subject_id: g for g in await advise(session=session, errors=errors)}
    return Progress(
        kind="workflow_run",
        subject_id=described.subject_id,
        title=described.title,
        status=described.status,
        step=described.step,
        total=described.total,
        bounded=False,
        percent=described.percent,
        what=described.what,
        why=described.why,
        next=described.next,
        error=described.error,
        guidance=next(iter(advice.values()), None),
        steps=[
            StepProgress(
                key=s["key"],
                label=s["label"],
                kind=s["kind"],
                status=s["status"],
                detail=s["detail"],
                error=s["error"],
                error_code=s["error_code"],
                guidance=advice.get(s["id"]),
            )
            for s in described.steps
        ],
        started_at=described.started_at,
        finished_at=described.finished_at,
    )


async def list_outcomes(
    *, session: AsyncSession, category: ErrorCategory | None, limit: int, cursor: str | None
) -> tuple[list[ResolutionOutcome], str | None]:
    stmt = select(ResolutionOutcome)
    if category is not None:
        stmt = stmt.where(ResolutionOutcome.category == category.value)
    return await paginate(session, stmt, id_column=ResolutionOutcome.id, limit=limit, cursor=cursor)
