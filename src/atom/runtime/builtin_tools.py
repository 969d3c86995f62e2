"""Tools every agent has: the current time and a calculator (arithmetic only, parsed, never eval'd)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from atom.errors import InvalidInput
from atom.runtime.tools import Tool, ToolRegistry

MAX_EXPONENT = 1000
MAX_EXPRESSION = 500


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


def evaluate(expression: str) -> float | int:
    """Evaluate + - * / // % ** and parentheses over numbers; anything else is refused."""

    def visit(node: ast.AST) -> float | int:
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = visit(node.left), visit(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
                raise InvalidInput("Exponent too large.", code="CALCULATION_ERROR")
            result: float | int = _BINARY[type(node.op)](left, right)
            return result
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            value: float | int = _UNARY[type(node.op)](visit(node.operand))
            return value
        raise InvalidInput("Only numbers, + - * / // % ** and parentheses are allowed.", code="CALCULATION_ERROR")

    try:
        return visit(ast.parse(expression, mode="eval"))
    except SyntaxError as exc:
        raise InvalidInput(f"Not an arithmetic expression: {expression!r}.", code="CALCULATION_ERROR") from exc
    except ZeroDivisionError as exc:
        raise InvalidInput("Division by zero.", code="CALCULATION_ERROR") from exc


async def calculate(params: BaseModel) -> dict[str, Any]:
    assert isinstance(params, CalculatorParams)
    return {"expression": params.expression, "result": evaluate(params.expression)}


def register_builtin_tools(registry: ToolRegistry) -> None:
    registry.register(
        Tool("get_current_time", 1, "The current date and time in a timezone.", TimeParams, get_current_time)
    )
    registry.register(Tool("calculate", 1, "Evaluate an arithmetic expression.", CalculatorParams, calculate))
