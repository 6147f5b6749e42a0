"""Property: whatever text any field of any record holds, the validate step finishes the object and accounts for
every event. Adversarial strings (control characters, escaped lone surrogates, invalid UTF-8, bidirectional and
zero-width characters, '@'-heavy and 4 KB values, secrets in URLs) go into every text field of the envelope and
the events, end to end through ``service.validate_object`` on in-memory stores, on the small-object path and the
engine's; then through the Lambda handler on moto."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.core import clock
from clickstream.core.config import Settings
from clickstream.core.schema import VALIDATED_COLUMN_NAMES, VALIDATED_COLUMNS
from clickstream.operations.quarantine import read_entries
from clickstream.validate import engine
from clickstream.validate.judge import QUARANTINE_REASONS
from clickstream.validate.step import validate_object
from clickstream.validate.text import URL_CAP, USER_AGENT_CAP, clean_text, repair_surrogates
from clickstream.validate.web import scrub_emails
from tests.fakes.state import MemoryStateStore
from tests.fakes.storage import MemoryObjectStore
from tests.unit.validate.helpers import T0, event, iso, new_id

KEY = "raw/dt=2026-03-02/hr=10/clickstream-events-1-2026-03-02-10-05-00-hostile"
SPECIAL = [
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\x0b",
    "\x1f",
    "\x7f",
    "\x85",
    "\u2028",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",
    "é",
    "日本",
    "@",
    "%40",
    "a.b@c.io",
    "&token=t0k",
    "#id_token=x",
    "\\",
    '"',
    ",",
    "<script>",
    "%0D",
    " ",
]
hostile_text = st.one_of(
    st.lists(st.sampled_from(SPECIAL) | st.text(max_size=4), max_size=10).map("".join),
    st.builds(
        lambda unit, n: unit * n,
        st.sampled_from(["a", "@", "é", "\r", "a@", "\ud800", "x%40"]),
        st.integers(0, 4200),
    ),
)
TOTALS: Counter[str] = Counter()


class StateStore(MemoryStateStore):
    def tombstones(self) -> frozenset[str]:
        return frozenset()


@st.composite
def hostile_records(draw) -> tuple[list[bytes], int, dict[str, set[str | None]]]:
    """Raw lines (each ASCII-escaped JSON or raw UTF-8 with surrogates passed through as bytes), the number of
    events they hold, and each event's expected stored title (one per kind of line a copy of it is in)."""
    lines: list[bytes] = []
    n_events = 0
    titles: dict[str, set[str | None]] = {}
    seen: list[dict] = []

    def rare() -> (
        bool
    ):  # one time in ten: a value that breaks its field's rule (the rest is hostile but valid)
        return draw(st.integers(0, 9)) == 0

    for r in range(draw(st.integers(1, 5))):
        events = []
        for _ in range(draw(st.integers(1, 8))):
            if seen and draw(st.integers(0, 9)) == 0:
                events.append(dict(draw(st.sampled_from(seen))))  # a retry: a duplicate
                continue
            kind = draw(st.sampled_from(["page_view", "purchase", "add_to_cart", "custom:x"]))
            t = lambda: draw(hostile_text)  # noqa: E731
            ev = event(kind, at=T0 - timedelta(seconds=draw(st.integers(0, 300))), event_id=new_id())
            ev["page"] = {
                # a URL holds no whitespace (else it is a schema violation, as one in ten is)
                "url": "https://shop.example.com/" + (t() if rare() else "".join(t().split())),
                "referrer": t() or None,
                "title": t()[:1024],
            }
            if "items" in ev:
                ev["items"][0].update(name=t()[:1024], category=t()[:1024], brand=t()[:1024])
                ev["items"][0]["product_id"] = t()[:128] or "P"
            if kind == "purchase":
                ev["transaction_id"] = t()[:128] or "T"
            if draw(st.booleans()):
                ev["client_session_id"] = t()[:128] or "s"
            if draw(st.booleans()):
                ev["properties"] = {t()[:64]: t()}
            if rare():
                ev["event_type"] = t()
            seen.append(ev)
            events.append(ev)
        received = T0 + timedelta(seconds=5 + r)
        rec = {
            "schema": "clickstream/raw/1",
            "request_id": new_id(),
            "source": draw(st.sampled_from(["native", "snowplow"])),
            "received_at": iso(received),
            "user_id": draw(st.none() | hostile_text),
            "ip": draw(st.sampled_from(["198.51.100.7", "2001:db8::1", None]) | hostile_text),
            "user_agent": draw(st.none() | hostile_text),
            "internal": False,
            "app_id": draw(hostile_text) if rare() else "shop-web",
            "sent_at": iso(received),
            "anonymous_id": draw(hostile_text) if rare() else draw(st.sampled_from(["anon-1", "anon-2"])),
            "context": {
                "utm": {"source": draw(hostile_text), "medium": draw(hostile_text)},
                "page": {
                    "url": "https://shop.example.com/?" + draw(hostile_text),
                    "title": draw(hostile_text),
                },
                "session_id": draw(hostile_text),
            },
            "events": events,
        }
        n_events += len(events)
        escaped = draw(st.booleans())
        if escaped:
            lines.append(json.dumps(rec, separators=(",", ":")).encode("ascii"))
        else:
            text = json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
            lines.append(text.encode("utf-8", "surrogatepass"))
        for ev in events:
            title = ev["page"]["title"]
            if (
                escaped
            ):  # as JSON decodes it (an escaped pair is one character), then each lone surrogate U+FFFD
                title = repair_surrogates(
                    title.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
                )
            else:  # as raw bytes: a surrogate written as UTF-8 is invalid, each of its bytes U+FFFD
                title = title.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            # (a copy of an event may sit in a line of either kind: either copy may win)
            titles.setdefault(ev["event_id"], set()).add(scrub_emails(clean_text(title)) or None)
    if draw(st.integers(0, 4)) == 0:
        lines.append(draw(st.sampled_from([b"{not json", b"\xff\xfe", b"[" * 5000])))
        n_events += 1
    return lines, n_events, titles


