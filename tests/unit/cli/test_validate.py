"""``clickstream validate``: the validate step on local raw objects (issue 15), held equal to the step itself."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.core import clock
from clickstream.core.config import Settings
from clickstream.core.times import iso as iso_instant
from clickstream.validate import engine
from clickstream.validate.step import validate_object
from clickstream_cli.main import main
from tests.fakes.state import MemoryStateStore
from tests.fakes.storage import MemoryObjectStore
from tests.unit.validate.helpers import T0, event, raw_object, record
from tests.unit.validate.test_hostile_property import hostile_text

MTIME = datetime(2026, 3, 2, 11, 4, 5, 123456, tzinfo=UTC)


class NoTombstones(MemoryStateStore):
    def tombstones(self) -> frozenset[str]:
        return frozenset()


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, list[dict], str]:
    code = main(["validate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def write(path: Path, data: bytes, *, gz: bool = False, mtime: datetime = MTIME) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    os.utime(path, ns=(int(mtime.timestamp()) * 10**9 + mtime.microsecond * 1000,) * 2)
    return path


def rows(path: Path) -> list[tuple]:
    return duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def mixed_object() -> bytes:
    """Valid events, hostile control characters in free text and in an identifier, a line that is not JSON, a
    retried event (duplicate) and an event id reused with another payload (duplicate_conflict)."""
    first = event("page_view", at=T0)
    hostile = event("view_item", at=T0 + timedelta(seconds=1))
    hostile["page"]["title"] = "Zen\x00book\u2028 14\x1b[31m\r\n"
    return raw_object(
        record([first, event("add_to_cart", at=T0 + timedelta(seconds=3))]),
        record([hostile], user_agent="Mozilla/5.0\x07\x00 (X11)"),
        "{not json at all",
        record([first], received_at=T0 + timedelta(seconds=9)),  # the retry: same payload
        record(
            [{**first, "page": {**first["page"], "title": "other"}}], received_at=T0 + timedelta(seconds=9)
        ),
        record([event("page_view", at=T0)], anonymous_id="anon\x00\x1f-2\u202e"),
    )


def step_reference(data: bytes, key: str) -> tuple[dict, MemoryObjectStore]:
    """What ``validate_object`` (the Lambda's function) makes of ``data`` under ``key`` with its clock at MTIME."""
    raw, lake = MemoryObjectStore("raw"), MemoryObjectStore("lake")
    raw.put_bytes(key, data)
    clock.set_clock(lambda: MTIME)
    try:
        row = validate_object(key, settings=Settings(), raw_store=raw, lake_store=lake, state=NoTombstones())
    finally:
        clock.set_clock(None)
    item = {k: iso_instant(v) if isinstance(v, datetime) else v for k, v in row.as_item().items()}
    return item, lake


@pytest.mark.parametrize("path_", ["python", "engine"])
@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_a_mixed_object_gives_what_the_step_gives_row_for_row(tmp_path, capsys, monkeypatch, gz, path_):
    if path_ == "engine":  # the set-based engine judges objects from 2 MiB; this one is forced onto it
        monkeypatch.setattr(engine, "ENGINE_MIN_BYTES", 0)
    # Given a mixed raw object, gzip or plain
    data = mixed_object()
    src = write(tmp_path / ("obj-1.gz" if gz else "obj-1.jsonl"), data, gz=gz)
    # When the command validates it
    code, ledger, err = cli(capsys, src, "--out", tmp_path / "out")
    # Then it exits 0 (bad events are quarantined, not errors) with one ledger line, and nothing on stderr
    assert code == 0 and err == "" and len(ledger) == 1
    line = ledger[0]
    assert line["events_in"] == line["validated"] + line["quarantined_total"] + line["duplicates"]
    assert line["duplicates"] == 1
    assert {"unparseable_record", "duplicate_conflict"} <= set(line["quarantined"])
    # And its rows, quarantine lines and ledger are exactly the step's for the same bytes under the same key
    ref, lake = step_reference(src.read_bytes(), src.name)
    stem = "obj-1" if gz else "obj-1.jsonl"
    assert {k: v for k, v in line.items() if not k.endswith("_path")} == ref
    parquet, quarantine = tmp_path / "out" / f"{stem}.parquet", tmp_path / "out" / f"{stem}.quarantine.jsonl"
    assert line["validated_path"] == str(parquet) and line["quarantine_path"] == str(quarantine)
    ref_parquet = tmp_path / "ref.parquet"
    ref_parquet.write_bytes(lake.objects[ref["validated_key"]])
    assert rows(parquet) == rows(ref_parquet) and len(rows(parquet)) == line["validated"]
    assert quarantine.read_bytes() == lake.objects[ref["quarantine_key"]]
    # And the hostile title was stored without its control characters
    titles = duckdb.connect().execute(f"SELECT page_title FROM read_parquet('{parquet}')").fetchall()
    assert any(t and t.startswith("Zen") for (t,) in titles)
    assert all(not any(ord(c) < 0x20 for c in t or "") for (t,) in titles)


def test_a_second_run_writes_the_same_rows_quarantine_and_ledger(tmp_path, capsys):
    src = write(tmp_path / "in" / "obj.gz", mixed_object(), gz=True)
    out = tmp_path / "out"
    code1, ledger1, _ = cli(capsys, src, "--out", out)
    first = (rows(out / "obj.parquet"), (out / "obj.quarantine.jsonl").read_bytes())
    code2, ledger2, _ = cli(capsys, src, "--out", out)
    assert code1 == code2 == 0
    assert ledger1 == ledger2 and ledger1[0]["validated_at"] == "2026-03-02T11:04:05.123456Z"
    assert (rows(out / "obj.parquet"), (out / "obj.quarantine.jsonl").read_bytes()) == first
    # And an object fixed since (nothing to quarantine any more) loses its stale quarantine file
    write(src, raw_object(record([event()])), gz=True)
    code3, ledger3, _ = cli(capsys, src, "--out", out)
    assert code3 == 0 and ledger3[0]["quarantine_path"] is None
    assert not (out / "obj.quarantine.jsonl").exists() and len(rows(out / "obj.parquet")) == 1


def test_a_missing_file_exits_2_with_one_line_after_the_others_are_written(tmp_path, capsys):
    a = write(tmp_path / "a.gz", raw_object(record([event()])), gz=True)
    b = write(tmp_path / "b.jsonl", raw_object(record([event(), event()])))
    code, ledger, err = cli(capsys, a, tmp_path / "missing.gz", b, "--out", tmp_path / "out")
    assert code == 2
    assert err == f"clickstream validate: {tmp_path / 'missing.gz'}: cannot read: No such file or directory\n"
    assert [line["validated"] for line in ledger] == [1, 2]
    assert (
        len(rows(tmp_path / "out" / "a.parquet")) == 1
        and len(rows(tmp_path / "out" / "b.jsonl.parquet")) == 2
    )


def test_a_broken_gzip_and_an_object_that_is_not_json_lines_exit_2(tmp_path, capsys):
    good = write(tmp_path / "good.gz", raw_object(record([event()])), gz=True)
    broken = write(tmp_path / "broken.gz", gzip.compress(raw_object(record([event()])))[:-12])
    binary = write(tmp_path / "picture.png", bytes(range(256)) * 8)
    code, ledger, err = cli(capsys, broken, binary, good, "--out", tmp_path / "out")
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith(f"clickstream validate: {broken}: not a readable gzip object: ")
    assert lines[1].startswith(f"clickstream validate: {binary}: not JSON lines of raw records: ")
    # The binary object was still read and quarantined whole, as the Lambda would; the good one validated
    assert [(x["source_key"], x["validated"]) for x in ledger] == [("picture.png", 0), ("good.gz", 1)]
    assert ledger[0]["quarantined"] == {"unparseable_record": ledger[0]["records"]}
    assert not (tmp_path / "out" / "broken.parquet").exists()


def test_never_overwrites_an_input_nor_one_objects_outputs_with_anothers(tmp_path, capsys):
    # Given inputs in the output folder, one of them named like another's output, and two objects of one name
    x = write(tmp_path / "d" / "x", raw_object(record([event()])))
    x_parquet = write(tmp_path / "d" / "x.parquet", raw_object(record([event()])))
    twin = write(tmp_path / "e" / "x.parquet", raw_object(record([event()])))
    before = x_parquet.read_bytes()
    code, ledger, err = cli(capsys, x, x_parquet, twin, "--out", tmp_path / "d")
    # Then x is refused (its Parquet would replace an input), x.parquet validates, its twin is refused
    assert code == 2
    assert x_parquet.read_bytes() == before
    assert [line["source_key"] for line in ledger] == ["x.parquet"]
    assert err.splitlines()[0] == (
        f"clickstream validate: {x}: refusing to overwrite an input with {tmp_path / 'd' / 'x.parquet'}"
    )
    assert err.splitlines()[1].startswith(f"clickstream validate: {twin}: its outputs x.parquet.parquet")


def test_received_at_from_key_takes_the_arrival_hour_from_the_firehose_folders(tmp_path, capsys):
    # Given an object whose events were received at 10:00 but which Firehose filed under hour 12
    data = raw_object(record([event()]))
    src = write(
        tmp_path / "lake" / "raw" / "dt=2026-03-02" / "hr=12" / "fh-1-2026-03-02-12-00-00-ab.gz", data
    )
    # When validated by its key, its source key is the raw bucket's and its arrival hour the folder's
    code, ledger, _ = cli(capsys, src, "--out", tmp_path / "out", "--received-at-from-key")
    assert code == 0
    assert ledger[0]["source_key"] == "raw/dt=2026-03-02/hr=12/fh-1-2026-03-02-12-00-00-ab.gz"
    assert ledger[0]["arrival_hour"] == "2026-03-02T12:00:00.000000Z"
    assert ledger[0] == {**step_reference(data, ledger[0]["source_key"])[0], **ledger[0]}
    parquet = tmp_path / "out" / "fh-1-2026-03-02-12-00-00-ab.parquet"
    sources = (
        duckdb.connect().execute(f"SELECT DISTINCT source_object FROM read_parquet('{parquet}')").fetchall()
    )
    assert sources == [(ledger[0]["source_key"],)]
    # And without the flag the source key is the file name and the arrival hour that of its received_at
    code, ledger, _ = cli(capsys, src, "--out", tmp_path / "out2")
    assert code == 0 and ledger[0]["source_key"] == src.name
    assert ledger[0]["arrival_hour"] == "2026-03-02T10:00:00.000000Z"
    # And a file outside such folders (or an hour that is none) is refused with one line
    odd = write(tmp_path / "dt=2026-03-02" / "hr=25" / "x.gz", data)
    code, ledger, err = cli(capsys, odd, "--out", tmp_path / "out3", "--received-at-from-key")
    assert code == 2 and ledger == []
    assert err == f"clickstream validate: {odd}: --received-at-from-key: not under dt=YYYY-MM-DD/hr=HH/ " + (
        "folders (a valid hour) as Firehose writes raw objects\n"
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile_text, field=st.sampled_from(["title", "user_agent", "anonymous_id", "event_type", "url"]))
def test_hostile_text_in_a_field_never_breaks_the_command(text, field):
    ev = event()
    fields: dict = {}
    if field == "title":
        ev["page"]["title"] = text
    elif field == "url":
        ev["page"]["url"] = "https://shop.example.com/" + text
    elif field == "event_type":
        ev["event_type"] = text
    else:
        fields[field] = text
    data = raw_object(record([ev, event()], **fields))
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch("sys.stdout") as out,
        mock.patch("sys.stderr") as err,
    ):
        src = write(Path(tmp) / "hostile.jsonl", data)
        code = main(["validate", str(src), "--out", str(Path(tmp) / "out")])
        printed = "".join(c.args[0] for c in out.write.call_args_list)
        complaints = "".join(c.args[0] for c in err.write.call_args_list)
        ref, _ = step_reference(data, "hostile.jsonl")
    assert code == 0 and complaints == ""
    (line,) = printed.splitlines()
    ledger = json.loads(line)
    assert (
        ledger["events_in"] == 2 == ledger["validated"] + ledger["quarantined_total"] + ledger["duplicates"]
    )
    assert {k: v for k, v in ledger.items() if not k.endswith("_path")} == ref


