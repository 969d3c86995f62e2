"""A workflow's steps laid out as a graph from `needs:` (for a server-side SVG; no layout library).

Each step's column is the length of the longest `needs` chain above it; rows keep definition order
inside a column. A failure handler (`on_failure: <step>`) is drawn as a dashed edge. The template
draws the boxes and the edges; every label is autoescaped there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BOX_W = 150
BOX_H = 40
GAP_X = 60
GAP_Y = 20
PAD = 10
LABEL_CHARS = 20


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    kind: str
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    path: str
    handler: bool = False


@dataclass
class Layout:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0
    box_w: int = BOX_W
    box_h: int = BOX_H


def _depths(steps: list[dict[str, Any]]) -> dict[str, int]:
    needs = {str(s["id"]): [str(n) for n in s.get("needs") or []] for s in steps}
    depth: dict[str, int] = {}

    def visit(key: str, trail: frozenset[str]) -> int:
        if key in depth:
            return depth[key]
        if key in trail:  # a stored definition has no cycle; never loop on a bad one
            return 0
        above = [visit(n, trail | {key}) + 1 for n in needs.get(key, []) if n in needs]
        depth[key] = max(above, default=0)
        return depth[key]

    for key in needs:
        visit(key, frozenset())
    return depth


def _curve(x1: int, y1: int, x2: int, y2: int) -> str:
    mid = (x1 + x2) // 2
    return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"


def layout(definition: dict[str, Any]) -> Layout:
    steps = [s for s in definition.get("steps") or [] if isinstance(s, dict) and "id" in s]
    depth = _depths(steps)
    rows: dict[int, int] = {}
    nodes: dict[str, Node] = {}
    for step in steps:
        key = str(step["id"])
        column = depth.get(key, 0)
        row = rows.get(column, 0)
        rows[column] = row + 1
        kind = str(step.get("type") or "action")
        detail = str(step.get("action") or kind)
        label = f"{key} · {detail}"
        if len(label) > LABEL_CHARS:
            label = label[: LABEL_CHARS - 1] + "…"
        nodes[key] = Node(key, label, kind, PAD + column * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    edges = []
    for step in steps:
        target = nodes[str(step["id"])]
        for need in step.get("needs") or []:
            source = nodes.get(str(need))
            if source is not None:
                edges.append(Edge(_curve(source.x + BOX_W, source.y + BOX_H // 2, target.x, target.y + BOX_H // 2)))
        handler = nodes.get(str(step.get("on_failure") or ""))
        if handler is not None:
            edges.append(Edge(_curve(target.x + BOX_W // 2, target.y + BOX_H, handler.x + BOX_W // 2, handler.y), True))
    columns = max(depth.values(), default=0) + 1
    tallest = max(rows.values(), default=1)
    return Layout(
        nodes=list(nodes.values()),
        edges=edges,
        width=2 * PAD + columns * BOX_W + (columns - 1) * GAP_X,
        height=2 * PAD + tallest * BOX_H + (tallest - 1) * GAP_Y,
    )
