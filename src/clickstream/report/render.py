"""The dashboard: one self-contained HTML page (inline CSS, inline SVG; no script, no CDN, opens offline).

Each displayed number carries its raw SQL value in ``data-value`` (tiles also have ``id="kpi-<name>"`` and
``data-kpi``), so a test can compare the page with the warehouse. Over a range of days each tile also shows its
change against the previous period of the same length (``data-change``, ``data-previous``: the SQL values) as
▲/▼ and a percentage, and its ``title`` (the tooltip) says how the KPI is defined. Every value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

from clickstream.report.data import ReportData
from clickstream.report.svg import Series, bar_chart, grouped_bar_chart, hbar_chart

TILES: tuple[tuple[str, str, str], ...] = (
    # (kpi, label, format)
    ("sessions", "Sessions", "int"),
    ("visitors", "Visitors", "int"),
    ("engagement_rate", "Engagement rate", "pct"),
    ("bounce_rate", "Bounce rate", "pct"),
    ("avg_session_duration_s", "Avg. session duration", "duration"),
    ("pages_per_session", "Pages per session", "dec"),
    ("conversion_rate", "Conversion rate", "pct"),
    ("orders", "Orders", "int"),
    ("gross_revenue", "Gross revenue", "money"),
    ("refunds", "Refunds", "money"),
    ("net_revenue", "Net revenue", "money"),
    ("aov", "Average order value", "money"),
)
LOWER_IS_BETTER = frozenset({"bounce_rate", "refunds"})  # a rise of these is bad news (red)

# The tooltip of each tile: how the number is defined ({currency} = the store currency).
DEFINITIONS = {
    "sessions": "Visits by people (bots and internal traffic excluded), each on the day it started (site time zone). "
    "A session ends after 30 minutes without an event, or after 24 hours.",
    "visitors": "Distinct browsers or devices (anonymous_id) with a session in the period.",
    "engagement_rate": "Engaged sessions / sessions. A session is engaged when it lasts more than 10 s, has at least "
    "2 page views, or has a purchase (GA4).",
    "bounce_rate": "1 - engagement rate: the sessions that were not engaged.",
    "avg_session_duration_s": "Mean time from a session's first event to its last.",
    "pages_per_session": "Page views / sessions.",
    "conversion_rate": "Sessions with a purchase / sessions.",
    "orders": "Distinct transaction ids of purchases in {currency} (a purchase sent twice is one order).",
    "gross_revenue": "The orders' values in {currency}, on the day of the purchase (GA4 purchase revenue).",
    "refunds": "Amounts refunded in {currency}, on the day of the refund, whenever the order was placed "
    "(partial refunds count what they return).",
    "net_revenue": "Gross revenue - refunds, in {currency}.",
    "aov": "Average order value: gross revenue / orders, in {currency}. Refunds do not lower it.",
}
UP, DOWN, FLAT = "\u25b2", "\u25bc", "="  # ▲ ▼

_CSS = """
:root { --ink:#1d2330; --muted:#667085; --line:#e3e6ec; --card:#fff; --bg:#f5f7fa; --accent:#3b6fd8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 16px 24px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 15px; margin: 0 0 8px; }
.meta, footer { color: var(--muted); font-size: 12px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 12px; margin-bottom: 16px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.tile .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile .value { font-size: 21px; font-weight: 600; margin-top: 4px; font-variant-numeric: tabular-nums;
               white-space: nowrap; }
.tile { cursor: help; }
.tile .change { font-size: 12px; margin-top: 2px; color: var(--muted); font-variant-numeric: tabular-nums; }
.tile .change.good { color: #1f7a5a; }
.tile .change.bad { color: #c0392b; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; align-items: start; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 0; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; white-space: normal; overflow-wrap: anywhere; }
th { color: var(--muted); font-weight: 500; font-size: 12px; }
.empty { color: var(--muted); }
.heat td { text-align: center; }
"""


NA = "\u2013"  # an en dash: shown for a value that does not exist (no sessions, no orders)


# -- formatting -----------------------------------------------------------------------------------------------
def fmt_int(v: Any) -> str:
    return NA if v is None else f"{int(v):,}"


def fmt_pct(v: Any) -> str:
    return NA if v is None else f"{float(v) * 100:.1f}%"


def fmt_dec(v: Any) -> str:
    return NA if v is None else f"{float(v):,.2f}"


def fmt_duration(v: Any) -> str:
    if v is None:
        return NA
    seconds = round(float(v))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def money_formatter(currency: str) -> Callable[[Any], str]:
    def fmt(v: Any) -> str:
        return NA if v is None else f"{currency} {float(v):,.2f}"

    return fmt


def raw(v: Any) -> str:
    """The value as SQL returned it, for ``data-value`` (empty for NULL)."""
    if v is None:
        return ""
    if isinstance(v, Decimal):
        return format(v, "f")
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    return str(v)


def _formatters(currency: str) -> dict[str, Callable[[Any], str]]:
    return {
        "int": fmt_int,
        "pct": fmt_pct,
        "dec": fmt_dec,
        "duration": fmt_duration,
        "money": money_formatter(currency),
    }


# -- building blocks -------------------------------------------------------------------------------------------
def _tile(key: str, label: str, value: Any, fmt: Callable[[Any], str], data: ReportData) -> str:
    """A KPI tile: its value, its change against the previous period (when the page covers a range) and its
    definition as the tooltip (``title``, also read by screen readers as the tile's description)."""
    tooltip = DEFINITIONS[key].format(currency=data.currency)
    change_attrs, change_html = "", ""
    if data.previous is not None:
        change = data.changes.get(f"{key}_change")
        previous = data.changes.get(f"{key}_previous")
        span = f"the previous {len(data.previous.days)} day{'s' if len(data.previous.days) != 1 else ''}"
        dates = f"{data.previous.first.isoformat()} to {data.previous.last.isoformat()}"
        text, css, spoken = _change_text(key, change)
        tooltip += f" Previous period ({dates}): {fmt(previous)}; change {spoken}."
        change_attrs = f' data-change="{escape(raw(change))}" data-previous="{escape(raw(previous))}"'
        change_html = (
            f'<div class="change {css}" aria-label="{escape(spoken)} against {escape(span)}">'
            f'{escape(text)} <span class="vs">vs {escape(span)}</span></div>'
        )
    return (
        f'<div class="tile" id="kpi-{escape(key)}" data-kpi="{escape(key)}" data-value="{escape(raw(value))}"'
        f'{change_attrs} title="{escape(tooltip)}">'
        f'<div class="label">{escape(label)}</div><div class="value">{escape(fmt(value))}</div>{change_html}</div>'
    )


def _change_text(key: str, change: Any) -> tuple[str, str, str]:
    """(shown text, CSS class, words) of a relative change: ▲ 12.3% / ▼ 4.0% / = 0.0%, or a dash without one."""
    if change is None:
        return f"{NA}", "none", "not comparable (no value or zero in the previous period)"
    ratio = float(change)
    arrow = UP if ratio > 0 else DOWN if ratio < 0 else FLAT
    good = (ratio < 0) if key in LOWER_IS_BETTER else (ratio > 0)
    css = "flat" if ratio == 0 else "good" if good else "bad"
    direction = "up" if ratio > 0 else "down" if ratio < 0 else "unchanged"
    return f"{arrow} {abs(ratio) * 100:.1f}%", css, f"{direction} {abs(ratio) * 100:.1f}%"


def _card(title: str, body: str, card_id: str) -> str:
    return f'<figure class="card" id="{escape(card_id)}"><h2>{escape(title)}</h2>{body}</figure>'


def _table(
    table_id: str, rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, Callable[[Any], str]]]
) -> str:
    if not rows:
        return '<p class="empty">No data yet.</p>'
    head = "".join(f"<th>{escape(label)}</th>" for _, label, _ in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td data-col="{escape(key)}" data-value="{escape(raw(row.get(key)))}">{escape(fmt(row.get(key)))}</td>'
            for key, _, fmt in columns
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table id="{escape(table_id)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _text(v: Any) -> str:
    return "(not set)" if v is None else str(v)


def _retention(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="empty">No data yet.</p>'
    weeks = sorted({int(r["week_offset"]) for r in rows})
    cohorts: dict[str, dict[int, dict[str, Any]]] = {}
    sizes: dict[str, Any] = {}
    for r in rows:
        week = raw(r["cohort_week"])
        cohorts.setdefault(week, {})[int(r["week_offset"])] = r
        sizes[week] = r["cohort_size"]
    head = "<th>Cohort (week of first visit)</th><th>Visitors</th>" + "".join(f"<th>W{w}</th>" for w in weeks)
    body = []
    for week, cells in cohorts.items():
        tds = []
        for w in weeks:
            cell = cells.get(w)
            if cell is None:
                tds.append("<td></td>")
                continue
            rate = float(cell["retention_rate"])
            tds.append(
                f'<td data-week="{w}" data-value="{escape(raw(cell["retention_rate"]))}" '
                f'style="background: rgba(59,111,216,{0.1 + 0.8 * rate:.2f})">{escape(fmt_pct(rate))}</td>'
            )
        body.append(
            f'<tr data-cohort="{escape(week)}"><td>{escape(week)}</td><td>{escape(fmt_int(sizes[week]))}</td>'
            f"{''.join(tds)}</tr>"
        )
    return f'<table id="retention-table" class="heat"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def render_html(
    data: ReportData, *, rendered_at: datetime | None = None, title: str = "Store dashboard"
) -> str:
    """The whole page as a string: header, KPI tiles, the charts and tables, footer."""
    f = _formatters(data.currency)
    tiles = "".join(_tile(key, label, data.totals.get(key), f[kind], data) for key, label, kind in TILES)
    charts = [
        *_trend_cards(data, f["money"]),
        *_currencies_card(data),
        _funnel_card(data),
        _products_card(data, f["money"]),
        _channels_card(data, f["money"]),
        _devices_card(data),
        _landing_card(data, f["money"]),
        _card("Weekly retention", _retention(data.retention), "table-retention"),
    ]
    footer = (
        "Numbers from the warehouse: daily_kpis, daily_revenue and the analyst views. Money is counted per currency"
        " and never summed across currencies; hover a tile for its definition."
    )
    if rendered_at is not None:
        footer += f" Rendered {rendered_at.isoformat(timespec='seconds')}."
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><p class="meta">{escape(" · ".join(_meta(data)))}</p></header>'
        f'<main><section class="tiles" id="tiles">{tiles}</section>'
        f'<section class="grid">{"".join(charts)}</section></main>'
        f"<footer>{escape(footer)}</footer></body></html>\n"
    )


def _meta(data: ReportData) -> list[str]:
    """The header's line: the days shown, the currency, what is left out, the last load."""
    period = f"{data.first_day} to {data.last_day}" if data.first_day else "no data yet"
    if data.period is not None:
        n_days = len(data.period.days)
        period = f"{period} (last {n_days} day{'s' if n_days != 1 else ''})"
    meta = [
        f"Days {period}, site time zone",
        f"money in {data.currency}",
        "bots and internal traffic excluded",
    ]
    if data.previous is not None:
        meta.append(f"compared with {data.previous.first.isoformat()} to {data.previous.last.isoformat()}")
    if data.last_run:
        meta.append(
            f"last load: run {_text(data.last_run['run_id'])} up to {raw(data.last_run['watermark_to']) or NA}"
        )
    return meta


def _trend_cards(data: ReportData, money: Callable[[Any], str]) -> list[str]:
    days = [(raw(d["day"]), d["sessions"]) for d in data.daily]
    labels = [raw(d["day"]) for d in data.daily]
    revenue = [
        Series("Gross revenue", "#1f9d74", [d["gross_revenue"] for d in data.daily]),
        Series("Refunds", "#d9534f", [d["refunds"] for d in data.daily]),
    ]
    return [
        _card(
            "Sessions per day",
            bar_chart("sessions-per-day", days, fmt=fmt_int, title="Sessions per day"),
            "chart-sessions",
        ),
        _card(
            f"Revenue per day ({data.currency}): gross and refunds",
            grouped_bar_chart(
                "revenue-per-day", labels, revenue, fmt=money, title="Gross revenue and refunds per day"
            ),
            "chart-revenue",
        ),
    ]


def _currencies_card(data: ReportData) -> list[str]:
    """Money per currency, when the period has more than one (each in its own currency, never added up)."""
    if len(data.currencies) < 2:
        return []
    columns = (
        ("orders", "Orders", "int"),
        ("gross_revenue", "Gross", "money"),
        ("refunds", "Refunds", "money"),
        ("net_revenue", "Net", "money"),
        ("aov", "AOV", "money"),
    )
    head = "<th>Currency</th>" + "".join(f"<th>{escape(label)}</th>" for _, label, _ in columns)
    body = []
    for row in data.currencies:
        f = _formatters(str(row["currency"]))
        cells = f'<td data-col="currency" data-value="{escape(raw(row["currency"]))}">{escape(row["currency"])}</td>'
        cells += "".join(
            f'<td data-col="{key}" data-value="{escape(raw(row.get(key)))}">{escape(f[kind](row.get(key)))}</td>'
            for key, _, kind in columns
        )
        body.append(f"<tr>{cells}</tr>")
    table = (
        f'<table id="currency-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        '<p class="meta">Each currency on its own: amounts in different currencies are never added up.</p>'
    )
    return [_card("Revenue by currency", table, "table-currencies")]


def _funnel_card(data: ReportData) -> str:
    """The funnel's steps, each with its share of sessions (the first) or of the previous step."""
    funnel_rows = []
    previous: int | None = None
    sessions = data.totals.get("sessions") or 0
    for _key, label, count in data.funnel:
        if previous is None:
            note = f"({fmt_pct(count / sessions) if sessions else NA} of sessions)"
        else:
            note = f"({fmt_pct(count / previous) if previous else NA} of previous step)"
        funnel_rows.append((label, count, note))
        previous = count
    if data.funnel and not any(count for _, _, count in data.funnel):
        funnel_rows = []
    return _card(
        "Funnel (sessions)",
        hbar_chart("funnel", funnel_rows, fmt=fmt_int, title="Purchase funnel", color="#7a5af5"),
        "chart-funnel",
    )


def _products_card(data: ReportData, money: Callable[[Any], str]) -> str:
    return _card(
        "Top products by revenue",
        hbar_chart(
            "top-products",
            [(_text(p["product_name"] or p["product_id"]), p["revenue"], "") for p in data.products],
            fmt=money,
            title="Top products by revenue",
            color="#e07b39",
        )
        + _table(
            "products-table",
            data.products,
            (
                ("product_name", "Product", _text),
                ("views", "Views", fmt_int),
                ("carts", "Carts", fmt_int),
                ("purchases", "Purchases", fmt_int),
                ("revenue", "Revenue", money),
            ),
        ),
        "chart-products",
    )


def _channels_card(data: ReportData, money: Callable[[Any], str]) -> str:
    return _card(
        "Channels",
        hbar_chart(
            "channels",
            [
                (_text(c["channel"]), c["sessions"], f"({fmt_pct(c['conversion_rate'])} conv.)")
                for c in data.channels
            ],
            fmt=fmt_int,
            title="Sessions by channel",
        )
        + _table(
            "channels-table",
            data.channels,
            (
                ("channel", "Channel", _text),
                ("sessions", "Sessions", fmt_int),
                ("engagement_rate", "Engaged", fmt_pct),
                ("conversion_rate", "Conversion", fmt_pct),
                ("gross_revenue", "Gross revenue", money),
            ),
        ),
        "chart-channels",
    )


def _devices_card(data: ReportData) -> str:
    return _card(
        "Devices",
        hbar_chart(
            "devices",
            [
                (_text(d["device_type"]), d["sessions"], f"({fmt_pct(d['conversion_rate'])} conv.)")
                for d in data.devices
            ],
            fmt=fmt_int,
            title="Sessions by device",
            color="#2a9bb8",
        ),
        "chart-devices",
    )


def _landing_card(data: ReportData, money: Callable[[Any], str]) -> str:
    return _card(
        "Landing pages",
        hbar_chart(
            "landing-pages",
            [
                (_text(p["landing_page"]), p["entrances"], f"({fmt_pct(p['bounce_rate'])} bounce)")
                for p in data.landing_pages
            ],
            fmt=fmt_int,
            title="Entrances by landing page",
            color="#5b8c3a",
        )
        + _table(
            "landing-table",
            data.landing_pages,
            (
                ("landing_page", "Page", _text),
                ("entrances", "Entrances", fmt_int),
                ("bounce_rate", "Bounce", fmt_pct),
                ("conversion_rate", "Conversion", fmt_pct),
                ("gross_revenue", "Gross revenue", money),
            ),
        ),
        "table-landing",
    )
