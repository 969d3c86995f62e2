"""Charts drawn on the server as SVG geometry (no chart library, no script): a line over time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Guide:
    y: float
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    points: str  # the polyline's "x,y x,y ..." in the viewBox
    dots: list[tuple[float, float]]
    guides: list[Guide]
    first: datetime | None
    last: datetime | None


PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44.0, 8.0, 8.0, 20.0


def line_chart(
    series: list[tuple[datetime, float]],
    *,
    width: int = 640,
    height: int = 220,
    low: float = 0.0,
    high: float = 1.0,
    guides: dict[str, float] | None = None,
) -> LineChart:
    """Time on x (first to last point, evenly by time), value on y between `low` and `high`."""
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM

    def y_of(value: float) -> float:
        clamped = min(max(value, low), high)
        return round(PAD_TOP + plot_h * (1 - (clamped - low) / (high - low)), 2)

    coords: list[tuple[float, float]] = []
    if series:
        start, end = series[0][0], series[-1][0]
        span = (end - start).total_seconds()
        for index, (when, value) in enumerate(series):
            fraction = (when - start).total_seconds() / span if span > 0 else index / max(len(series) - 1, 1)
            coords.append((round(PAD_LEFT + plot_w * fraction, 2), y_of(value)))
        if len(coords) == 1:
            coords.append((PAD_LEFT + plot_w, coords[0][1]))
    return LineChart(
        width=width,
        height=height,
        points=" ".join(f"{x},{y}" for x, y in coords),
        dots=coords[-1:] if coords else [],
        guides=[Guide(y=y_of(value), label=label) for label, value in (guides or {}).items()],
        first=series[0][0] if series else None,
        last=series[-1][0] if series else None,
    )
