"""Training scenarios as data: versioned, audited, loaded from YAML or the API (docs/training.md).

A scenario is a task for an agent of a category, the tools it is offered, and how its outcome is
scored: CEL rules (compiled by the graduation service, with the rule set's bounds), a reference answer,
an LLM judge. Saving a scenario under an existing name stores a new version; the newest version is the
one in force, unless the scenario is retired. Everything is checked before anything is stored: a bad
scenario (or one bad scenario of a file) is a 422 naming the field, and nothing changes.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.db.base import utcnow
from atom.errors import Conflict, InvalidInput, NotFound
from atom.governance import catalogue as governance_catalogue
from atom.graduation import service as graduation
from atom.runtime import tools as runtime_tools
from atom.training.models import TrainingScenario
from atom.training.scenario_schemas import MAX_SOURCE_BYTES, ScenarioFile, ScenarioIn

MAX_PER_CATEGORY = 100


class _NoAliases(yaml.SafeLoader):
    """YAML aliases could expand a small file into a huge document: refused."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _invalid([{"field": "source", "message": "YAML aliases are not allowed", "line": _line(event)}])
        return super().compose_node(parent, index)


def _line(item: Any) -> int:
    return int(item.start_mark.line) + 1


def _invalid(fields: list[dict[str, Any]]) -> InvalidInput:
    shown = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
    return InvalidInput(f"Invalid training scenario: {shown}", code="SCENARIO_INVALID", details={"fields": fields})


def _pydantic_fields(exc: ValidationError, prefix: str, lines: list[int] | None = None) -> list[dict[str, Any]]:
    fields = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        entry: dict[str, Any] = {"field": ".".join([prefix, *loc]) if prefix else ".".join(loc), "message": err["msg"]}
        if lines is not None and len(loc) > 1 and loc[0] == "scenarios" and loc[1].isdigit():
            entry["line"] = lines[int(loc[1])] if int(loc[1]) < len(lines) else None
        fields.append(entry)
    return fields


def parse_file(source: str) -> list[ScenarioIn]:
    """A scenario file (`scenarios: [...]`) parsed and validated; a 422 names the field and its line."""
    if len(source.encode()) > MAX_SOURCE_BYTES:
        raise _invalid([{"field": "source", "message": f"a scenario file is at most {MAX_SOURCE_BYTES} bytes"}])
    try:
        root = yaml.compose(source, Loader=_NoAliases)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = f"not valid YAML: {getattr(exc, 'problem', exc)}"
        raise _invalid([{"field": "source", "message": problem, "line": line}]) from None
    lines: list[int] = []
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "scenarios" and isinstance(value, yaml.SequenceNode):
                lines = [_line(item) for item in value.value]
    data = yaml.safe_load(source) if root is not None else None
    try:
        parsed = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        raise _invalid(_pydantic_fields(exc, "", lines)) from None
    names = [s.name for s in parsed.scenarios]
    duplicate = next((i for i, n in enumerate(names) if n in names[:i]), None)
    if duplicate is not None:
        raise _invalid([{"field": f"scenarios.{duplicate}.name", "message": "a name twice in one file"}])
    for index, scenario in enumerate(parsed.scenarios):
        check(scenario, prefix=f"scenarios.{index}", line=lines[index] if index < len(lines) else None)
    return parsed.scenarios


def check(scenario: ScenarioIn, *, prefix: str, line: int | None = None) -> None:
    """What pydantic cannot see: every rule's CEL compiles, every tool exists."""
    problems: list[dict[str, Any]] = []
    for index, rule in enumerate(scenario.expect.rules):
        field = f"{prefix}.expect.rules.{index}.condition"
        try:
            graduation.compile_check(rule.condition, field=field)
        except InvalidInput as exc:
            problems.append({"field": field, "message": exc.message.removeprefix(f"{field}: "), **exc.details})
    tools, catalogue = runtime_tools.current(), governance_catalogue.current()
    for index, name in enumerate(scenario.tools):
        if tools.get(name) is None and catalogue.get(name) is None:
            problems.append({"field": f"{prefix}.tools.{index}", "message": f"no tool or action named {name!r}"})
    if problems:
        if line is not None:
            for problem in problems:
                problem["line"] = line
        raise _invalid(problems)


