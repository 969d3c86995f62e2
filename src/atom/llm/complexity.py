"""Deterministic complexity tiers for a chat request (used when no model is named).

The last user message is scored; each signal adds points:

- length in words: up to 30 -> 0, up to 120 -> 1, up to 400 -> 2, more -> 3;
- code: one fenced block (```) or more than 3 indented/code-like lines -> 1; two or more fenced
  blocks, or more than 40 lines inside fences -> 2;
- vocabulary: distinct words from `ADVANCED_TERMS` present: 1-2 -> 1, 3-4 -> 2, 5 or more -> 3.

Score 0 -> simple, 1-2 -> moderate, 3-4 -> complex, 5 or more -> advanced. No randomness, no model
call: the same text always lands in the same tier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from atom.llm.providers.base import Message


class Tier(StrEnum):
    SIMPLE = "simple"
    MODERATE = "moderate"
    COMPLEX = "complex"
    ADVANCED = "advanced"


ADVANCED_TERMS = frozenset(
    {
        "algorithm",
        "architecture",
        "asynchronous",
        "benchmark",
        "compliance",
        "concurrency",
        "distributed",
        "derive",
        "optimize",
        "optimise",
        "performance",
        "proof",
        "prove",
        "refactor",
        "migration",
        "regression",
        "scalability",
        "security",
        "threat",
        "tradeoff",
        "trade-off",
        "transaction",
        "vulnerability",
        "statistical",
        "forecast",
        "reconcile",
        "analyze",
        "analyse",
        "design",
        "debug",
    }
)

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_WORD = re.compile(r"[a-z][a-z\-]*")
_CODE_LINE = re.compile(r"^(?: {4}|\t)\S|[;{}]\s*$|^\s*(?:def|class|import|return|function|SELECT|for|if)\b")


def _length_points(words: int) -> int:
    if words <= 30:
        return 0
    if words <= 120:
        return 1
    if words <= 400:
        return 2
    return 3


def _code_points(text: str) -> int:
    fences = _FENCE.findall(text)
    fenced_lines = sum(block.count("\n") for block in fences)
    if len(fences) >= 2 or fenced_lines > 40:
        return 2
    if fences:
        return 1
    code_lines = sum(1 for line in text.splitlines() if _CODE_LINE.search(line))
    return 1 if code_lines > 3 else 0


def _vocabulary_points(text: str) -> int:
    hits = len(ADVANCED_TERMS.intersection(_WORD.findall(text.lower())))
    if hits == 0:
        return 0
    if hits <= 2:
        return 1
    if hits <= 4:
        return 2
    return 3


def score(text: str) -> int:
    return _length_points(len(text.split())) + _code_points(text) + _vocabulary_points(text)


def classify_text(text: str) -> Tier:
    points = score(text)
    if points == 0:
        return Tier.SIMPLE
    if points <= 2:
        return Tier.MODERATE
    if points <= 4:
        return Tier.COMPLEX
    return Tier.ADVANCED


def classify(messages: Sequence[Message]) -> Tier:
    """The tier of the last user message (simple when there is none)."""
    for message in reversed(messages):
        if message.role == "user":
            return classify_text(message.content)
    return Tier.SIMPLE