def test_gzip_is_told_by_its_first_bytes_not_by_the_name(tmp_path, capsys):
    data = raw_object(record([event(), event()]))
    plain_named_gz = write(tmp_path / "plain.gz", data)
    gzip_named_jsonl = write(tmp_path / "zipped.jsonl", data, gz=True)
    code, ledger, err = cli(capsys, plain_named_gz, gzip_named_jsonl, "--out", tmp_path / "out")
    assert code == 0 and err == ""
    assert [(x["source_key"], x["validated"]) for x in ledger] == [("plain.gz", 2), ("zipped.jsonl", 2)]
    assert (
        len(rows(tmp_path / "out" / "plain.parquet"))
        == len(rows(tmp_path / "out" / "zipped.jsonl.parquet"))
        == 2
    )


def test_a_hard_link_to_an_input_is_never_overwritten_and_odd_names_and_folders_are_refused(tmp_path, capsys):
    src = write(tmp_path / "in" / "y.gz", raw_object(record([event()])), gz=True)
    (tmp_path / "out").mkdir()
    os.link(src, tmp_path / "out" / "y.parquet")
    before = src.read_bytes()
    code, ledger, err = cli(capsys, src, "--out", tmp_path / "out")
    assert code == 2 and ledger == [] and src.read_bytes() == before
    assert err.startswith(f"clickstream validate: {src}: refusing to overwrite an input with ")
    # A file name that is not UTF-8 (an S3 key always is), and an output folder that is a file
    odd = write(tmp_path / os.fsdecode(b"odd-\xff.jsonl"), raw_object(record([event()])))
    code, ledger, err = cli(capsys, odd, "--out", tmp_path / "out2")
    assert code == 2 and ledger == [] and err.endswith(": the file name is not UTF-8 (an S3 key always is)\n")
    assert "\\udcff" in err or "\\xff" in err  # the name shown escaped, on one line
    code, _, err = cli(capsys, src, "--out", src)
    assert code == 2 and err == f"clickstream validate: {src}: cannot create: File exists\n"


def test_a_failure_inside_the_step_is_one_clipped_line_and_leaves_no_outputs_of_that_object(tmp_path, capsys):
    # The step raising (a bug, or a library failing on content) costs that object only: exit 2, one line on stderr
    # with the error clipped as the Lambda logs it, no half outputs; the next object is still validated.
    a = write(tmp_path / "a.jsonl", raw_object(record([event()])))
    b = write(tmp_path / "b.jsonl", raw_object(record([event(), event()])))
    real = validate_object

    def failing_on_a(source_key, **kwargs):
        if source_key == "a.jsonl":
            kwargs["lake_store"].put_bytes("validated/half.parquet", b"half")
            raise RuntimeError("boom " + "x" * 5000)
        return real(source_key, **kwargs)

    with mock.patch("clickstream.validate.step.validate_object", failing_on_a):
        code, ledger, err = cli(capsys, a, b, "--out", tmp_path / "out")
    assert code == 2
    assert err.startswith(f"clickstream validate: {a}: the validate step failed: RuntimeError: boom ")
    assert err.count("\n") == 1 and len(err) < 2000
    assert [line["validated"] for line in ledger] == [2]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.jsonl.parquet"]