@pytest.fixture(scope="module", autouse=True)
def _report_totals():
    yield
    if TOTALS:
        print(f"\nhostile property totals: {dict(sorted(TOTALS.items()))}")


def _validate(data: bytes, engine_path: bool):
    raw, lake, state = MemoryObjectStore("raw"), MemoryObjectStore("lake"), StateStore()
    raw.put_bytes(KEY, data)
    with mock.patch.object(engine, "ENGINE_MIN_BYTES", 0 if engine_path else engine.ENGINE_MIN_BYTES):
        row = validate_object(KEY, settings=Settings(), raw_store=raw, lake_store=lake, state=state)
    return row, lake, state


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(case=hostile_records(), engine_path=st.booleans())
def test_no_object_fails_and_every_event_is_accounted_for(case, engine_path, tmp_path_factory):
    lines, n_events, titles = case
    clock.set_clock(clock.SimulatedClock(datetime(2026, 3, 2, 10, 7, tzinfo=UTC)))
    try:
        # Given an object of hostile records / When the validate step takes it
        row, lake, state = _validate(b"\n".join(lines) + b"\n", engine_path)
    finally:
        clock.set_clock(None)
    # Then it finished, and events in = validated + quarantined by reason + duplicates, as the ledger says
    assert row.events_in == n_events
    assert row.events_in == row.validated + sum(row.quarantined.values()) + row.duplicates
    assert set(row.quarantined) <= set(QUARANTINE_REASONS)
    assert state.get_ledger(KEY)["events_in"] == n_events
    TOTALS["events_in"] += row.events_in
    TOTALS["validated"] += row.validated
    TOTALS["duplicates"] += row.duplicates
    TOTALS.update({f"quarantined.{k}": v for k, v in row.quarantined.items()})
    TOTALS["objects"] += 1
    # And each quarantined event is a JSON line with its reason and, for a schema or size violation, the path
    if row.quarantine_key:
        # (one line each to any line reader: str.splitlines breaks at U+0085 and U+2028 too)
        entries = [
            json.loads(line) for line in lake.get_bytes(row.quarantine_key).decode("utf-8").splitlines()
        ]
        assert len(entries) == row.quarantined_total
        assert entries == read_entries(lake, row.quarantine_key)
        for entry in entries:
            assert entry["reason"] in QUARANTINE_REASONS
            if entry["reason"] in ("schema_violation", "size_violation"):
                assert ": " in entry["detail"], entry["detail"]
    # And the validated Parquet reads back in DuckDB, one row per validated event, its text normalized
    if row.validated:
        path = tmp_path_factory.mktemp("lake") / "v.parquet"
        Path(path).write_bytes(lake.get_bytes(row.validated_key))
        rows = [
            dict(zip(VALIDATED_COLUMN_NAMES, r, strict=True))
            for r in duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
        ]
        assert len(rows) == row.validated
        text_columns = [
            n for n, t in VALIDATED_COLUMNS if t == "VARCHAR" and n not in ("items", "properties")
        ]
        for r in rows:
            for name in text_columns:
                value = r[name] or ""
                assert not any(c < " " or "\x7f" <= c <= "\x9f" for c in value), (name, value)
            assert len(r["page_url"] or "") <= URL_CAP and len(r["page_referrer"] or "") <= URL_CAP
            assert len((r["user_agent"] or "").encode("utf-8")) <= USER_AGENT_CAP
            assert r["page_title"] in titles[r["event_id"]]
            json.loads(r["properties"] or "{}")
            json.loads(r["items"] or "[]")
    else:
        assert row.validated_key is None


