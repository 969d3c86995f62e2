"""Sheet formulas: a small, documented subset of spreadsheet formulas, parsed here and never eval'd.

A cell whose text starts with `=` is a formula. Grammar (docs/canvas.md):

    formula    = "=" comparison
    comparison = sum [("=" | "<>" | "<" | "<=" | ">" | ">=") sum]
    sum        = product {("+" | "-") product}
    product    = power {("*" | "/") power}
    power      = unary ["^" power]
    unary      = ["-" | "+"] unary | atom
    atom       = number | cell | function "(" [argument {"," argument}] ")" | "(" comparison ")"
    argument   = range | comparison          range = cell ":" cell          cell = A1 .. Z200

Functions: SUM, AVERAGE, MIN, MAX, COUNT (over ranges and values), ABS, ROUND(x, digits), IF(test, a, b).
An empty cell counts as 0; text in arithmetic gives #VALUE!, division by zero #DIV/0!, a result out of
range #NUM!. Refused as bad input (InvalidInput naming the cell): a syntax error, a reference outside the
sheet, a formula that refers to itself (directly or through other cells), a chain of references deeper
than MAX_CHAIN, nesting deeper than MAX_NESTING.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from atom.canvas.formulas import MAX_COLUMNS, MAX_FORMULA, MAX_NESTING, MAX_ROWS, Node, Ref, bad, parse
from atom.errors import InvalidInput

__all__ = ["MAX_COLUMNS", "MAX_FORMULA", "MAX_NESTING", "MAX_ROWS", "Sheet", "SheetError", "format_number"]

MAX_CHAIN = 64

Cell = str | float | int | bool | None
Value = float | str  # a number, or an error/text string


class SheetError(Exception):
    """A spreadsheet error value (#DIV/0!, #VALUE!, #NUM!): shown in the cell, not a bad request."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _number(value: Value) -> float:
    if isinstance(value, str):
        raise SheetError(value if value.startswith("#") else "#VALUE!")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise SheetError("#NUM!")
    return value


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class Sheet:
    """A grid of raw cells evaluated once: `values()` gives every cell's shown value."""

    def __init__(self, rows: list[list[Cell]]) -> None:
        if len(rows) > MAX_ROWS or any(len(r) > MAX_COLUMNS for r in rows):
            raise InvalidInput(
                f"A sheet has at most {MAX_ROWS} rows of {MAX_COLUMNS} columns.",
                code="SHEET_TOO_LARGE",
                details={"field": "content.rows", "max_rows": MAX_ROWS, "max_columns": MAX_COLUMNS},
            )
        self.rows = rows
        self.formulas: dict[Ref, Node] = {}
        self.depends: dict[Ref, set[Ref]] = {}
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                if isinstance(cell, str) and cell.startswith("="):
                    ref = Ref(r, c)
                    node, refs = parse(cell, ref.name)
                    self.formulas[ref] = node
                    self.depends[ref] = refs
        self._check_references()
        self._cache: dict[Ref, Value] = {}

    def _check_references(self) -> None:
        """Refuse cycles (a formula that refers to itself, directly or not) and chains deeper than MAX_CHAIN."""
        height: dict[Ref, int] = {}
        for start in self.formulas:
            if start in height:
                continue
            # Iterative depth-first walk: (cell, iterator over its formula dependencies).
            path: list[Ref] = [start]
            on_path = {start}
            stack = [iter(sorted(d for d in self.depends[start] if d in self.formulas))]
            while stack:
                here = path[-1]
                child = next(stack[-1], None)
                if child is None:
                    height[here] = 1 + max((height[d] for d in self.depends[here] if d in self.formulas), default=0)
                    if height[here] > MAX_CHAIN:
                        raise bad(
                            here.name,
                            f"the chain of references is deeper than {MAX_CHAIN} formulas",
                            limit=MAX_CHAIN,
                        )
                    stack.pop()
                    on_path.discard(path.pop())
                    continue
                if child in on_path:
                    cycle = [*path[path.index(child) :], child]
                    message = (
                        "the formula refers to itself"
                        if len(cycle) == 2
                        else "the formula refers to itself through " + " -> ".join(r.name for r in cycle)
                    )
                    raise bad(child.name, message, cycle=[r.name for r in cycle])
                if child in height:
                    continue
                if len(path) >= MAX_CHAIN:
                    raise bad(
                        child.name, f"the chain of references is deeper than {MAX_CHAIN} formulas", limit=MAX_CHAIN
                    )
                path.append(child)
                on_path.add(child)
                stack.append(iter(sorted(d for d in self.depends[child] if d in self.formulas)))

    def raw(self, ref: Ref) -> Cell:
        if ref.row < len(self.rows) and ref.col < len(self.rows[ref.row]):
            return self.rows[ref.row][ref.col]
        return None

    def value(self, ref: Ref) -> Value:
        if ref in self._cache:
            return self._cache[ref]
        node = self.formulas.get(ref)
        if node is None:
            cell = self.raw(ref)
            result: Value
            if cell is None or cell == "":
                result = 0.0
            elif isinstance(cell, bool):
                result = 1.0 if cell else 0.0
            elif isinstance(cell, int | float):
                result = float(cell)
            else:
                result = cell
        else:
            try:
                result = self._eval(node)
            except SheetError as error:
                result = error.code
        self._cache[ref] = result
        return result

    def _range(self, first: Ref, last: Ref) -> list[Value]:
        values = []
        for row in range(first.row, last.row + 1):
            for col in range(first.col, last.col + 1):
                ref = Ref(row, col)
                cell = self.raw(ref)
                if ref in self.formulas or (cell is not None and cell != ""):
                    values.append(self.value(ref))
        return values

    def _eval(self, node: Node) -> float:
        kind = node[0]
        if kind == "num":
            return float(node[1])
        if kind == "ref":
            return _number(self.value(node[1]))
        if kind == "neg":
            return -self._eval(node[1])
        if kind == "bin":
            op, a, b = node[1], self._eval(node[2]), self._eval(node[3])
            if op in _COMPARE:
                return 1.0 if _COMPARE[op](a, b) else 0.0
            if op == "/":
                if b == 0:
                    raise SheetError("#DIV/0!")
                return _finite(a / b)
            if op == "^":
                try:
                    return _finite(float(a**b)) if not (a < 0 and not float(b).is_integer()) else _nan()
                except (OverflowError, ZeroDivisionError):
                    raise SheetError("#NUM!") from None
            return _finite(_ARITHMETIC[op](a, b))
        return self._call(node[1], node[2])

    def _numbers(self, args: list[Node]) -> list[float]:
        out: list[float] = []
        for arg in args:
            if arg[0] == "range":
                for value in self._range(arg[1], arg[2]):
                    if isinstance(value, str) and value.startswith("#"):
                        raise SheetError(value)
                    if not isinstance(value, str):
                        out.append(value)
            else:
                out.append(self._eval(arg))
        return out

    def _call(self, name: str, args: list[Node]) -> float:
        if name == "IF":
            if len(args) != 3:
                raise SheetError("#VALUE!")
            return self._eval(args[1]) if self._eval(args[0]) != 0 else self._eval(args[2])
        if name in ("ABS", "ROUND"):
            if len(args) != (1 if name == "ABS" else 2) or any(a[0] == "range" for a in args):
                raise SheetError("#VALUE!")
            if name == "ABS":
                return abs(self._eval(args[0]))
            digits = self._eval(args[1])
            if not -15 <= digits <= 15:
                raise SheetError("#NUM!")
            return float(round(self._eval(args[0]), int(digits)))
        numbers = self._numbers(args)
        if name == "COUNT":
            return float(len(numbers))
        if name == "SUM":
            return _finite(math.fsum(numbers))
        if not numbers:
            raise SheetError("#DIV/0!" if name == "AVERAGE" else "#VALUE!")
        if name == "AVERAGE":
            return _finite(math.fsum(numbers) / len(numbers))
        return min(numbers) if name == "MIN" else max(numbers)

    def values(self) -> list[list[str]]:
        """Every cell as shown: numbers formatted (up to 10 significant digits), text as is."""
        shown: list[list[str]] = []
        for r, row in enumerate(self.rows):
            line = []
            for c, cell in enumerate(row):
                ref = Ref(r, c)
                if ref not in self.formulas and (cell is None or cell == ""):
                    line.append("")
                    continue
                value = self.value(ref)
                line.append(value if isinstance(value, str) else format_number(value))
            shown.append(line)
        return shown


def _nan() -> float:
    raise SheetError("#NUM!")


def format_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"
