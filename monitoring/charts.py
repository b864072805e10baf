"""Tiny server-rendered SVG charts for the dashboard (no JavaScript, no CDN, no build step).

Readable on a phone (390 px wide): a chart is drawn 360 units wide, so it is shown at about
its own size there (``max-width: 100%`` shrinks it by a few percent at most) and every text
stays at least 10 px; its title is an HTML caption above it, which wraps; the histogram
labels every n-th bucket when the labels would touch (each bar names its bucket on hover).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLOURS = {
    "completed": "#1e7b34",
    "failed": "#b42318",
    "timeout": "#b42318",
    "rejected": "#b42318",
    "cancelled": "#a15c00",
    "partial": "#a15c00",
    "running": "#2454c5",
    "queued": "#2454c5",
}
DEFAULT_COLOUR = "#6b7a99"
WIDTH = 360
# About how wide a character of the tick labels is, per unit of font size.
CHAR_WIDTH = 0.62


def _figure(title: str, svg: str) -> SafeString:
    return mark_safe(  # noqa: S308 - the title is escaped here, the svg by its builder
        f'<figure class="chart-box"><figcaption>{escape(title)}</figcaption>{svg}</figure>'
    )


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = WIDTH,
    bar_height: int = 18,
    unit: str = "",
) -> SafeString:
    """Horizontal bars, one per (label, value), scaled to the largest value, under a caption."""
    label_w, pad = 130, 4
    height = max(1, len(items) * (bar_height + pad))
    top = max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
    ]
    for i, (label, value) in enumerate(items):
        y = i * (bar_height + pad)
        w = 0 if value <= 0 else max(2, int((width - label_w - 70) * value / top))
        colour = COLOURS.get(label, DEFAULT_COLOUR)
        shown = f"{value:g}{unit}"
        parts.append(
            f'<text x="0" y="{y + bar_height - 5}" font-size="12">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_height}" fill="{colour}"/>'
            f'<text x="{label_w + w + 6}" y="{y + bar_height - 5}" font-size="12">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return _figure(title, "".join(parts))


def _tick_label(le: float) -> str:
    return "+inf" if le == float("inf") else f"{le:g}"


def histogram_chart(
    buckets: Sequence[tuple[float, int]],
    total: int,
    *,
    title: str,
    x_label: str = "seconds (upper bound of each bucket)",
    y_label: str = "count",
    width: int = WIDTH,
    height: int = 200,
) -> SafeString:
    """Vertical bars of a cumulative histogram, one per bucket (count in (previous, le]).

    Axes with tick labels (every n-th bucket when they would touch), the count above every
    non-empty bar, and the total in the caption.
    """
    edges = [*buckets, (float("inf"), total)]
    counts, previous = [], 0
    for le, cumulative in edges:
        counts.append((le, cumulative - previous))
        previous = cumulative
    top = max((c for _, c in counts), default=0) or 1
    left, right, top_pad, bottom = 44, 14, 22, 40
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    base = top_pad + plot_h
    bar_w = plot_w / max(len(counts), 1)
    longest = max((len(_tick_label(le)) for le, _ in counts), default=1)
    every = max(1, math.ceil((longest * CHAR_WIDTH * 10 + 4) / bar_w))
    caption = f"{title} · {total} in all"
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(caption)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        # y axis with ticks at 0, half and the top count
        f'<line class="axis" x1="{left}" y1="{top_pad}" x2="{left}" y2="{base}"/>',
        f'<line class="axis" x1="{left}" y1="{base}" x2="{width - right}" y2="{base}"/>',
        f'<text x="4" y="{top_pad - 8}" font-size="11">{escape(y_label)}</text>',
    ]
    for value in sorted({0, top // 2, top}):
        y = base - plot_h * value / top
        parts.append(
            f'<line class="axis" x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}"/>'
            f'<text x="{left - 6}" y="{y + 3:.1f}" font-size="11" text-anchor="end">{value}</text>'
        )
    for i, (le, count) in enumerate(counts):
        h = 0 if count == 0 else max(2, int(plot_h * count / top))
        x = left + i * bar_w
        label = _tick_label(le)
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{base - h}" width="{bar_w - 2:.1f}" height="{h}" fill="#2454c5">'
            f"<title>&le; {escape(label)} s: {count}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{base + 14}" font-size="10" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
        if count:
            parts.append(
                f'<text class="count" x="{x + bar_w / 2:.1f}" y="{base - h - 3}" font-size="11" '
                f'text-anchor="middle">{count}</text>'
            )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="11" text-anchor="middle">'
        f"{escape(x_label)}</text></svg>"
    )
    return _figure(caption, "".join(parts))
