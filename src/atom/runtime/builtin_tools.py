"""Tools every agent has: the current time and a calculator (arithmetic only, parsed, never eval'd)."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from atom import arithmetic
from atom.errors import InvalidInput
from atom.runtime import http_tool
from atom.runtime.context import current_tool_context
from atom.runtime.tools import Tool, ToolRegistry

MAX_EXPRESSION = 500
MAX_DEPTH = 100
# 10**1000 has 3,322 bits; the limit leaves room for that and keeps every step (and the decimal text) cheap.
MAX_RESULT_BITS = arithmetic.MAX_RESULT_BITS


class TimeParams(BaseModel):
    timezone: str = Field(default="UTC", max_length=64, description="IANA name, e.g. Europe/Paris.")


class CalculatorParams(BaseModel):
    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION, description="e.g. (2 + 3) * 4 / 5")


async def get_current_time(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, TimeParams)
    try:
        zone = ZoneInfo(params.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"Unknown timezone {params.timezone!r}.", code="UNKNOWN_TIMEZONE") from exc
    now = datetime.now(UTC).astimezone(zone)
    return {"iso": now.isoformat(), "timezone": params.timezone}


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _refuse(message: str, **details: Any) -> InvalidInput:
    return InvalidInput(message, code="CALCULATION_ERROR", details=details)


def _too_large(bits: int) -> InvalidInput:
    return _refuse(
        f"The result would be too large (about {bits} bits; the limit is {MAX_RESULT_BITS} bits).",
        limit_bits=MAX_RESULT_BITS,
    )


def _check_size(op: ast.operator, left: float | int, right: float | int) -> None:
    """Refuse, before computing it, an integer result larger than MAX_RESULT_BITS (floats overflow instead,
    which is refused where it is raised)."""
    symbol = "*" if isinstance(op, ast.Mult) else "**" if isinstance(op, ast.Pow) else ""
    bits = arithmetic.oversized_bits(symbol, left, right, MAX_RESULT_BITS)
    if bits is not None:
        raise _too_large(bits)


def evaluate(expression: str) -> float | int:
    """Evaluate + - * / // % ** and parentheses over numbers; anything else is refused.

    Every step is bounded: the expression's length (MAX_EXPRESSION), its nesting (MAX_DEPTH) and
    each intermediate integer's size (MAX_RESULT_BITS, checked before the operation runs), so no
    input costs more than a few milliseconds of CPU on the event loop.
    """

    def visit(node: ast.AST, depth: int) -> float | int:
        if depth > MAX_DEPTH:
            raise _refuse(f"The expression is nested too deeply (limit {MAX_DEPTH}).", limit_depth=MAX_DEPTH)
        if isinstance(node, ast.Expression):
            return visit(node.body, depth + 1)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            if isinstance(node.value, int) and node.value.bit_length() > MAX_RESULT_BITS:
                raise _too_large(node.value.bit_length())
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = visit(node.left, depth + 1), visit(node.right, depth + 1)
            _check_size(node.op, left, right)
            result: float | int = _BINARY[type(node.op)](left, right)
            return result
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            value: float | int = _UNARY[type(node.op)](visit(node.operand, depth + 1))
            return value
        raise _refuse("Only numbers, + - * / // % ** and parentheses are allowed.")

    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise _refuse(f"Not an arithmetic expression: {expression!r}.") from exc
    except (RecursionError, MemoryError) as exc:  # the parser's own nesting limits
        raise _refuse(f"The expression is nested too deeply (limit {MAX_DEPTH}).", limit_depth=MAX_DEPTH) from exc
    try:
        result = visit(tree, 0)
    except ZeroDivisionError as exc:
        raise _refuse("Division by zero.") from exc
    except OverflowError as exc:  # a float out of range, or an integer too large to divide as a float
        raise _refuse(f"The result is out of range ({exc}).") from exc
    if isinstance(result, complex):  # a negative number to a fractional power
        raise _refuse("The result is not a real number.")
    if isinstance(result, float) and not math.isfinite(result):
        raise _refuse("The result is out of range (not a finite number).")
    return result


async def calculate(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, CalculatorParams)
    return {"expression": params.expression, "result": evaluate(params.expression)}


class DelegateParams(BaseModel):
    agent: str = Field(min_length=1, max_length=100, description="The id or name of the agent to hand the task to.")
    task: str = Field(min_length=1, max_length=20_000, description="What that agent should do, self-contained.")


async def delegate_to_agent(params: BaseModel) -> dict[str, Any]:
    """Another agent runs the sub-task under its own governance; nesting is bounded by ATOM_DELEGATION_MAX_DEPTH."""
    assert isinstance(params, DelegateParams)
    context = current_tool_context.get()
    if context is None or context.delegate is None:
        raise InvalidInput("delegate_to_agent runs only inside an agent run.", code="DELEGATION_UNAVAILABLE")
    limit = context.settings.delegation_max_depth
    if context.depth + 1 > limit:
        raise InvalidInput(
            f"Delegation depth limit reached ({limit}); answer with what you have instead of delegating again.",
            code="DELEGATION_DEPTH_EXCEEDED",
            details={"depth": context.depth, "limit": limit},
        )
    return await context.delegate(params.agent, params.task)


def register_builtin_tools(registry: ToolRegistry) -> None:
    registry.register(
        Tool("get_current_time", 1, "The current date and time in a timezone.", TimeParams, get_current_time)
    )
    registry.register(Tool("calculate", 1, "Evaluate an arithmetic expression.", CalculatorParams, calculate))
    registry.register(
        Tool(
            "http_request",
            3,
            "Call an HTTP API (governed by method: GET/HEAD 1, POST/PUT/PATCH 3, DELETE 4).",
            http_tool.HttpToolParams,
            http_tool.http_request,
            governed_as=http_tool.governed_as,
            governed_names={f"http_{m.lower()}": c for m, c in http_tool.METHOD_COMPLEXITY.items()},
        )
    )
    registry.register(
        Tool(
            "delegate_to_agent",
            2,
            "Hand a sub-task to another agent, which runs it under its own governance and returns its answer.",
            DelegateParams,
            delegate_to_agent,
        )
    )
