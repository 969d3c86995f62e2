"""Step inputs and conditions: Jinja2 in a `SandboxedEnvironment` with `StrictUndefined`.

A missing variable is an error, never an empty string. A string that is exactly one expression
(`"{{ steps.fetch.output.items }}"`) keeps its type (a list stays a list); any other string is
rendered as text. Conditions (`if:`) are expressions (`steps.check.output.count > 0`; surrounding
`{{ }}` are accepted). The sandbox refuses attribute access to internals, and string/list
multiplication and powers are capped so a template cannot exhaust memory.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from atom import arithmetic
from atom.errors import InvalidInput

CONTEXT_NAMES = frozenset({"inputs", "trigger", "steps", "run", "failure"})
MAX_REPEAT = 100_000
MAX_EXPONENT = 1000
MAX_RENDERED_CHARS = 1_000_000
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # `output.items` means the key "items", not dict.items: data first, methods second.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name in self.intercepted_binops and arithmetic.oversized_bits(operator_name, left, right):
            raise SecurityError(f"the result would pass {arithmetic.MAX_RESULT_BITS} bits")
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int) and len(seq) * count > MAX_REPEAT:
                    raise SecurityError("repetition too large")
            return operator.mul(left, right)
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        return super().call_binop(context, operator_name, left, right)


_env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateProblem(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TemplateError(InvalidInput):
    default_code = "TEMPLATE_ERROR"


@dataclass
class References:
    names: set[str] = field(default_factory=set)
    steps: set[str] = field(default_factory=set)
    inputs: set[str] = field(default_factory=set)


def _strip_braces(expression: str) -> str:
    match = _SINGLE_EXPRESSION.match(expression)
    return match.group("expr") if match else expression


@lru_cache(maxsize=4096)
def _compiled_template(source: str) -> Any:
    return _env.from_string(source)


@lru_cache(maxsize=4096)
def _compiled_expression(source: str) -> Any:
    return _env.compile_expression(source, undefined_to_none=False)


def _describe(exc: Exception) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message}"
    if isinstance(exc, UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"refused by the template sandbox: {exc}"
    return f"template error: {type(exc).__name__}: {exc}"


def iter_strings(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string inside a nested value, with its location."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_strings(item, (*loc, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_strings(item, (*loc, index))


def references(source: str, *, expression: bool = False) -> References:
    """Parse a template (or an `if:` expression) and list what it reads. Raises TemplateProblem."""
    text = "{{ " + _strip_braces(source) + " }}" if expression else source
    try:
        tree = _env.parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(_describe(exc)) from exc
    refs = References()
    refs.names = set(meta.find_undeclared_variables(tree))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not isinstance(target, nodes.Name) or target.name not in ("steps", "inputs"):
            continue
        key: object = None
        if isinstance(node, nodes.Getattr):
            key = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key = node.arg.value
        if isinstance(key, str):
            (refs.steps if target.name == "steps" else refs.inputs).add(key)
    return refs


def render_value(value: Any, context: dict[str, Any], *, field: str) -> Any:
    """Render every string in a nested value. Raises TemplateError naming the field."""
    if isinstance(value, str):
        return render_string(value, context, field=field)
    if isinstance(value, dict):
        return {key: render_value(item, context, field=f"{field}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context, field=f"{field}[{i}]") for i, item in enumerate(value)]
    return value


def render_string(source: str, context: dict[str, Any], *, field: str) -> Any:
    if "{" not in source:
        return source
    try:
        single = _SINGLE_EXPRESSION.match(source)
        if single and "{{" not in single.group("expr") and "}}" not in single.group("expr"):
            result = _compiled_expression(single.group("expr").strip())(**context)
            if isinstance(result, StrictUndefined):
                str(result)  # raises UndefinedError with Jinja's own message
            return result
        rendered = _compiled_template(source).render(**context)
    except Exception as exc:
        raise TemplateError(f"{field}: {_describe(exc)}", details={"field": field}) from exc
    if len(rendered) > MAX_RENDERED_CHARS:
        raise TemplateError(
            f"{field}: rendered text is larger than {MAX_RENDERED_CHARS} characters", details={"field": field}
        )
    return rendered


def evaluate_condition(expression: str, context: dict[str, Any], *, field: str) -> bool:
    try:
        result = _compiled_expression(_strip_braces(expression).strip())(**context)
        if isinstance(result, StrictUndefined):
            str(result)
        return bool(result)
    except Exception as exc:
        raise TemplateError(f"{field}: {_describe(exc)}", details={"field": field}) from exc
