"""The calculator: arithmetic only, and every input bounded so no call can hold the event loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from atom.errors import InvalidInput
from atom.runtime import tools as runtime_tools
from atom.runtime.builtin_tools import MAX_DEPTH, MAX_RESULT_BITS, evaluate
from atom.runtime.context import ToolContext, current_tool_context
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("(2 + 3) * 4 / 5", 4.0), ("2 ** 10", 1024), ("-7 // 2", -4), ("10 ** 1000 % 7", 10**1000 % 7), ("2 ** -2", 0.25)],
)
def test_arithmetic_still_works(expression: str, expected: float | int) -> None:
    assert evaluate(expression) == expected


def test_large_but_bounded_results_are_computed() -> None:
    assert evaluate("10 ** 1000") == 10**1000
    assert evaluate("2 ** 4095") == 2**4095


# Each would take seconds to hours of CPU, or gigabytes, if computed.
SIZE_BOMBS = [
    "((10**1000)**1000)**10",
    "((10**1000)**1000)**100",
    "(10**1000)**1000",
    "9**9**9",
    "2**5000",
    "(2**4000)*(2**4000)",
    "(10**999)*(10**999)*(10**999)*(10**999)*(10**999)",
    "7**(10**10)",
    "(-3)**100000",
]


@pytest.mark.parametrize("expression", SIZE_BOMBS)
def test_size_bombs_are_refused_before_they_are_computed(expression: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        evaluate(expression)
    assert refused.value.code == "CALCULATION_ERROR"
    assert "too large" in refused.value.message and refused.value.details["limit_bits"] == MAX_RESULT_BITS


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("1<<10**9", "Only numbers"),
        ("2>>1", "Only numbers"),
        ("factorial(100000)", "Only numbers"),
        ("__import__('os')", "Only numbers"),
        ("'a' * 10**9", "Only numbers"),
        ("[1] * 10**9", "Only numbers"),
        ("9 if 1 else 2", "Only numbers"),
        ("-" * 300 + "1", "nested too deeply"),
        ("1.5e308 * 10", "out of range"),
        ("10.0 ** 400", "out of range"),
        ("(10**400) / 3", "out of range"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 / 0", "Division by zero"),
        ("1 +", "Not an arithmetic expression"),
    ],
)
def test_other_abuse_is_refused_with_a_clear_error(expression: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        evaluate(expression)
    assert refused.value.code == "CALCULATION_ERROR" and says in refused.value.message


def test_depth_limit_is_the_documented_one() -> None:
    assert evaluate("-" * (MAX_DEPTH - 2) + "1") in (1, -1)
    with pytest.raises(InvalidInput, match="nested too deeply"):
        evaluate("-" * (MAX_DEPTH + 1) + "1")


async def test_a_long_expression_is_refused_by_the_tool_schema(tmp_path: Path) -> None:
    tool = runtime_tools.current().get("calculate")
    assert tool is not None
    token = current_tool_context.set(
        ToolContext(settings=make_settings(tmp_path, None), agent_id="a", execution_id="e", depth=0)
    )
    try:
        with pytest.raises(InvalidInput):
            await tool.handler(tool.validate({"expression": "1+" * 400 + "1"}))
        assert await tool.handler(tool.validate({"expression": "6*7"})) == {"expression": "6*7", "result": 42}
    finally:
        current_tool_context.reset(token)
