"""Runs and step runs as plain snapshots, read and written with single SQL statements.

The engine is the hot path of every workflow: an ORM unit of work costs several times the SQL it
sends, so the engine reads a run's rows into these snapshots, changes their attributes, and
`save_*` writes back exactly the columns that changed (one UPDATE per changed row). The ORM
models in `models.py` stay the schema and serve the API's reads.

Values are compared by equality against what was read, so assign new values (`step.logs = [...]`)
rather than mutating a JSON value in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, Table, Update, bindparam, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from atom.db.base import table_of
from atom.db.session import rows_affected
from atom.workflows.models import StepRun, WorkflowRun

RUNS = table_of(WorkflowRun)
STEPS = table_of(StepRun)


@dataclass(slots=True, eq=False)
class RunState:
    id: str
    workflow_id: str
    version: int
    agent_id: str
    status: str
    mode: str
    trigger_kind: str
    source: str
    trigger_id: str | None
    trigger_payload: dict[str, Any]
    inputs: dict[str, Any]
    proposal_id: str | None
    supervision_session_id: str | None
    actor_user_id: str | None
    chain_depth: int
    lock_version: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    loaded: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(slots=True, eq=False)
class StepState:
    id: str
    run_id: str
    step_key: str
    position: int
    kind: str
    action: str | None
    status: str
    attempt: int
    generation: int
    dispatches: int
    idempotency_key: str
    input: dict[str, Any] | None
    output: dict[str, Any] | None
    error: str | None
    error_code: str | None
    logs: list[dict[str, Any]]
    agent_id: str | None
    worker: str | None
    proposal_id: str | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    due_at: datetime | None
    lease_expires_at: datetime | None
    loaded: dict[str, Any] = field(default_factory=dict, repr=False)


RUN_COLUMNS = tuple(c.name for c in RUNS.columns)
STEP_COLUMNS = tuple(c.name for c in STEPS.columns)
_LOCK_RUN = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_id"))
    .values(lock_version=RUNS.c.lock_version + 1)
    .returning(*RUNS.columns)
)
_SELECT_RUN = select(*RUNS.columns).where(RUNS.c.id == bindparam("run_id"))
_SELECT_STEPS = select(*STEPS.columns).where(STEPS.c.run_id == bindparam("run_id")).order_by(STEPS.c.position)


def run_from(values: dict[str, Any]) -> RunState:
    run = RunState(**values)
    run.loaded = dict(values)
    return run


def step_from(values: dict[str, Any]) -> StepState:
    step = StepState(**values)
    step.loaded = dict(values)
    return step


def changes(state: RunState | StepState, columns: tuple[str, ...]) -> dict[str, Any]:
    loaded = state.loaded
    changed = {}
    for name in columns:
        value = getattr(state, name)
        before = loaded.get(name)
        if value is not before and value != before:
            changed[name] = value
    return changed


async def connection(session: AsyncSession) -> AsyncConnection:
    """The session's own connection and transaction: snapshot statements commit with the session."""
    return await session.connection()


async def lock_run(session: AsyncSession, run_id: str) -> RunState | None:
    """Lock the run row with a write (row lock on PostgreSQL, the write lock on SQLite) and read it."""
    conn = await connection(session)
    row = (await conn.execute(_LOCK_RUN, {"run_id": run_id})).mappings().first()
    return run_from(dict(row)) if row is not None else None


async def read_run(session: AsyncSession, run_id: str) -> RunState | None:
    conn = await connection(session)
    row = (await conn.execute(_SELECT_RUN, {"run_id": run_id})).mappings().first()
    return run_from(dict(row)) if row is not None else None


async def load_steps(session: AsyncSession, run_id: str) -> list[StepState]:
    conn = await connection(session)
    return [step_from(dict(row)) for row in (await conn.execute(_SELECT_STEPS, {"run_id": run_id})).mappings()]


async def insert_run(session: AsyncSession, run: RunState, steps: list[StepState]) -> None:
    await insert_runs(session, [(run, steps)])


async def insert_runs(session: AsyncSession, runs: list[tuple[RunState, list[StepState]]]) -> None:
    """Insert runs and their steps: two statements however many runs."""
    if not runs:
        return
    conn = await connection(session)
    await conn.execute(insert(RUNS), [{name: getattr(run, name) for name in RUN_COLUMNS} for run, _ in runs])
    await conn.execute(
        insert(STEPS), [{name: getattr(step, name) for name in STEP_COLUMNS} for _, steps in runs for step in steps]
    )
    for run, steps in runs:
        run.loaded = {name: getattr(run, name) for name in RUN_COLUMNS}
        for step in steps:
            step.loaded = {name: getattr(step, name) for name in STEP_COLUMNS}


@lru_cache(maxsize=512)
def _update(table: Table, columns: tuple[str, ...], expected: tuple[str, ...] = (), at_version: str = "") -> Update:
    """A prepared UPDATE per shape (which columns change, which must still hold): built and compiled once.

    `at_version` (a step's UPDATE only): also require the run's lock version to be `_run_version`;
    "check" reads it in a subquery, "lock" takes the run's row lock and bumps the version in a
    data-modifying CTE of the same statement (PostgreSQL).
    """
    conditions = [table.c[name] == bindparam(f"_was_{name}", type_=table.c[name].type) for name in expected]
    if at_version == "check":
        version = select(RUNS.c.lock_version).where(RUNS.c.id == table.c.run_id).scalar_subquery()
        conditions.append(version == bindparam("_run_version"))
    elif at_version == "lock":
        locked = (
            update(RUNS)
            .where(RUNS.c.id == bindparam("_run_id"), RUNS.c.lock_version == bindparam("_run_version"))
            .values(lock_version=RUNS.c.lock_version + 1)
            .returning(RUNS.c.id)
            .cte("locked_run")
        )
        conditions.append(table.c.run_id.in_(select(locked.c.id)))
    stmt = update(table).where(table.c.id == bindparam("_id"), *conditions)
    return stmt.values({name: bindparam(f"_new_{name}", type_=table.c[name].type) for name in columns})


