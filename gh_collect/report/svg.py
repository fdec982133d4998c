"""Charts as inline SVG, drawn in Python: a report page needs no script and no network.

Two shapes cover the year: grouped bars (counts per month) and lines with points (medians
and p90s per month, with gaps where a month has no value). Every visible datum is an
element of class ``mark`` with a ``<title>`` (the browser's tooltip), and each chart states
in ``data-marks`` how many marks it drew, so a browser test can check that all of them have
a size on screen. A chart with nothing to draw says so in words instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 28, 26
Value = float | int | None


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label; ``None`` is a gap (no value that month)."""

    name: str
    values: Sequence[Value]


def bar_chart(chart_id: str, title: str, series: Sequence[Series], unit: str = "") -> str:
    """Grouped vertical bars, one group per month."""
    top = _nice_max([v for s in series for v in s.values if v is not None])
    slot = _plot_width() / len(MONTHS)
    bar = (slot - 8) / max(1, len(series))
    marks = []
    for index, one in enumerate(series):
        for month, value in enumerate(one.values):
            if not value:
                continue
            x = LEFT + month * slot + 4 + index * bar
            height = _y_span(value, top)
            tip = f"{one.name}, {MONTHS[month]}: {_fmt(value)}{unit}"
            marks.append(
                f'<rect class="mark s{index}" x="{x:.1f}" y="{TOP + _plot_height() - height:.1f}" '
                f'width="{bar - 1:.1f}" height="{height:.1f}"><title>{escape(tip)}</title></rect>'
            )
    return _frame(chart_id, title, series, top, unit, marks)


def line_chart(chart_id: str, title: str, series: Sequence[Series], unit: str = "") -> str:
    """Lines with a point per month that has a value; a month without one breaks the line."""
    top = _nice_max([v for s in series for v in s.values if v is not None])
    slot = _plot_width() / len(MONTHS)
    marks = []
    for index, one in enumerate(series):
        points = [
            (LEFT + (month + 0.5) * slot, TOP + _plot_height() - _y_span(value, top), month, value)
            for month, value in enumerate(one.values)
            if value is not None
        ]
        marks.append(_path(index, points))
        marks += [
            f'<circle class="mark s{index}" cx="{x:.1f}" cy="{y:.1f}" r="3.5">'
            f"<title>{escape(f'{one.name}, {MONTHS[m]}: {_fmt(v)}{unit}')}</title></circle>"
            for x, y, m, v in points
        ]
    return _frame(chart_id, title, series, top, unit, [m for m in marks if m])


def _path(index: int, points: Sequence[tuple[float, float, int, Value]]) -> str:
    """One path through the points; a month without a value starts a new stroke."""
    commands, previous = [], None
    for x, y, month, _value in points:
        joined = previous is not None and previous == month - 1
        commands.append(f"{'L' if joined else 'M'}{x:.1f},{y:.1f}")
        previous = month
    if len(points) < 2:
        return ""
    return f'<path class="line s{index}" d="{" ".join(commands)}"/>'


def _frame(
    chart_id: str, title: str, series: Sequence[Series], top: float, unit: str, marks: list[str]
) -> str:
    drawn = sum(1 for m in marks if 'class="mark' in m)
    body = _axes(top, unit) + _legend(series) + (marks or [_nothing()])
    return (
        f'<svg class="chart" id="chart-{escape(chart_id)}" data-marks="{drawn}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _axes(top: float, unit: str) -> list[str]:
    parts = []
    for tick in _ticks(top):
        y = TOP + _plot_height() - _y_span(tick, top)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">')
        parts.append(f"{escape(_fmt(tick))}{escape(unit)}</text>")
    slot = _plot_width() / len(MONTHS)
    for month, name in enumerate(MONTHS):
        x = LEFT + (month + 0.5) * slot
        parts.append(f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">')
        parts.append(f"{name}</text>")
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], LEFT
    for index, one in enumerate(series):
        parts.append(f'<rect class="swatch s{index}" x="{x}" y="8" width="10" height="10"/>')
        parts.append(f'<text class="legend" x="{x + 14}" y="17">{escape(one.name)}</text>')
        x += 24 + 7 * len(one.name)
    return parts


def _nothing() -> str:
    x, y = LEFT + _plot_width() / 2, TOP + _plot_height() / 2
    return (
        f'<text class="empty" x="{x:.0f}" y="{y:.0f}" text-anchor="middle">none in the year</text>'
    )


def _plot_width() -> float:
    return WIDTH - LEFT - RIGHT


def _plot_height() -> float:
    return HEIGHT - TOP - BOTTOM


def _y_span(value: float, top: float) -> float:
    return max(0.0, value) / top * _plot_height()


def _nice_max(values: Sequence[float]) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above the largest value (1 for none)."""
    largest = max([v for v in values if v > 0], default=1.0)
    power = 10 ** math.floor(math.log10(largest))
    return float(next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= largest))


def _ticks(top: float) -> list[float]:
    """Four or five equal steps, whichever gives round numbers (50: 10s, not 12.5s)."""
    steps = 4 if (top / 4).is_integer() or top < 4 else 5
    return [top * k / steps for k in range(steps + 1)]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"
