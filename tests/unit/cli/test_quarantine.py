"""``clickstream quarantine summary`` and ``redrive`` against the moto stack: counts, re-drive, idempotence."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from clickstream.adapters.state import DynamoStateStore
from clickstream.adapters.storage import S3ObjectStore
from clickstream.core import clock
from clickstream.core.ids import id_hash
from clickstream.core.keys import quarantine_key
from clickstream.operations.quarantine import redrive_key
from clickstream.validate import judge, reader
from clickstream.validate import step as service
from clickstream.validate.step import validate_object
from clickstream_cli.main import main
from tests.unit.validate.helpers import T0, event, raw_object, record

KEY_A = "raw/dt=2026-03-02/hr=10/clickstream-events-1-2026-03-02-10-05-00-aaa"
KEY_B = "raw/dt=2026-03-03/hr=08/clickstream-events-1-2026-03-03-08-05-00-bbb"
DAY2 = T0 + timedelta(days=1)


@pytest.fixture
def sim_clock():
    sim = clock.SimulatedClock(datetime(2026, 3, 4, 12, 0, tzinfo=UTC))
    clock.set_clock(sim)
    service._tombstone_cache.clear()
    yield sim
    clock.set_clock(None)
    service._tombstone_cache.clear()


def _stores(aws):
    s = aws.settings
    return S3ObjectStore(s.raw_bucket), S3ObjectStore(s.lake_bucket), DynamoStateStore(s.state_table)


def _validate(aws, key: str, data: bytes, **settings_changes) -> dict:
    raw, lake, state = _stores(aws)
    raw.put_bytes(key, data)
    settings = aws.settings.replace(**settings_changes) if settings_changes else aws.settings
    return validate_object(key, settings=settings, raw_store=raw, lake_store=lake, state=state).as_item()


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _late(at: datetime, hours: float) -> dict:
    """A valid event that occurred ``hours`` before its request was sent (sent = received here)."""
    return event("page_view", at=at - timedelta(hours=hours))


def _validated_ids(aws, tmp_path: Path) -> dict[str, int]:
    """event_id → how many rows the whole validated lake holds for it."""
    lake = S3ObjectStore(aws.settings.lake_bucket)
    files = [
        str(lake.download(k, tmp_path / "lake" / k))
        for k in lake.list_keys("validated/")
        if k.endswith(".parquet")
    ]
    if not files:
        return {}
    rows = duckdb.sql(f"SELECT event_id, count(*) FROM read_parquet({files!r}) GROUP BY 1").fetchall()
    return dict(rows)


def _snapshot(aws) -> tuple[dict[str, bytes], dict[str, bytes], list[dict]]:
    raw, lake, state = _stores(aws)
    return (
        {k: raw.get_bytes(k) for k in raw.list_keys("")},
        {k: lake.get_bytes(k) for k in lake.list_keys("")},
        sorted(state.all_ledger(), key=lambda r: r["source_key"]),
    )


def _known_mix(aws) -> None:
    """Two objects on two arrival days with one of each reason (counts in the test below)."""
    state = _stores(aws)[2]
    state.put_tombstone("anonymous_id", id_hash("anon-gone"))
    dup = event("add_to_cart")
    conflict = {**dup, "occurred_at": dup["occurred_at"].replace("10:00:00", "10:00:01")}
    _validate(
        aws,
        KEY_A,
        raw_object(
            record([event(), event(event_id="bad"), event("add_to_cart", items=[]), _late(T0, 80)]),
            record([dup]),
            record([conflict], received_at=T0 + timedelta(seconds=40)),
            record([event(), event()], anonymous_id="anon-gone"),
            "not json at all",
        ),
    )
    _validate(
        aws,
        KEY_B,
        raw_object(
            record(
                [event(at=DAY2), event(event_id="also-bad", at=DAY2), _late(DAY2, 100)],
                received_at=DAY2 + timedelta(seconds=2),
            )
        ),
    )


def test_summary_counts_each_reason_by_day_field_and_source(aws, sim_clock, capsys):
    # Given two objects on two arrival days with known reasons: A has 2 schema violations (event_id, items),
    # 1 too late, 1 duplicate conflict, 2 erased, 1 unparseable record; B has 1 schema violation, 1 too late
    _known_mix(aws)
    # When summarised as JSON
    code, out, _ = _cli(capsys, "quarantine", "summary", "--json")
    # Then every count is the fixture's
    assert code == 0
    summary = json.loads(out)
    assert summary["quarantined"] == 9
    assert summary["objects"] == 2
    assert summary["by_reason"] == {
        "duplicate_conflict": 1,
        "erased": 2,
        "schema_violation": 3,
        "too_late": 2,
        "unparseable_record": 1,
    }
    assert summary["by_day"] == {
        "2026-03-02": {
            "duplicate_conflict": 1,
            "erased": 2,
            "schema_violation": 2,
            "too_late": 1,
            "unparseable_record": 1,
        },
        "2026-03-03": {"schema_violation": 1, "too_late": 1},
    }
    assert summary["schema_violation_fields"] == [
        {"field": "event_id", "events": 2},
        {"field": "items", "events": 1},
    ]
    assert summary["by_source_prefix"] == [
        {"prefix": "raw/dt=2026-03-02/hr=10/", "events": 7},
        {"prefix": "raw/dt=2026-03-03/hr=08/", "events": 2},
    ]
    # And nothing was re-driven yet, and the ledger balances
    assert summary["redrive"]["schema_violation"] == {
        "quarantined": 3,
        "redriven": 0,
        "validated": 0,
        "requarantined": 0,
        "duplicates": 0,
        "redrive_objects": 0,
        "still_quarantined": 3,
    }
    assert summary["ledger"]["balances"] is True
    assert summary["ledger"]["events_received"] == 12


def test_summary_filters_by_day_and_reason(aws, sim_clock, capsys):
    # Given the same two days of quarantine
    _known_mix(aws)
    # When only the second day and only too_late are asked for
    _, day2, _ = _cli(capsys, "quarantine", "summary", "--json", "--from", "2026-03-03", "--to", "2026-03-03")
    _, late, _ = _cli(capsys, "quarantine", "summary", "--json", "--reason", "too_late", "--top", "1")
    # Then each view counts only what it selects
    assert json.loads(day2)["by_reason"] == {"schema_violation": 1, "too_late": 1}
    late_summary = json.loads(late)
    assert late_summary["by_reason"] == {"too_late": 2}
    assert late_summary["by_source_prefix"] == [{"prefix": "raw/dt=2026-03-02/hr=10/", "events": 1}]


def test_summary_prints_tables(aws, sim_clock, capsys):
    # Given quarantined events
    _known_mix(aws)
    # When summarised for a person
    code, out, _ = _cli(capsys, "quarantine", "summary")
    # Then the tables name the days, reasons, fields and the ledger's verdict
    assert code == 0
    for text in (
        "2026-03-02",
        "schema_violation",
        "event_id",
        "raw/dt=2026-03-03/hr=08/",
        "Re-drive",
        "balances",
    ):
        assert text in out


def test_redrive_after_lookback_relaxed_validates_each_event_exactly_once(aws, sim_clock, capsys, tmp_path):
    # Given events 5 h late quarantined as too_late under a 1 h lookback, next to valid ones and a duplicate retry
    late1, late2 = _late(T0, 5), _late(T0, 6)
    _validate(
        aws,
        KEY_A,
        raw_object(record([event(), late1, late2]), record([late1], received_at=T0 + timedelta(seconds=9))),
        lookback_hours=1,
    )
    assert _validated_ids(aws, tmp_path).get(late1["event_id"]) is None
    # When a default re-drive runs (too_late is not a default reason) and then one naming too_late, with the
    # stack's 72 h lookback
    _, default_run, _ = _cli(capsys, "quarantine", "redrive", "--json")
    code, out, _ = _cli(capsys, "quarantine", "redrive", "--reason", "too_late", "--json")
    # Then the default run re-drove nothing, and the named one re-drove the three quarantined copies
    assert json.loads(default_run)["objects"] == []
    assert code == 0
    (item,) = json.loads(out)["objects"]
    assert item["redrive_key"] == redrive_key(item["quarantine_key"], "too_late")
    assert item["redrive_key"].startswith("raw/redrive/dt=2026-03-02/hr=10/")
    assert item["outcome"]["events_in"] == 3
    assert (item["outcome"]["validated"], item["outcome"]["duplicates"]) == (2, 1)
    # And each event is in the validated lake exactly once, the retry counted as a duplicate
    ids = _validated_ids(aws, tmp_path)
    assert ids[late1["event_id"]] == 1 and ids[late2["event_id"]] == 1
    assert all(n == 1 for n in ids.values())
    # And summary shows them re-driven, none still quarantined, and the ledger balancing across both objects
    _, out, _ = _cli(capsys, "quarantine", "summary", "--json")
    summary = json.loads(out)
    assert summary["redrive"]["too_late"] == {
        "quarantined": 3,
        "redriven": 3,
        "validated": 2,
        "requarantined": 0,
        "duplicates": 1,
        "redrive_objects": 1,
        "still_quarantined": 0,
    }
    ledger = summary["ledger"]
    assert ledger["events_received"] == 4 and ledger["redriven"] == 3
    assert (ledger["validated"], ledger["still_quarantined"], ledger["duplicates"]) == (3, 0, 1)
    assert ledger["balances"] is True


def test_redrive_twice_changes_nothing(aws, sim_clock, capsys):
    # Given a re-drive already done
    _validate(
        aws, KEY_A, raw_object(record([event(), _late(T0, 5), event(event_id="bad")])), lookback_hours=1
    )
    _cli(capsys, "quarantine", "redrive", "--reason", "too_late", "--reason", "schema_violation")
    before = _snapshot(aws)
    # When the same re-drive runs again
    code, _, _ = _cli(capsys, "quarantine", "redrive", "--reason", "schema_violation", "--reason", "too_late")
    # Then the raw zone, the lake and the ledger are exactly as they were (same names, same bytes, same rows)
    assert code == 0
    assert _snapshot(aws) == before
    q_key = quarantine_key(KEY_A, datetime(2026, 3, 2, 10, tzinfo=UTC))
    assert q_key in before[1]
    redrive_objects = [k for k in before[0] if k.startswith("raw/redrive/")]
    assert sorted(redrive_objects) == sorted(redrive_key(q_key, r) for r in ("schema_violation", "too_late"))


def test_dry_run_shows_the_plan_and_changes_nothing(aws, sim_clock, capsys):
    # Given quarantined schema violations
    _validate(aws, KEY_A, raw_object(record([event(event_id="bad"), event(event_id="worse")])))
    before = _snapshot(aws)
    # When a dry run is asked for
    code, out, _ = _cli(capsys, "quarantine", "redrive", "--dry-run", "--json")
    # Then it names the redrive object and the events, and writes nothing
    assert code == 0
    plan = json.loads(out)
    assert plan["dry_run"] is True
    (item,) = plan["objects"]
    assert (item["reason"], item["entries"], item["exists"], item["outcome"]) == (
        "schema_violation",
        2,
        False,
        None,
    )
    assert item["event_ids"] == ["bad", "worse"]
    assert _snapshot(aws) == before


def test_redrive_after_stricter_size_limit_validates_and_keeps_unfixed_ones(
    aws, sim_clock, capsys, tmp_path, monkeypatch
):
    # Given an object validated under a stricter size limit (events over 400 bytes quarantined as
    # size_violation) with a schema violation the fix does not touch
    big = event(properties={"note": "x" * 600})
    with monkeypatch.context() as strict:
        strict.setattr(judge, "MAX_EVENT_BYTES", 400)
        strict.setattr(reader, "MAX_EVENT_BYTES", 400)
        row = _validate(aws, KEY_A, raw_object(record([event(), big, event(event_id="bad")])))
    assert row["quarantined"] == {"schema_violation": 1, "size_violation": 1}
    # When the default re-drive runs with the real limit back
    code, out, _ = _cli(capsys, "quarantine", "redrive", "--json")
    # Then the big event is validated once, and the schema violation is quarantined again by the re-drive
    assert code == 0
    outcomes = {i["reason"]: i["outcome"] for i in json.loads(out)["objects"]}
    assert outcomes["size_violation"]["validated"] == 1
    assert outcomes["schema_violation"]["quarantined"] == {"schema_violation": 1}
    assert _validated_ids(aws, tmp_path)[big["event_id"]] == 1
    _, out, _ = _cli(capsys, "quarantine", "summary", "--json")
    summary = json.loads(out)
    assert summary["quarantined"] == 2  # what validation set aside; the re-drive's own quarantine is apart
    assert summary["redrive"]["schema_violation"]["still_quarantined"] == 1
    assert summary["redrive"]["size_violation"]["still_quarantined"] == 0
    assert summary["ledger"]["still_quarantined"] == 1 and summary["ledger"]["balances"] is True


def test_erased_is_never_redriven(aws, sim_clock, capsys):
    # Given erased events and a schema violation of a person erased after it was quarantined
    raw, _, state = _stores(aws)
    _validate(
        aws,
        KEY_A,
        raw_object(
            record([event(event_id="bad")], anonymous_id="anon-later"),
            record([event()], anonymous_id="anon-gone"),
        ),
    )
    state.put_tombstone("anonymous_id", id_hash("anon-gone"))
    service._tombstone_cache.clear()
    _validate(aws, KEY_B, raw_object(record([event(at=DAY2)], received_at=DAY2, anonymous_id="anon-gone")))
    state.put_tombstone("anonymous_id", id_hash("anon-later"))
    service._tombstone_cache.clear()
    # When erased is asked for, and when every re-drivable reason is
    code, _, err = _cli(capsys, "quarantine", "redrive", "--reason", "erased")
    _, out, _ = _cli(
        capsys,
        "quarantine",
        "redrive",
        "--json",
        *[f"--reason={r}" for r in ("schema_violation", "too_late")],
    )
    # Then erased is refused, no redrive object carries an erased entry, and the later-erased person's event is
    # quarantined as erased by the re-drive's own validation (the same judge)
    assert code == 2 and "never re-driven" in err
    items = json.loads(out)["objects"]
    assert [(i["reason"], i["entries"]) for i in items] == [("schema_violation", 1)]
    assert items[0]["outcome"]["quarantined"] == {"erased": 1}
    assert not any(".erased." in k for k in raw.list_keys("raw/redrive/"))


def test_summary_reads_a_local_lake_copy(tmp_path, capsys):
    # Given a lake copied to a folder (aws s3 sync), no stack at all
    folder = tmp_path / "lake" / "quarantine" / "dt=2026-03-02" / "hr=10"
    folder.mkdir(parents=True)
    entries = [
        {"reason": "schema_violation", "detail": "page.url: required", "source_object": "raw/x/o1"},
        {"reason": "too_late", "detail": "received 80 h after", "source_object": "raw/x/o1"},
    ]
    (folder / "o1-0123.jsonl").write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    # When summarised from the folder
    code, out, _ = _cli(capsys, "quarantine", "summary", "--json", "--lake-dir", str(tmp_path / "lake"))
    # Then the counts come from the files, and re-drive status is absent (no ledger)
    assert code == 0
    summary = json.loads(out)
    assert summary["by_reason"] == {"schema_violation": 1, "too_late": 1}
    assert summary["schema_violation_fields"] == [{"field": "page.url", "events": 1}]
    assert summary["redrive"] is None and summary["ledger"] is None


def test_redriven_copy_of_an_event_already_validated_is_a_duplicate_downstream(
    aws, sim_clock, capsys, tmp_path
):
    # Given an event validated in one object, and its tracker retry sent 2 h later quarantined as too_late in
    # another (1 h lookback)
    from clickstream.pipeline.manifest import Manifest, ManifestObject, manifest_key
    from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
    from clickstream.sessionize.state import bucket_state_totals

    x = event(at=T0)
    first = _validate(aws, KEY_A, raw_object(record([x, event()])), lookback_hours=1)
    retry = record([x], received_at=T0 + timedelta(hours=2), sent_at=T0 + timedelta(hours=2))
    second = _validate(aws, KEY_B, raw_object(retry), lookback_hours=1)
    assert second["quarantined"] == {"too_late": 1}
    # When too_late is re-driven under the 72 h lookback and the sessionizer reads all three objects
    code, out, _ = _cli(capsys, "quarantine", "redrive", "--reason", "too_late", "--json")
    (item,) = json.loads(out)["objects"]
    assert code == 0 and item["outcome"]["validated"] == 1
    lake = S3ObjectStore(aws.settings.lake_bucket)
    objects = [
        ManifestObject(source_key=k, validated_key=v, validated_at="2026-03-04T12:00:00Z")
        for k, v in (
            (KEY_A, first["validated_key"]),
            (KEY_B, None),
            (item["redrive_key"], item["outcome"]["validated_key"]),
        )
    ]
    manifest = Manifest(
        run_id="run-1", watermark_from=None, watermark_to="2026-03-04T12:00:00Z", n_buckets=1, objects=objects
    )
    lake.put_bytes(manifest_key("run-1"), manifest.model_dump_json().encode())
    result = sessionize_bucket(SessionizeInput(run_id="run-1", bucket=0), lake)
    # Then the event is kept once (the first receipt), the re-driven copy counts as a cross-object duplicate,
    # and the events received reconcile with kept + still quarantined + duplicates
    assert result.n_events == 2
    cross_object = bucket_state_totals(lake, 1).duplicates
    assert cross_object == 1
    _, out, _ = _cli(capsys, "quarantine", "summary", "--json")
    ledger = json.loads(out)["ledger"]
    assert ledger["events_received"] == 3 and ledger["still_quarantined"] == 0
    assert (
        ledger["events_received"] == result.n_events + ledger["still_quarantined"] + ledger["duplicates"] + 1
    )


def test_write_only_leaves_validation_to_the_stack(aws, sim_clock, capsys):
    # Given a quarantined schema violation
    _validate(aws, KEY_A, raw_object(record([event(event_id="bad")])))
    raw, _, state = _stores(aws)
    # When the redrive object is only written, then a full re-drive runs
    _, out, _ = _cli(capsys, "quarantine", "redrive", "--write-only", "--json")
    (item,) = json.loads(out)["objects"]
    written = raw.get_bytes(item["redrive_key"])
    assert item["outcome"] is None and state.get_ledger(item["redrive_key"]) is None
    _, out, _ = _cli(capsys, "quarantine", "redrive", "--json")
    # Then the object was written once (the raw bucket notifies the validate function) and the later run
    # validated it as it was
    (again,) = json.loads(out)["objects"]
    assert again["exists"] is True and raw.get_bytes(item["redrive_key"]) == written
    assert state.get_ledger(item["redrive_key"])["events_in"] == 1
