"""Inline SVG charts rendered server-side: no JavaScript, no external resources.

Every mark carries ``data-label`` / ``data-value`` (the raw number) and a ``<title>`` tooltip, so a browser test
can compare what is drawn with the SQL it came from. Every text is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

Formatter = Callable[[Any], str]

_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _num(value: float | None) -> float:
    return float(value) if value is not None else 0.0


def _raw(value: float | None) -> str:
    return "" if value is None else str(value)


def compact(value: float) -> str:
    """An axis label: 1868.98 -> "1.9k", 2500000 -> "2.5M", 96 -> "96", 0.5 -> "0.5"."""
    magnitude = abs(value)
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= threshold:
            return f"{value / threshold:.1f}".rstrip("0").rstrip(".") + suffix
    return (
        f"{value:.1f}".rstrip("0").rstrip(".") if magnitude < 10 and value != int(value) else f"{value:.0f}"
    )


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _empty(chart_id: str, width: int, height: int, message: str = "No data yet") -> str:
    return (
        f'<svg class="chart" data-chart="{escape(chart_id)}" data-points="0" role="img" '
        f'aria-label="{escape(message)}" viewBox="0 0 {width} {height}" width="100%">'
        f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#888" {_FONT}>'
        f"{escape(message)}</text></svg>"
    )


@dataclass(frozen=True)
class Series:
    """One series of a grouped bar chart: its name (legend, ``data-series``), colour and a value per label."""

    name: str
    color: str
    values: Sequence[float | None]


def bar_chart(
    chart_id: str,
    points: Sequence[tuple[str, float | None]],
    *,
    fmt: Formatter,
    title: str,
    color: str = "#3b6fd8",
    width: int = 640,
    height: int = 220,
) -> str:
    """Vertical bars, one per point (e.g. a day); negative values hang below the zero line.

    ``fmt`` formats a bar's value in its tooltip; the axis uses compact numbers (the unit is in the title).
    """
    labels = [label for label, _ in points]
    series = [Series("", color, [value for _, value in points])]
    return grouped_bar_chart(chart_id, labels, series, fmt=fmt, title=title, width=width, height=height)


def grouped_bar_chart(
    chart_id: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Formatter,
    title: str,
    width: int = 640,
    height: int = 220,
) -> str:
    """Vertical bars per label (e.g. a day), side by side for each series, on one axis; negative values hang below
    the zero line. Named series get ``data-series`` on their bars and a legend; ``data-points`` counts the bars."""
    if not labels:
        return _empty(chart_id, width, height)
    named = [s for s in series if s.name]
    left, right, top, bottom = 48, 12, 12 + (18 if named else 0), 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [[_num(v) for v in s.values] for s in series]
    everything = [v for vs in values for v in vs]
    hi, lo = max(0.0, *everything), min(0.0, *everything)
    span = (hi - lo) or 1.0

    def y(v: float) -> float:
        return top + (hi - v) / span * plot_h

    step = plot_w / len(labels)
    bar_w = max(1.0, step * 0.8 / len(series))
    n_bars = len(labels) * len(series)
    parts = [
        f'<svg class="chart" data-chart="{escape(chart_id)}" data-points="{n_bars}" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {width} {height}" width="100%">'
    ]
    for tick in sorted({lo, (lo + hi) / 2, hi, 0.0}):
        ty = y(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#e3e6ec" />'
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#666" {_FONT}>{escape(compact(tick))}</text>'
        )
    parts.extend(_legend(named, left))
    label_every = max(1, round(len(labels) / 8))
    group_x0 = (step - bar_w * len(series)) / 2
    for i, label in enumerate(labels):
        for j, s in enumerate(series):
            raw, value = s.values[i], values[j][i]
            x = left + i * step + group_x0 + j * bar_w
            y0, y1 = sorted((y(0.0), y(value)))
            tag = f' data-series="{escape(s.name)}"' if s.name else ""
            name = f"{s.name} " if s.name else ""
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y0:.1f}" width="{bar_w:.1f}" height="{max(y1 - y0, 0.5):.1f}" '
                f'fill="{s.color}" data-label="{escape(label)}"{tag} data-value="{escape(_raw(raw))}">'
                f"<title>{escape(name)}{escape(label)}: {escape(fmt(raw))}</title></rect>"
            )
        if i % label_every == 0:
            centre = left + i * step + step / 2
            parts.append(
                f'<text x="{centre:.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="#666" '
                f"{_FONT}>{escape(_short(label, 12))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: Sequence[Series], left: int) -> list[str]:
    """A swatch and a name per series, in one row above the plot."""
    parts, x = [], float(left)
    for s in series:
        parts.append(
            f'<rect class="legend" x="{x:.1f}" y="2" width="10" height="10" fill="{s.color}" />'
            f'<text x="{x + 14:.1f}" y="11" fill="#333" {_FONT}>{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return parts


def hbar_chart(
    chart_id: str,
    rows: Sequence[tuple[str, float | None, str]],
    *,
    fmt: Formatter,
    title: str,
    color: str = "#3b6fd8",
    width: int = 640,
) -> str:
    """Horizontal bars: ``(label, value, note)`` per row; the note (e.g. a step rate) is printed after the value."""
    row_h, label_w, value_w = 26, 200, 150
    height = max(row_h * len(rows) + 8, 60)
    if not rows:
        return _empty(chart_id, width, 80)
    values = [_num(v) for _, v, _ in rows]
    hi = max(max(values), 0.0) or 1.0
    plot_w = width - label_w - value_w
    parts = [
        f'<svg class="chart" data-chart="{escape(chart_id)}" data-points="{len(rows)}" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {width} {height}" width="100%">'
    ]
    for i, ((label, raw, note), value) in enumerate(zip(rows, values, strict=True)):
        y = 4 + i * row_h
        w = max(value, 0.0) / hi * plot_w
        text = fmt(raw) + (f"  {note}" if note else "")
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" fill="#333" {_FONT}>'
            f"<title>{escape(label)}</title>{escape(_short(label, 28))}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{max(w, 0.5):.1f}" height="{row_h - 8}" '
            f'fill="{color}" data-label="{escape(label)}" data-value="{escape(_raw(raw))}">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 17}" fill="#333" {_FONT}>{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
