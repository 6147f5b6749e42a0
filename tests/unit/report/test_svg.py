"""Inline SVG charts."""

from __future__ import annotations

import re

from clickstream.report.svg import bar_chart, hbar_chart


def test_bar_chart_draws_one_bar_per_point_with_its_raw_value():
    svg = bar_chart("s", [("2026-03-01", 3), ("2026-03-02", 7)], fmt=str, title="Sessions")
    bars = re.findall(r'<rect class="bar"[^>]*data-label="([^"]+)" data-value="([^"]+)"', svg)
    assert bars == [("2026-03-01", "3"), ("2026-03-02", "7")]
    assert 'data-points="2"' in svg and svg.startswith("<svg") and svg.endswith("</svg>")


def test_bar_heights_are_proportional_and_negative_values_hang_below_zero():
    svg = bar_chart("r", [("a", 100.0), ("b", 50.0), ("c", -50.0)], fmt=str, title="Revenue")
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', svg)]
    assert heights[0] == 2 * heights[1] == 2 * heights[2]
    ys = [float(y) for y in re.findall(r'<rect class="bar"[^>]*? y="([\d.]+)"', svg)]
    assert ys[2] > ys[0]  # the negative bar starts at the zero line, below the positive bars' tops


def test_empty_chart_is_still_an_svg_that_says_so():
    svg = bar_chart("s", [], fmt=str, title="Sessions")
    assert svg.startswith("<svg") and "No data yet" in svg and 'data-points="0"' in svg


def test_hbar_chart_escapes_labels_and_prints_notes():
    svg = hbar_chart("p", [('<script>alert("x")</script>', 5, "(50%)")], fmt=str, title="Products")
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in svg
    assert "5  (50%)" in svg


def test_axis_labels_are_compact():
    from clickstream.report.svg import compact

    assert [compact(v) for v in (0, 96, 0.5, 1868.98, 2_500_000, -1500)] == [
        "0",
        "96",
        "0.5",
        "1.9k",
        "2.5M",
        "-1.5k",
    ]