def _params(state: RunState | StepState, changed: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    params = {f"_new_{name}": value for name, value in changed.items()}
    params.update({f"_was_{name}": value for name, value in expected.items()})
    params["_id"] = state.id
    return params


async def save_run(session: AsyncSession, run: RunState) -> None:
    changed = changes(run, RUN_COLUMNS)
    if changed:
        conn = await connection(session)
        await conn.execute(_update(RUNS, tuple(changed)), _params(run, changed, {}))
        run.loaded.update(changed)


async def save_steps(session: AsyncSession, steps: list[StepState]) -> None:
    """One UPDATE per step that changed since it was read."""
    conn: AsyncConnection | None = None
    for step in steps:
        changed = changes(step, STEP_COLUMNS)
        if not changed:
            continue
        if conn is None:
            conn = await connection(session)
        await conn.execute(_update(STEPS, tuple(changed)), _params(step, changed, {}))
        step.loaded.update(changed)


async def save_step_if(session: AsyncSession, step: StepState, expected: dict[str, Any]) -> bool:
    """Write the step's changes only if its row still holds `expected` (a conditional transition)."""
    return await _save_step(session, step, expected, {}, "")


async def save_step_at(session: AsyncSession, step: StepState, expected: dict[str, Any], run: RunState) -> bool:
    """`save_step_if`, and only if nobody locked the run since `run` was read or written, in one statement.

    On SQLite the step's UPDATE is the transaction's first write, which takes the database's write lock,
    so checking the version is enough; on PostgreSQL the statement also takes the run's row lock and
    bumps its version, as `lock_run` would.
    """
    sqlite = session.bind is not None and session.bind.dialect.name == "sqlite"
    extra = {"_run_version": run.lock_version, "_run_id": run.id}
    if not await _save_step(session, step, expected, extra, "check" if sqlite else "lock"):
        return False
    if not sqlite:
        run.lock_version += 1
        run.loaded["lock_version"] = run.lock_version
    return True


async def _save_step(
    session: AsyncSession, step: StepState, expected: dict[str, Any], extra: dict[str, Any], at_version: str
) -> bool:
    changed = changes(step, STEP_COLUMNS) or {"id": step.id}
    conn = await connection(session)
    params = {**_params(step, changed, expected), **extra}
    stmt = _update(STEPS, tuple(changed), tuple(expected), at_version)
    if rows_affected(await conn.execute(stmt, params)) != 1:
        return False
    step.loaded.update(changed)
    return True


async def save_steps_at(
    session: AsyncSession, step: StepState, expected: dict[str, Any], run: RunState, others: list[StepState]
) -> bool:
    """`save_step_at`, and with it the changes of `others` (steps of the same run) only if it applied.

    On PostgreSQL this is one statement: the run's lock, the step's conditional UPDATE and the others'
    UPDATEs as data-modifying CTEs, the others gated on the step's. On SQLite (no data-modifying CTEs)
    the others follow in statements of their own.
    """
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        if not await save_step_at(session, step, expected, run):
            return False
        await save_steps(session, others)
        return True
    changed = changes(step, STEP_COLUMNS) or {"id": step.id}
    following = [(other, delta) for other in others if (delta := changes(other, STEP_COLUMNS))]
    params = {**_params(step, changed, expected), "_run_version": run.lock_version, "_run_id": run.id}
    for index, (other, delta) in enumerate(following):
        params.update({f"_o{index}{name}": value for name, value in _params(other, delta, {}).items()})
    stmt = _chained_update(tuple(changed), tuple(expected), tuple(tuple(delta) for _, delta in following))
    conn = await connection(session)
    if (await conn.execute(stmt, params)).scalar() != 1:
        return False
    step.loaded.update(changed)
    run.lock_version += 1
    run.loaded["lock_version"] = run.lock_version
    for other, delta in following:
        other.loaded.update(delta)
    return True


@lru_cache(maxsize=256)
def _chained_update(
    columns: tuple[str, ...], expected: tuple[str, ...], others: tuple[tuple[str, ...], ...]
) -> Select[Any]:
    """`WITH locked_run AS (...), recorded AS (UPDATE the step ...), o0 AS (UPDATE another step ... WHERE
    EXISTS (SELECT FROM recorded)), ... SELECT count(*) FROM recorded` (PostgreSQL), built once per shape."""
    recorded = _update(STEPS, columns, expected, "lock").returning(STEPS.c.id).cte("recorded")
    stmt = select(func.count()).select_from(recorded)
    for index, names in enumerate(others):
        prefix = f"_o{index}"
        gated = (
            update(STEPS)
            .where(STEPS.c.id == bindparam(f"{prefix}_id"), exists(select(recorded.c.id)))
            .values({name: bindparam(f"{prefix}_new_{name}", type_=STEPS.c[name].type) for name in names})
            .returning(STEPS.c.id)
            .cte(f"o{index}")
        )
        stmt = stmt.add_cte(gated)
    return stmt