def test_500_hostile_events_in_one_request_through_the_handler(aws, tmp_path):
    """The Lambda handler on moto: one 500-event request of hostile text beside an ordinary one."""
    from clickstream.adapters.storage import S3ObjectStore
    from tests.fakes.context import lambda_context
    from tests.unit.validate.helpers import (
        load_validate_handler,
        raw_object,
        record,
        s3_notification,
        sqs_event,
    )

    events = []
    for i, ch in enumerate(SPECIAL * 18):
        ev = event("add_to_cart", event_id=new_id(10_000 + i))
        # within the schema's limits (1,024-character title and name, 32 KB per event): every one is valid
        title, referrer = (f"T{ch}" * 200)[:1024], (ch * 2500)[:2500]
        ev["page"] = {"url": f"https://shop.example.com/p?q={i}", "title": title, "referrer": referrer}
        ev["items"][0].update(name=f"N{ch}", category=(ch * 1000)[:1000], product_id=f"P{ch}")
        events.append(ev)
    ordinary = record([event(), event("view_item")], anonymous_id="someone-else")
    data = raw_object(record(events[:500], user_agent="\r" * 20_000), ordinary)
    S3ObjectStore(aws.settings.raw_bucket).put_bytes(KEY, data)
    clock.set_clock(clock.SimulatedClock(datetime(2026, 3, 2, 10, 7, tzinfo=UTC)))
    try:
        out = load_validate_handler().lambda_handler(
            sqs_event(s3_notification(aws.settings.raw_bucket, KEY)), lambda_context("validate")
        )
    finally:
        clock.set_clock(None)
    assert out == {"batchItemFailures": []}
    from clickstream.adapters.state import DynamoStateStore

    ledger = DynamoStateStore(aws.settings.state_table).get_ledger(KEY)
    assert (ledger["events_in"], ledger["validated"], ledger["duplicates"]) == (502, 502, 0)
    path = tmp_path / "v.parquet"
    path.write_bytes(S3ObjectStore(aws.settings.lake_bucket).get_bytes(ledger["validated_key"]))
    n, agents, longest = (
        duckdb.connect()
        .execute(
            "SELECT count(*), count(DISTINCT user_agent), max(strlen(user_agent)) "
            f"FROM read_parquet('{path}') WHERE anonymous_id = 'anon-1'"
        )
        .fetchone()
    )
    assert (n, agents, longest) == (500, 1, 512)
