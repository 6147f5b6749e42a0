"""The dashboard: SQL over the warehouse (``data``) rendered as one self-contained HTML page (``render``, ``svg``)."""

from __future__ import annotations

from clickstream.core import clock
from clickstream.warehouse.engine import Connection


def build_report(conn: Connection, currency: str, *, title: str = "Store dashboard") -> str:
    """The dashboard's HTML for the warehouse behind ``conn``."""
    from clickstream.report.data import collect
    from clickstream.report.render import render_html

    return render_html(collect(conn, currency), rendered_at=clock.now(), title=title)
