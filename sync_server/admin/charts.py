"""Server-side SVG bar charts: a real plot with no JavaScript and nothing from a CDN.

The SVG scales with its container (``viewBox``), so the same markup fits an office monitor and
a phone. Values are integers (counts or minor units); labels are formatted by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup


def bar_chart(points: Sequence[tuple[str, int]], *, title: str,
              fmt: Callable[[int], str] = str, label_every: int = 1, anchor_end: bool = True,
              width: int = 520, height: int = 200, empty: str = "No sales yet") -> Markup:
    """With nothing to plot (every value 0) the axis has one line labelled ``0`` and the
    ``empty`` sentence in the middle: three gridlines all reading 0.00 said nothing."""
    left, right, top, bottom = 60, 8, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for _, v in points] + [0])
    scale_max = _nice(peak)
    n = max(len(points), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.72, 1.0)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for frac in (0.0, 0.5, 1.0) if scale_max else (0.0,):
        y = top + plot_h - frac * plot_h
        parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y:.1f}" '
                     f'y2="{y:.1f}" stroke-dasharray="{"0" if frac == 0 else "3 3"}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(fmt(int(scale_max * frac)) if scale_max else "0")}</text>')
    if not scale_max:
        parts.append(f'<text class="empty" x="{left + plot_w / 2:.1f}" '
                     f'y="{top + plot_h / 2:.1f}" text-anchor="middle">{escape(empty)}</text>')
    for i, (label, value) in enumerate(points):
        h = 0.0 if scale_max == 0 else value / scale_max * plot_h
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                     f'height="{h:.1f}"><title>{escape(label)}: {escape(fmt(value))}</title>'
                     f'</rect>')
        # Days are labelled from the end (today always has a label), hours from midnight.
        if ((n - 1 - i) if anchor_end else i) % label_every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 8}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _nice(value: int) -> int:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 0
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude
