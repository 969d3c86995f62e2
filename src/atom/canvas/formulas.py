"""Sheet formulas: the tokenizer and the recursive-descent parser of the subset documented in
`atom.canvas.sheets` (never eval). A parsed formula is a tree of tuples; `parse` also returns every cell
it refers to, so the sheet can refuse cycles and deep chains before evaluating anything."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from atom.errors import InvalidInput

MAX_ROWS = 200
MAX_COLUMNS = 26
MAX_FORMULA = 500
MAX_NESTING = 30


@dataclass(frozen=True, order=True)
class Ref:
    row: int  # 0-based
    col: int

    @property
    def name(self) -> str:
        return f"{chr(ord('A') + self.col)}{self.row + 1}"


def column_name(index: int) -> str:
    return chr(ord("A") + index)


_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<cell>[A-Za-z]\d{1,3})(?![A-Za-z0-9(])"
    r"|(?P<name>[A-Za-z]+)|(?P<op><=|>=|<>|[-+*/^(),:<>=]))"
)


def _tokens(text: str, where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise bad(where, f"cannot read the formula at character {position + 1}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def bad(where: str, message: str, **details: Any) -> InvalidInput:
    return InvalidInput(
        f"Sheet cell {where}: {message}.",
        code="INVALID_SHEET_FORMULA",
        details={"field": f"content.rows.{where}", "cell": where, **details},
    )


# A parsed formula is a tree of tuples: ("num", v) ("ref", Ref) ("range", Ref, Ref) ("neg", x)
# ("bin", op, a, b) ("call", NAME, [args]).
Node = tuple[Any, ...]
FUNCTIONS = frozenset({"SUM", "AVERAGE", "MIN", "MAX", "COUNT", "ABS", "ROUND", "IF"})


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], where: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.where = where
        self.refs: set[Ref] = set()

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise bad(self.where, "the formula ends too early")
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, value: str) -> None:
        _kind, got = self.take()
        if got != value:
            raise bad(self.where, f"expected {value!r}, found {got!r}")

    def parse(self) -> Node:
        node = self.comparison(0)
        if self.i != len(self.tokens):
            raise bad(self.where, f"unexpected {self.tokens[self.i][1]!r}")
        return node

    def _deeper(self, depth: int) -> int:
        if depth > MAX_NESTING:
            raise bad(self.where, f"the formula is nested too deeply (limit {MAX_NESTING})", limit=MAX_NESTING)
        return depth + 1

    def comparison(self, depth: int) -> Node:
        depth = self._deeper(depth)
        left = self.sum(depth)
        if self.peek() in ("=", "<>", "<", "<=", ">", ">="):
            op = self.take()[1]
            return ("bin", op, left, self.sum(depth))
        return left

    def sum(self, depth: int) -> Node:
        node = self.product(depth)
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            node = ("bin", op, node, self.product(depth))
        return node

    def product(self, depth: int) -> Node:
        node = self.power(depth)
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            node = ("bin", op, node, self.power(depth))
        return node

    def power(self, depth: int) -> Node:
        base = self.unary(depth)
        if self.peek() == "^":
            self.take()
            return ("bin", "^", base, self.power(self._deeper(depth)))
        return base

    def unary(self, depth: int) -> Node:
        if self.peek() in ("-", "+"):
            op = self.take()[1]
            operand = self.unary(self._deeper(depth))
            return ("neg", operand) if op == "-" else operand
        return self.atom(depth)

    def cell(self, text: str) -> Ref:
        col = ord(text[0].upper()) - ord("A")
        row = int(text[1:]) - 1
        if not (0 <= row < MAX_ROWS and 0 <= col < MAX_COLUMNS):
            raise bad(self.where, f"{text.upper()} is outside the sheet (A1 to Z{MAX_ROWS})")
        return Ref(row, col)

    def atom(self, depth: int) -> Node:
        kind, value = self.take()
        if kind == "number":
            return ("num", float(value))
        if kind == "cell":
            ref = self.cell(value)
            self.refs.add(ref)
            return ("ref", ref)
        if kind == "name":
            name = value.upper()
            if name not in FUNCTIONS:
                raise bad(self.where, f"unknown function {value!r} (known: {', '.join(sorted(FUNCTIONS))})")
            self.expect("(")
            args: list[Node] = []
            if self.peek() != ")":
                args.append(self.argument(depth))
                while self.peek() == ",":
                    self.take()
                    args.append(self.argument(depth))
            self.expect(")")
            return ("call", name, args)
        if value == "(":
            node = self.comparison(depth)
            self.expect(")")
            return node
        raise bad(self.where, f"unexpected {value!r}")

    def argument(self, depth: int) -> Node:
        if self.i + 2 < len(self.tokens) and self.tokens[self.i][0] == "cell" and self.tokens[self.i + 1][1] == ":":
            first = self.cell(self.take()[1])
            self.take()
            kind, value = self.take()
            if kind != "cell":
                raise bad(self.where, f"a range needs a cell after ':', found {value!r}")
            last = self.cell(value)
            top, bottom = sorted((first.row, last.row))
            left, right = sorted((first.col, last.col))
            for row in range(top, bottom + 1):
                for col in range(left, right + 1):
                    self.refs.add(Ref(row, col))
            return ("range", Ref(top, left), Ref(bottom, right))
        return self.comparison(self._deeper(depth))


def parse(text: str, where: str) -> tuple[Node, set[Ref]]:
    if len(text) > MAX_FORMULA:
        raise bad(where, f"the formula is longer than {MAX_FORMULA} characters", limit=MAX_FORMULA)
    parser = _Parser(_tokens(text[1:], where), where)
    if not parser.tokens:
        raise bad(where, "the formula is empty")
    return parser.parse(), parser.refs
