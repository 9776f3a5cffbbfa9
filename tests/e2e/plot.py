"""A line chart as SVG, for figures the tests measure (no plotting library needed)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[float, float]]  # (seconds from the start, value)
    dashed: bool = False


@dataclass(frozen=True)
class Mark:
    """A vertical line at a moment, with its label (an event during the run)."""
    at: float
    label: str


def line_chart(title: str, y_label: str, series: list[Series], marks: list[Mark],
               width: int = 820, height: int = 360) -> str:
    left, right, top, bottom = 60, 190, 40, 45
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for s in series for x, _ in s.points] + [m.at for m in marks] + [0.0]
    ys = [y for s in series for _, y in s.points] + [1.0]
    x_max, y_max = max(xs), _nice(max(ys))

    def px(x: float) -> float:
        return left + plot_w * x / x_max

    def py(y: float) -> float:
        return top + plot_h * (1 - y / y_max)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>']
    for i in range(5):  # horizontal grid and the y axis' figures
        y = y_max * i / 4
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    step = _nice(x_max / 8)
    tick = 0.0
    while tick <= x_max:
        out.append(f'<text x="{px(tick):.1f}" y="{top + plot_h + 16}" '
                   f'text-anchor="middle">{tick:g}</text>')
        tick += step
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">'
               'seconds</text>')
    out.append(f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + plot_h / 2})">{escape(y_label)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
               'stroke="#888"/>')
    for mark in marks:
        out.append(f'<line x1="{px(mark.at):.1f}" x2="{px(mark.at):.1f}" y1="{top}" '
                   f'y2="{top + plot_h}" stroke="#999" stroke-dasharray="2,3"/>')
        out.append(f'<text x="{px(mark.at) + 3:.1f}" y="{top + 12}" fill="#555" '
                   f'font-size="11">{escape(mark.label)}</text>')
    for n, line in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        dash = ' stroke-dasharray="6,3"' if line.dashed else ""
        for run in _runs(line.points):
            points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                       f'stroke-width="2"{dash}/>')
        ly = top + 14 + 20 * n
        out.append(f'<line x1="{width - right + 12}" x2="{width - right + 36}" y1="{ly}" '
                   f'y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{width - right + 42}" y="{ly + 4}">{escape(line.label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _runs(points: list[tuple[float, float]], gap: float = 2.5) -> list[list[tuple[float, float]]]:
    """The points in unbroken runs: no line is drawn across a gap with no samples (an
    instance that was down)."""
    runs: list[list[tuple[float, float]]] = []
    for point in sorted(points):
        if runs and point[0] - runs[-1][-1][0] <= gap:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above the value."""
    power = 1.0
    while power * 10 < value:
        power *= 10
    while power > value and power > 1e-9:
        power /= 10
    for factor in (1, 2, 2.5, 5, 10):
        if power * factor >= value:
            return power * factor
    return power * 10
