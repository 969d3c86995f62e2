"""Constitutional rules as data: a YAML rule set whose conditions are CEL expressions.

```yaml
rules:
  - id: small-payments
    description: Payments above 1,000 need a person.
    actions: [payment, transfer]          # or ["*"] for every action
    condition: "double(params.amount) <= 1000.0"
```

An action satisfies a rule when the rule does not cover it or its condition is true. The condition
sees `action` (the name), `params` (its arguments) and `context` (`level`, `trigger`, `status`,
`source`). A condition that cannot be evaluated for an action (a missing field, a type error) is a
violation: fail closed. Conditions are compiled with Google's CEL (`common-expression-language`, a
Rust implementation with no loops beyond bounded macros); their size and macro nesting are bounded so
an expression cannot exhaust the evaluator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel
import yaml

from atom.errors import InvalidInput

MAX_SOURCE_BYTES = 64 * 1024
MAX_RULES = 200
MAX_CONDITION_CHARS = 2000
MAX_MACROS = 4
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
_MACRO = re.compile(r"\.\s*(all|exists|exists_one|map|filter)\s*\(")
_RULE_FIELDS = {"id", "description", "actions", "condition"}


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    actions: tuple[str, ...]
    condition: str
    line: int
    program: Any

    def covers(self, action: str) -> bool:
        return "*" in self.actions or action in self.actions


@dataclass(frozen=True)
class Violation:
    rule_id: str
    action: str
    reason: str


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def check(self, action: str, params: dict[str, Any], context: dict[str, Any]) -> list[Violation]:
        found = []
        for rule in self.rules:
            if not rule.covers(action):
                continue
            satisfied, error = evaluate(rule.program, {"action": action, "params": params, "context": context})
            if error is not None:
                found.append(Violation(rule.id, action, error))
            elif not satisfied:
                found.append(Violation(rule.id, action, rule.description or f"condition {rule.condition!r} is false"))
        return found


class ConditionError(ValueError):
    """A CEL condition that is refused: empty, too long, too many macros, or it does not compile."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


def compile_condition(condition: object) -> Any:
    """Compile one CEL condition within the bounds (size, list macros); ConditionError says why not."""
    if not isinstance(condition, str) or not condition.strip():
        raise ConditionError("`condition` (a CEL expression) is required")
    if len(condition) > MAX_CONDITION_CHARS:
        raise ConditionError(f"a condition is at most {MAX_CONDITION_CHARS} characters")
    if len(_MACRO.findall(condition)) > MAX_MACROS:
        raise ConditionError(f"at most {MAX_MACROS} list macros (all, exists, map, filter)")
    try:
        return cel.compile(condition)
    except Exception as exc:  # the compiler raises plain exceptions; its message names the column
        text = str(exc)
        column = re.search(r"<input>:\d+:(\d+)", text)
        raise ConditionError(
            f"condition does not compile: {text.splitlines()[0][:300]}", int(column.group(1)) if column else None
        ) from None


def evaluate(program: Any, activation: dict[str, Any]) -> tuple[bool, str | None]:
    """(satisfied, why it could not be evaluated). Only `true` satisfies; an evaluation error never does."""
    try:
        value = program.execute(activation)
    except Exception as exc:  # any evaluation failure is a violation (fail closed)
        return False, f"condition could not be evaluated: {exc}"[:300]
    return value is True, None


def compile_check(condition: str, *, field: str) -> Any:
    """Compile a CEL condition with the rule set's bounds; a 422 naming `field` (and the CEL column) if refused."""
    try:
        return compile_condition(condition)
    except ConditionError as exc:
        details: dict[str, Any] = {"field": field}
        if exc.column is not None:
            details["column"] = exc.column
        raise InvalidInput(f"{field}: {exc.message}", code="CONDITION_INVALID", details=details) from None


def run_check(program: Any, activation: dict[str, Any]) -> tuple[bool, str | None]:
    """(satisfied, why it could not be evaluated): only `true` satisfies; an evaluation error is unsatisfied."""
    return evaluate(program, activation)


EMPTY = RuleSet(rules=())


def _problem(message: str, rule: str | None, line: int | None, column: int | None = None) -> InvalidInput:
    details: dict[str, Any] = {"rule": rule, "line": line}
    if column is not None:
        details["column"] = column
    where = f"line {line}" if line else "the rule set"
    return InvalidInput(f"{where}: {message}", code="RULE_SET_INVALID", details=details)


class _NoAliases(yaml.SafeLoader):
    """YAML aliases could expand a small file into a huge document: refused."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _problem("YAML aliases are not allowed in a rule set", None, event.start_mark.line + 1)
        return super().compose_node(parent, index)


def parse(source: str) -> RuleSet:
    """Parse and compile a rule set; any problem is a 422 naming the rule and its line."""
    if len(source.encode()) > MAX_SOURCE_BYTES:
        raise _problem(f"a rule set is at most {MAX_SOURCE_BYTES} bytes", None, None)
    try:
        root = yaml.compose(source, Loader=_NoAliases)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _problem(
            f"not valid YAML: {getattr(exc, 'problem', exc)}", None, mark.line + 1 if mark else None
        ) from None
    if root is None:
        return EMPTY
    if not isinstance(root, yaml.MappingNode) or [k.value for k, _ in root.value] != ["rules"]:
        raise _problem("a rule set is a mapping with one key, `rules`", None, 1)
    rules_node = root.value[0][1]
    if not isinstance(rules_node, yaml.SequenceNode):
        raise _problem("`rules` must be a list", None, rules_node.start_mark.line + 1)
    if len(rules_node.value) > MAX_RULES:
        raise _problem(f"at most {MAX_RULES} rules", None, rules_node.start_mark.line + 1)
    rules: list[Rule] = []
    seen: set[str] = set()
    for position, node in enumerate(rules_node.value):
        rules.append(_rule(node, position, seen))
    return RuleSet(rules=tuple(rules))


def _rule(node: Any, position: int, seen: set[str]) -> Rule:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise _problem(f"rule {position + 1} must be a mapping", None, line)
    data = yaml.safe_load(yaml.serialize(node))
    rule_id = data.get("id")
    name = rule_id if isinstance(rule_id, str) else f"#{position + 1}"
    unknown = sorted(set(data) - _RULE_FIELDS)
    if unknown:
        raise _problem(f"rule {name}: unknown field {unknown[0]!r}", name, line)
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise _problem(f"rule {name}: `id` is required (letters, digits, _ . -)", name, line)
    if rule_id in seen:
        raise _problem(f"rule {name}: duplicate id", name, line)
    seen.add(rule_id)
    actions = data.get("actions")
    if not isinstance(actions, list) or not actions or not all(isinstance(a, str) and a for a in actions):
        raise _problem(f'rule {name}: `actions` must be a non-empty list of action names (or ["*"])', name, line)
    condition = data.get("condition")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _problem(f"rule {name}: `description` must be text", name, line)
    try:
        program = compile_condition(condition)
    except ConditionError as exc:
        raise _problem(f"rule {name}: {exc.message}", name, line, exc.column) from None
    return Rule(rule_id, description, tuple(actions), condition, line, program)
