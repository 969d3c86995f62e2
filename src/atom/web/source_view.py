"""A skill's files as numbered lines with the scanner's flagged lines marked (the skills page).

Lines are numbered the way the scanner numbered them: SKILL.md after the parser's clean-up (byte-order
mark dropped, CRLF and CR made LF), bundled files split on LF. Every finding that names a shown line gets
an anchor on it (`finding-N`, N counted from 1 in the findings table). Long files show only the lines
around their findings; the page as a whole renders at most MAX_PAGE_LINES lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SKILL_MD = "SKILL.md"
FULL_FILE_LINES = 1500  # a file up to this long is shown whole
CONTEXT = 4  # lines shown before and after a flagged line in a longer file
MAX_PAGE_LINES = 20_000
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


@dataclass
class Line:
    number: int
    text: str
    findings: list[int] = field(default_factory=list)  # finding numbers (1-based)
    severity: str = ""  # the worst severity flagged on this line

    @property
    def flagged(self) -> bool:
        return bool(self.findings)


@dataclass
class SourceFile:
    path: str
    anchor: str
    total_lines: int
    blocks: list[list[Line]]  # runs of consecutive lines; a gap between blocks is elided
    flagged: int
    complete: bool  # every line is shown
    shown: bool  # any line is shown (False: over the page budget, listed only)


@dataclass(frozen=True)
class FindingView:
    number: int
    rule: str
    severity: str
    file: str
    line: int | None
    excerpt: str
    message: str
    target: str | None  # "#finding-N" when its line is shown on the page


def skill_md_lines(text: str) -> list[str]:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return _split(text)


def file_lines(text: str) -> list[str]:
    return [line.removesuffix("\r") for line in _split(text)]


def _split(text: str) -> list[str]:
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def anchor_for(path: str, index: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-").lower() or "file"
    return f"src{index}-{slug[:60]}"


def _worst(severities: list[str]) -> str:
    return min(severities, key=lambda s: SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else len(SEVERITY_ORDER))


def _blocks(lines: list[Line], flagged: set[int], *, whole: bool) -> list[list[Line]]:
    if whole:
        return [lines] if lines else []
    keep = sorted({n for f in flagged for n in range(f - CONTEXT, f + CONTEXT + 1) if 1 <= n <= len(lines)})
    blocks: list[list[Line]] = []
    for n in keep:
        if blocks and blocks[-1][-1].number == n - 1:
            blocks[-1].append(lines[n - 1])
        else:
            blocks.append([lines[n - 1]])
    return blocks


def build(
    skill_md: str, files: dict[str, str], findings: list[dict[str, Any]]
) -> tuple[list[SourceFile], list[FindingView]]:
    """The files to show (SKILL.md first, then bundled files by path) and the findings linked to their lines."""
    texts = {SKILL_MD: skill_md_lines(skill_md), **{p: file_lines(t) for p, t in sorted(files.items())}}
    by_line: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for number, finding in enumerate(findings, start=1):
        path, line = str(finding.get("file", "")), finding.get("line")
        if isinstance(line, int) and path in texts and 1 <= line <= len(texts[path]):
            by_line.setdefault((path, line), []).append((number, str(finding.get("severity", ""))))
    budget = MAX_PAGE_LINES
    shown_lines: set[tuple[str, int]] = set()
    sources = []
    ordered = sorted(texts, key=lambda p: (p != SKILL_MD, not any(k[0] == p for k in by_line), p))
    for index, path in enumerate(ordered):
        raw = texts[path]
        lines = [Line(n, text) for n, text in enumerate(raw, start=1)]
        flagged = {n for (p, n) in by_line if p == path}
        for n in flagged:
            marks = by_line[(path, n)]
            lines[n - 1].findings = [m for m, _ in marks]
            lines[n - 1].severity = _worst([s for _, s in marks])
        whole = len(lines) <= FULL_FILE_LINES and len(lines) <= budget
        blocks = _blocks(lines, flagged, whole=whole)
        if not whole and not flagged and budget > 0:  # a long unflagged file: its beginning
            blocks = [lines[: min(FULL_FILE_LINES, budget)]]
        count = sum(len(b) for b in blocks)
        if count > budget and not flagged:
            blocks, count = [], 0
        budget -= count
        shown_lines.update((path, line.number) for block in blocks for line in block)
        sources.append(
            SourceFile(
                path=path,
                anchor=anchor_for(path, index),
                total_lines=len(lines),
                blocks=blocks,
                flagged=len(flagged),
                complete=count == len(lines),
                shown=count > 0,
            )
        )
    views = []
    for number, finding in enumerate(findings, start=1):
        path, line = str(finding.get("file", "")), finding.get("line")
        target = f"#finding-{number}" if isinstance(line, int) and (path, line) in shown_lines else None
        views.append(
            FindingView(
                number=number,
                rule=str(finding.get("rule", "")),
                severity=str(finding.get("severity", "")),
                file=path,
                line=line if isinstance(line, int) else None,
                excerpt=str(finding.get("excerpt", "")),
                message=str(finding.get("message", "")),
                target=target,
            )
        )
    return sources, views
