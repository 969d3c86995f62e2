"""Workflow definitions: YAML or JSON, validated by pydantic, with errors that name the line and field.

A definition is a DAG of steps (`needs:`), each an action of a registered tool or integration run
by an agent (the step's or the workflow's), a person's `approval`, or a `wait`. Validation is
complete before anything is stored: schema (pydantic), then the graph (unknown steps, cycles,
failure handlers), then every template (syntax, variables, and that a step only reads the output
of steps upstream of it). Each problem is reported with its YAML/JSON line and dotted field.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from atom.workflows import source as source_text
from atom.workflows import templates
from atom.workflows.source import MAX_SOURCE_BYTES as MAX_SOURCE_BYTES
from atom.workflows.source import DefinitionError as DefinitionError
from atom.workflows.source import Locator
from atom.workflows.source import MalformedDefinition as MalformedDefinition
from atom.workflows.source import detect_format as detect_format

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
STEP_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
ACTION_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$"
MAX_STEPS = 99  # with the start marker, a workflow plan fits the interceptor's 100-step limit
MAX_TRIGGERS = 20
_DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$"
)


def parse_duration(value: object) -> float:
    """Seconds from `90`, `1.5`, `"30s"`, `"5m"`, `"1h30m"`, `"2d"`."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 30s, 5m, 1h30m, 2d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if not value.strip() or match is None or not any(match.groups()):
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 5m, 1h30m, 2d)")
        days, hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError("a duration is a number of seconds or a string like 30s, 5m, 1h30m, 2d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StepType(StrEnum):
    ACTION = "action"
    APPROVAL = "approval"
    WAIT = "wait"


class MissedPolicy(StrEnum):
    SKIP = "skip"
    RUN_ONCE = "run_once"


class Retries(_Strict):
    max: int = Field(default=0, ge=0, le=20, description="Retries after the first attempt.")
    backoff: Duration = Field(default=1.0, le=3600, description="Wait before the first retry.")
    factor: float = Field(default=2.0, ge=1.0, le=10.0, description="Each further wait is multiplied by this.")
    max_backoff: Duration = Field(default=300.0, le=86_400, description="Cap on a single wait.")

    def delay(self, retry_number: int) -> float:
        """Seconds before retry `retry_number` (1-based)."""
        return float(min(self.max_backoff, self.backoff * self.factor ** max(0, retry_number - 1)))


class InputDef(_Strict):
    type: Literal["string", "number", "integer", "boolean", "object", "array"] = "string"
    default: Any = None
    required: bool = False
    description: str = Field(default="", max_length=500)


class StepDef(_Strict):
    id: str = Field(pattern=STEP_ID_PATTERN)
    type: StepType = StepType.ACTION
    name: str | None = Field(default=None, max_length=200)
    action: str | None = Field(default=None, pattern=ACTION_PATTERN)
    agent: str | None = Field(default=None, min_length=1, max_length=100)
    needs: list[str] = Field(default_factory=list, max_length=MAX_STEPS)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    if_: str | None = Field(default=None, alias="if", min_length=1, max_length=2000)
    retries: Retries = Field(default_factory=Retries)
    timeout: Duration | None = Field(default=None, gt=0, le=86_400)
    on_failure: str = Field(default="fail", min_length=1, max_length=63)
    # approval
    message: str | None = Field(default=None, max_length=4000)
    # wait
    duration: Duration | None = Field(default=None, le=366 * 86_400)
    until: str | None = Field(default=None, max_length=500)

    @field_validator("needs")
    @classmethod
    def _needs_unique(cls, needs: list[str]) -> list[str]:
        duplicates = sorted({n for n in needs if needs.count(n) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return needs

    @field_validator("on_failure")
    @classmethod
    def _on_failure_shape(cls, value: str) -> str:
        if value not in ("fail", "continue") and not re.match(STEP_ID_PATTERN, value):
            raise ValueError("must be `fail`, `continue` or the id of a step that handles the failure")
        return value

    @model_validator(mode="after")
    def _fields_for_type(self) -> StepDef:
        if self.type is StepType.ACTION:
            if self.action is None:
                raise ValueError("an action step needs `action:` (a registered tool or integration action)")
            misplaced = [
                f for f, v in (("message", self.message), ("duration", self.duration), ("until", self.until)) if v
            ]
            if misplaced:
                raise ValueError(f"{', '.join(misplaced)} only apply to approval/wait steps")
        elif self.type is StepType.APPROVAL:
            if self.action is not None or self.with_:
                raise ValueError("an approval step has no `action:` or `with:`; it waits for a person")
            if self.duration is not None or self.until is not None:
                raise ValueError("`duration`/`until` belong to wait steps")
        else:
            if self.action is not None or self.with_:
                raise ValueError("a wait step has no `action:` or `with:`")
            if (self.duration is None) == (self.until is None):
                raise ValueError("a wait step needs exactly one of `duration:` or `until:`")
            if self.retries.max:
                raise ValueError("a wait step has no retries")
        return self


class ScheduleTrigger(_Strict):
    id: str = Field(pattern=STEP_ID_PATTERN)
    type: Literal["schedule"]
    cron: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    missed: MissedPolicy = MissedPolicy.SKIP
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a 5-field cron expression (minute hour day month weekday)")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Europe/Paris)") from exc
        return value


class RespondMode(StrEnum):
    ON_ACCEPT = "on_accept"  # 202 once the delivery is recorded and the run started
    ON_FINISH = "on_finish"  # the run's output (200), or 202 + the run id when the timeout passes first


DEFAULT_RESPOND_TIMEOUT_S = 10.0
MAX_RESPOND_TIMEOUT_S = 120.0
RESPOND_STEP = "respond"  # with respond: on_finish, the output of a step with this id is the answer


class WebhookTrigger(_Strict):
    id: str = Field(pattern=STEP_ID_PATTERN)
    type: Literal["webhook"]
    secret: str = Field(
        pattern=r"^[A-Za-z0-9_.:/-]{1,200}$",
        description="Name of the secret (in the secrets store) that signs this webhook's requests.",
    )
    respond: RespondMode = Field(
        default=RespondMode.ON_ACCEPT,
        description="on_accept: answer 202 once the run started; on_finish: answer with the run's output.",
    )
    timeout: Duration | None = Field(
        default=None,
        description=f"respond: on_finish only: how long the caller waits (default {DEFAULT_RESPOND_TIMEOUT_S:g} s).",
    )
    enabled: bool = True

    @field_validator("timeout")
    @classmethod
    def _timeout_needs_on_finish(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None:
            return value
        if info.data.get("respond") is not RespondMode.ON_FINISH:
            raise ValueError("`timeout` applies only to `respond: on_finish` (how long the caller waits for the run)")
        if not 0 < value <= MAX_RESPOND_TIMEOUT_S:
            raise ValueError(
                f"a respond timeout is more than 0 and at most {MAX_RESPOND_TIMEOUT_S:g} s, not {value:g} s"
            )
        return value

    @property
    def respond_timeout_s(self) -> float:
        return self.timeout if self.timeout is not None else DEFAULT_RESPOND_TIMEOUT_S


class EventTrigger(_Strict):
    id: str = Field(pattern=STEP_ID_PATTERN)
    type: Literal["event"]
    event: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", max_length=100)
    filter: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="Run only when the event payload has these key/value pairs."
    )
    enabled: bool = True


Trigger = Annotated[ScheduleTrigger | WebhookTrigger | EventTrigger, Field(discriminator="type")]


class WorkflowDefinition(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    agent: str | None = Field(default=None, min_length=1, max_length=100)
    inputs: dict[str, InputDef] = Field(default_factory=dict, max_length=100)
    triggers: list[Trigger] = Field(default_factory=list, max_length=MAX_TRIGGERS)
    steps: list[StepDef] = Field(min_length=1, max_length=MAX_STEPS)

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, inputs: dict[str, InputDef]) -> dict[str, InputDef]:
        bad = [name for name in inputs if not re.match(STEP_ID_PATTERN, name)]
        if bad:
            raise ValueError(f"input names must match {STEP_ID_PATTERN}: {', '.join(bad)}")
        return inputs

    def step(self, step_id: str) -> StepDef:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def handler_ids(self) -> set[str]:
        """Steps named by some `on_failure`: they run only when that failure happens."""
        return {s.on_failure for s in self.steps if s.on_failure not in ("fail", "continue")}

    def upstream(self, step_id: str) -> set[str]:
        """Every step `step_id` transitively needs."""
        by_id = {s.id: s for s in self.steps}
        seen: set[str] = set()
        stack = list(by_id[step_id].needs)
        while stack:
            current = stack.pop()
            if current in seen or current not in by_id:
                continue
            seen.add(current)
            stack.extend(by_id[current].needs)
        return seen

    def as_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


@dataclass(frozen=True)
class Parsed:
    definition: WorkflowDefinition
    locator: Locator
    source_format: str

    def problem(self, loc: tuple[str | int, ...], message: str, kind: str = "reference") -> dict[str, Any]:
        field, line = self.locator.find(loc)
        return {"field": field, "line": line, "message": message, "type": kind}


def parse_definition(
    text: str, fmt: Literal["yaml", "json"] | None = None, *, action_exists: Callable[[str], bool] | None = None
) -> WorkflowDefinition:
    """Parse and fully validate. `action_exists` (from the action registry) checks each step's action."""
    return parse(text, fmt, action_exists=action_exists).definition


async def parse_off_loop(
    text: str, fmt: Literal["yaml", "json"] | None = None, *, action_exists: Callable[[str], bool] | None = None
) -> Parsed:
    """`parse` in a worker thread: reading and validating up to `MAX_SOURCE_BYTES` of text is CPU work
    that would otherwise hold the event loop (every other request) for its duration."""
    return await asyncio.to_thread(parse, text, fmt, action_exists=action_exists)


def parse(
    text: str, fmt: Literal["yaml", "json"] | None = None, *, action_exists: Callable[[str], bool] | None = None
) -> Parsed:
    data, node = source_text.load(text, fmt)
    locator = Locator(node, data)
    try:
        definition = WorkflowDefinition.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field, line = locator.find(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            problems.append({"field": field, "line": line, "message": message, "type": err["type"]})
        raise DefinitionError(problems) from exc
    problems = check_graph(definition, locator) + check_templates(definition, locator)
    if action_exists is not None:
        for index, step in enumerate(definition.steps):
            if step.action is not None and not action_exists(step.action):
                field, line = locator.find(("steps", index, "action"))
                problems.append(
                    {"field": field, "line": line, "message": f"unknown action {step.action!r}", "type": "action"}
                )
    if problems:
        raise DefinitionError(problems)
    return Parsed(definition, locator, detect_format(text, fmt))


def check_graph(definition: WorkflowDefinition, locator: Locator) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    ids = [s.id for s in definition.steps]
    seen: set[str] = set()
    for index, step_id in enumerate(ids):
        if step_id in seen:
            field, line = locator.find(("steps", index, "id"))
            problems.append({"field": field, "line": line, "message": f"duplicate step id {step_id!r}", "type": "dag"})
        seen.add(step_id)
    trigger_ids = [t.id for t in definition.triggers]
    for index, trigger_id in enumerate(trigger_ids):
        if trigger_ids.count(trigger_id) > 1 and trigger_ids.index(trigger_id) != index:
            field, line = locator.find(("triggers", index, "id"))
            problems.append(
                {"field": field, "line": line, "message": f"duplicate trigger id {trigger_id!r}", "type": "dag"}
            )
    handlers = definition.handler_ids
    for index, step in enumerate(definition.steps):
        for need in step.needs:
            if need not in seen:
                field, line = locator.find(("steps", index, "needs"))
                problems.append(
                    {"field": field, "line": line, "message": f"unknown step {need!r} in needs", "type": "dag"}
                )
            elif need == step.id:
                field, line = locator.find(("steps", index, "needs"))
                problems.append({"field": field, "line": line, "message": "a step cannot need itself", "type": "dag"})
            elif need in handlers:
                field, line = locator.find(("steps", index, "needs"))
                problems.append(
                    {
                        "field": field,
                        "line": line,
                        "message": f"{need!r} is a failure handler (named by on_failure); steps cannot need it",
                        "type": "dag",
                    }
                )
        if step.on_failure not in ("fail", "continue"):
            field, line = locator.find(("steps", index, "on_failure"))
            if step.on_failure not in seen:
                problems.append(
                    {"field": field, "line": line, "message": f"unknown step {step.on_failure!r}", "type": "dag"}
                )
            elif step.on_failure == step.id:
                problems.append(
                    {"field": field, "line": line, "message": "a step cannot handle its own failure", "type": "dag"}
                )
    for index, step in enumerate(definition.steps):
        if step.id in handlers and step.needs:
            field, line = locator.find(("steps", index, "needs"))
            problems.append(
                {
                    "field": field,
                    "line": line,
                    "message": "a failure handler runs when its failure happens; it has no needs",
                    "type": "dag",
                }
            )
    if not problems:
        cycle = find_cycle(definition)
        if cycle:
            index = ids.index(cycle[0])
            field, line = locator.find(("steps", index, "needs"))
            problems.append(
                {
                    "field": field,
                    "line": line,
                    "message": "dependency cycle: "
                    + ", ".join(f"{a} needs {b}" for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True)),
                    "type": "dag",
                }
            )
    return problems


def find_cycle(definition: WorkflowDefinition) -> list[str] | None:
    needs = {s.id: s.needs for s in definition.steps}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for need in needs.get(node, []):
            if state.get(need) == 1:
                return path[path.index(need) :]
            if state.get(need) is None:
                found = visit(need)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for step_id in needs:
        if state.get(step_id) is None:
            found = visit(step_id)
            if found:
                return found
    return None


def topological_order(definition: WorkflowDefinition) -> list[str]:
    """Step ids so that every step comes after the steps it needs (definition order breaks ties)."""
    remaining = {s.id: set(s.needs) for s in definition.steps}
    order: list[str] = []
    while remaining:
        ready = [s.id for s in definition.steps if s.id in remaining and not remaining[s.id]]
        if not ready:
            raise ValueError("cycle")
        for step_id in ready:
            del remaining[step_id]
            order.append(step_id)
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def check_templates(definition: WorkflowDefinition, locator: Locator) -> list[dict[str, Any]]:
    """Syntax, known variables, and that `steps.X` is upstream of the step that reads it."""
    problems: list[dict[str, Any]] = []
    handlers = definition.handler_ids
    input_names = set(definition.inputs)
    for index, step in enumerate(definition.steps):
        allowed_steps = definition.upstream(step.id)
        if step.id in handlers:
            allowed_steps = {s.id for s in definition.steps if s.id != step.id}
        fields: list[tuple[tuple[str | int, ...], Any]] = [(("steps", index, "with"), step.with_)]
        if step.if_ is not None:
            fields.append((("steps", index, "if"), step.if_))
        if step.message is not None:
            fields.append((("steps", index, "message"), step.message))
        if step.until is not None:
            fields.append((("steps", index, "until"), step.until))
        for loc, value in fields:
            for sub_loc, source in templates.iter_strings(value, loc):
                try:
                    refs = templates.references(source, expression=sub_loc[-1] == "if")
                except templates.TemplateProblem as exc:
                    field, line = locator.find(sub_loc)
                    problems.append({"field": field, "line": line, "message": exc.message, "type": "template"})
                    continue
                field, line = locator.find(sub_loc)
                unknown = refs.names - templates.CONTEXT_NAMES
                if step.id not in handlers:
                    unknown |= refs.names & {"failure"}
                for name in sorted(unknown):
                    problems.append(
                        {"field": field, "line": line, "message": f"unknown variable {name!r}", "type": "template"}
                    )
                for ref in sorted(refs.steps - allowed_steps):
                    reason = (
                        "is not a step"
                        if ref not in {s.id for s in definition.steps}
                        else "is not upstream (add it to needs)"
                    )
                    problems.append(
                        {"field": field, "line": line, "message": f"steps.{ref} {reason}", "type": "template"}
                    )
                for ref in sorted(refs.inputs - input_names):
                    problems.append(
                        {
                            "field": field,
                            "line": line,
                            "message": f"inputs.{ref} is not declared in inputs",
                            "type": "template",
                        }
                    )
    return problems
