"""Chart geometry computed on the server: the dashboard only creates SVG elements from these numbers
(setAttribute on createElementNS nodes; no chart library, no HTML strings, nothing evaluated).

Every shape is in a fixed viewBox (WIDTH x HEIGHT); series are told apart by a class (`s0`..`s9`), so the
colours live in the stylesheet and the strict CSP needs no inline style.
"""

from __future__ import annotations

import math
from typing import Any

WIDTH, HEIGHT = 640.0, 320.0
LEFT, RIGHT, TOP, BOTTOM = 56.0, 12.0, 12.0, 36.0
TICKS = 5
MAX_X_TICKS = 10


def _nice_range(low: float, high: float) -> tuple[float, float]:
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def _fmt(value: float) -> str:
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    return f"{value:.3g}"


def _scale(low: float, high: float, start: float, end: float) -> Any:
    span = high - low

    def at(value: float) -> float:
        return round(start + (value - low) / span * (end - start), 2)

    return at


def _y_axis(low: float, high: float, y_of: Any) -> list[dict[str, Any]]:
    return [
        {"y": y_of(low + (high - low) * i / (TICKS - 1)), "label": _fmt(low + (high - low) * i / (TICKS - 1))}
        for i in range(TICKS)
    ]


def _x_ticks(labels: list[str], x_of: Any, count: int) -> list[dict[str, Any]]:
    if count == 0:
        return []
    step = max(1, math.ceil(count / MAX_X_TICKS))
    return [{"x": x_of(i), "label": labels[i] if i < len(labels) else str(i + 1)} for i in range(0, count, step)]


def geometry(chart: dict[str, Any]) -> dict[str, Any]:
    kind = chart["chart_type"]
    series = chart["series"]
    base = {
        "width": WIDTH,
        "height": HEIGHT,
        "chart_type": kind,
        "x_label": chart.get("x_label", ""),
        "y_label": chart.get("y_label", ""),
        "legend": [s.get("name") or f"Series {i + 1}" for i, s in enumerate(series)],
    }
    if kind == "pie":
        return {**base, **_pie(chart.get("labels") or [], series[0]["values"])}
    plot_left, plot_right, plot_top, plot_bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    values = [v for s in series for v in s["values"]]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if kind == "bar":
        low, high = min(low, 0.0), max(high, 0.0)
    low, high = _nice_range(low, high)
    y_of = _scale(low, high, plot_bottom, plot_top)
    axes = {"y_ticks": _y_axis(low, high, y_of), "plot": [plot_left, plot_top, plot_right, plot_bottom]}
    if kind == "scatter":
        xs = [x for s in series for x in s["x"]]
        x_low, x_high = _nice_range(min(xs), max(xs)) if xs else (0.0, 1.0)
        x_of = _scale(x_low, x_high, plot_left, plot_right)
        points = [
            [coord for x, y in zip(s["x"], s["values"], strict=True) for coord in (x_of(x), y_of(y))] for s in series
        ]
        ticks = [
            {
                "x": x_of(x_low + (x_high - x_low) * i / (TICKS - 1)),
                "label": _fmt(x_low + (x_high - x_low) * i / (TICKS - 1)),
            }
            for i in range(TICKS)
        ]
        return {**base, **axes, "x_ticks": ticks, "points": points}
    count = max((len(s["values"]) for s in series), default=0)
    labels = chart.get("labels") or []
    if kind == "line":
        x_of = _scale(0, max(count - 1, 1), plot_left, plot_right)
        lines = [" ".join(f"{x_of(i)},{y_of(v)}" for i, v in enumerate(s["values"])) for s in series]
        return {**base, **axes, "x_ticks": _x_ticks(labels, x_of, count), "lines": lines}
    slot = (plot_right - plot_left) / max(count, 1)
    width = slot * 0.8 / len(series)
    zero = y_of(0.0)
    bars = []
    for index, s in enumerate(series):
        row = []
        for i, v in enumerate(s["values"]):
            y = y_of(v)
            row.append(
                [
                    round(plot_left + slot * i + slot * 0.1 + width * index, 2),
                    min(y, zero),
                    round(width, 2),
                    round(abs(zero - y), 2),
                ]
            )
        bars.append(row)

    def centre(i: int) -> float:
        return round(plot_left + slot * (i + 0.5), 2)

    return {**base, **axes, "x_ticks": _x_ticks(labels, centre, count), "bars": bars}


def _pie(labels: list[str], values: list[float]) -> dict[str, Any]:
    total = math.fsum(values)
    cx, cy, r = WIDTH / 2, HEIGHT / 2, HEIGHT / 2 - 16
    slices = []
    angle = -math.pi / 2
    for i, value in enumerate(values):
        share = value / total if total > 0 else 0.0
        label = labels[i] if i < len(labels) else f"Slice {i + 1}"
        if share <= 0:
            continue
        if share >= 0.999999:
            slices.append({"circle": [cx, cy, r], "label": label, "share": round(share, 4), "index": i})
            continue
        end = angle + share * 2 * math.pi
        x1, y1 = cx + r * math.cos(angle), cy + r * math.sin(angle)
        x2, y2 = cx + r * math.cos(end), cy + r * math.sin(end)
        large = 1 if share > 0.5 else 0
        path = f"M{cx:.2f},{cy:.2f} L{x1:.2f},{y1:.2f} A{r:.2f},{r:.2f} 0 {large} 1 {x2:.2f},{y2:.2f} Z"
        slices.append({"path": path, "label": label, "share": round(share, 4), "index": i})
        angle = end
    return {"slices": slices, "legend": [s["label"] for s in slices]}