async def save(*, session: AsyncSession, scenario: ScenarioIn, actor: audit.Actor) -> TrainingScenario:
    """Store a checked scenario as the next version of its name (audited)."""
    latest = await session.scalar(
        select(func.max(TrainingScenario.version)).where(TrainingScenario.name == scenario.name)
    )
    in_category = [s for s in await current(session=session, category=scenario.category) if s.name != scenario.name]
    if len(in_category) >= MAX_PER_CATEGORY:
        raise Conflict(
            f"Category {scenario.category!r} has {MAX_PER_CATEGORY} scenarios already; retire one first.",
            code="SCENARIO_LIMIT",
            details={"field": "category", "limit": MAX_PER_CATEGORY},
        )
    row = TrainingScenario(
        name=scenario.name,
        version=(latest or 0) + 1,
        category=scenario.category,
        description=scenario.description,
        task=scenario.task,
        tools=list(scenario.tools),
        expect=scenario.expect.model_dump(exclude_none=True),
        created_by=actor.id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="training.scenario.save",
        resource_type="training_scenario",
        resource_id=row.id,
        decision="done",
        details={"name": row.name, "version": row.version, "category": row.category, "tools": row.tools},
    )
    return row


async def save_all(*, session: AsyncSession, scenarios: list[ScenarioIn], actor: audit.Actor) -> list[TrainingScenario]:
    return [await save(session=session, scenario=s, actor=actor) for s in scenarios]


async def current(
    *, session: AsyncSession, category: str | None = None, include_retired: bool = False
) -> list[TrainingScenario]:
    """The version in force of each scenario (newest), by name; retired ones only when asked."""
    newest = (
        select(TrainingScenario.name, func.max(TrainingScenario.version).label("version"))
        .group_by(TrainingScenario.name)
        .subquery()
    )
    stmt = (
        select(TrainingScenario)
        .join(newest, (TrainingScenario.name == newest.c.name) & (TrainingScenario.version == newest.c.version))
        .order_by(TrainingScenario.name)
    )
    if category is not None:
        stmt = stmt.where(TrainingScenario.category == category)
    if not include_retired:
        stmt = stmt.where(TrainingScenario.retired_at.is_(None))
    return list((await session.scalars(stmt)).all())


async def versions(*, session: AsyncSession, name: str) -> list[TrainingScenario]:
    """Every version of a scenario, newest first; 404 when there is none."""
    stmt = select(TrainingScenario).where(TrainingScenario.name == name).order_by(TrainingScenario.version.desc())
    rows = list((await session.scalars(stmt)).all())
    if not rows:
        raise NotFound(f"No training scenario named {name!r}.", code="SCENARIO_NOT_FOUND", details={"name": name})
    return rows


async def retire(*, session: AsyncSession, name: str, actor: audit.Actor) -> TrainingScenario:
    """Stop running a scenario (its versions are kept; saving it again brings it back)."""
    rows = await versions(session=session, name=name)
    if rows[0].retired_at is not None:
        raise Conflict(f"Scenario {name!r} is retired already.", code="SCENARIO_RETIRED", details={"name": name})
    now = utcnow()
    await session.execute(update(TrainingScenario).where(TrainingScenario.name == name).values(retired_at=now))
    await session.refresh(rows[0])
    await audit.record(
        session=session,
        actor=actor,
        action="training.scenario.retire",
        resource_type="training_scenario",
        resource_id=rows[0].id,
        decision="done",
        details={"name": name, "version": rows[0].version},
    )
    return rows[0]
