"""Small bar charts drawn server-side as SVG (no chart library): bars scaled to the largest value."""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTH = 600
HEIGHT = 180
PAD_TOP = 12
PAD_BOTTOM = 28
PAD_LEFT = 8


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as written on the bar's title
    x: float
    y: float
    width: float
    height: float


@dataclass
class BarChart:
    bars: list[Bar] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - PAD_BOTTOM
    maximum: float = 0.0


def bar_chart(points: list[tuple[str, float]], *, unit: str = "") -> BarChart:
    chart = BarChart()
    if not points:
        return chart
    top = max(value for _, value in points)
    chart.maximum = top
    slot = (WIDTH - PAD_LEFT) / len(points)
    usable = HEIGHT - PAD_TOP - PAD_BOTTOM
    for i, (label, value) in enumerate(points):
        height = usable * (value / top) if top > 0 else 0.0
        chart.bars.append(
            Bar(
                label=label,
                value=value,
                shown=f"{unit}{value:.4f}" if unit else f"{value:g}",
                x=round(PAD_LEFT + i * slot + slot * 0.15, 2),
                y=round(chart.baseline - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
            )
        )
    return chart
