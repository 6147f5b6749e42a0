"""The frozen-id filters (``sessionize.idfilter``): what an hourly run reads to find copies of frozen events.

* No false negative: after every run of the frozen-history cases (freezes, thaws, objects delivered again with
  fewer rows, a copy of a frozen event), every frozen row's (visitor, event_id) hash is in its slice's filter and
  index, with filters so small that they grow and are rebuilt along the way.
* A false positive changes nothing: with a probe that says "maybe" to every hash, every run's outputs and the
  final state are the same as with the real filters.
* An hourly run reads the filters, never the frozen-id index (a counting store sees no ``ids-`` GET); a slice
  written before the filters has its filter built once from its index, and exactness holds throughout.
"""

from __future__ import annotations

import itertools
import json
import random
import struct
from collections import Counter
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import event, example, given

from clickstream.core.times import iso
from clickstream.pipeline.manifest import run_bucket_prefix
from clickstream.pipeline.sessionize import SessionizeInput, sessionize_bucket
from clickstream.sessionize import idfilter, state
from clickstream.sessionize.idfilter import BadIdFilter, IdFilter
from clickstream.sessionize.state import bucket_prefix, pointer_key, read_state
from tests.fakes.storage import MemoryObjectStore
from tests.unit.pipeline.test_sessionize import put_run
from tests.unit.pipeline.test_sessionize_history import (
    RULES,
    check_state,
    current_rows,
    frozen_copy_case,
    histories,
)
from tests.unit.pipeline.test_sessionize_incremental import reproducible
from tests.unit.sessionize.data import T0, Stream


class WatchedStore(MemoryObjectStore):
    """The in-memory lake, remembering the keys it served."""

    def __init__(self) -> None:
        super().__init__()
        self.served: list[str] = []

    def get_bytes(self, key: str) -> bytes:
        self.served.append(key)
        return super().get_bytes(key)


def _hashes(
    con: duckdb.DuckDBPyConnection, lake: MemoryObjectStore, work: Path, keys: list[str], expr: str
) -> set:
    out: set[int] = set()
    for i, key in enumerate(keys):
        path = lake.download(key, work / f"{i}.parquet")
        out |= {int(r[0]) for r in con.execute(f"SELECT {expr} FROM read_parquet('{path}')").fetchall()}
    return out


def check_filters(lake: MemoryObjectStore, work: Path) -> Counter:
    """Every frozen row's hash is in its slice's index and filter; returns which filter paths the state shows."""
    seen: Counter = Counter()
    current = read_state(lake, 0, set(lake.list_keys(bucket_prefix(0))))
    if current is None:
        return seen
    con = duckdb.connect()
    for s, files in current.slices.items():
        frozen = _hashes(
            con, lake, work / f"f{s}", files.frozen, f"{state.id_hash_sql('anonymous_id', 'event_id')} AS h"
        )
        if not frozen:
            continue
        assert files.bloom is not None, s
        id_filter = IdFilter.from_bytes(lake.get_bytes(files.bloom))
        assert set(id_filter.probe(frozen)) == frozen  # no false negative
        assert frozen <= _hashes(con, lake, work / f"i{s}", files.id_files, "h")
        seen["filtered"] += 1
        if files.ids_added:
            seen["grown in place"] += 1
        if len(id_filter.layers) > 1:
            seen["grown by a layer"] += 1
    con.close()
    return seen


def test_every_frozen_id_is_in_its_slices_filter_as_filters_grow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # filters sized for 4 ids: a freeze soon overflows a layer, so both ways of growing are taken
    monkeypatch.setattr(idfilter, "ID_FILTER_MIN_CAPACITY", 4)
    reached: Counter = Counter()
    examples = itertools.count()

    @reproducible(max_examples=12)
    @given(case=histories())
    @example(case=frozen_copy_case())
    def check(case: dict) -> None:
        n = next(examples)
        lake, work = MemoryObjectStore(), tmp_path / str(n)
        rules = RULES[case["rules"]]
        seen: Counter = Counter()
        for i, d in enumerate(case["deliveries"]):
            put_run(lake, work, f"run-{i}", d["rows"], watermark_to=iso(d["watermark_to"]))
            result = sessionize_bucket(
                SessionizeInput(run_id=f"run-{i}", bucket=0),
                lake,
                rules=rules,
                lookback_hours=case["lookback_h"],
            )
            seen.update(check_filters(lake, work / f"check{i}"))
            if result.n_thawed_slices:
                seen["thawed"] += 1
        check_state(lake, work / "final", current_rows(case["deliveries"]), rules)
        for label in seen:
            event(label)
        reached.update(set(seen))

    check()
    assert reached["filtered"] > 0
    assert reached["grown in place"] > 0
    assert reached["grown by a layer"] > 0
    assert reached["thawed"] > 0


def _run_all(case: dict, lake: MemoryObjectStore, work: Path) -> list[dict[str, bytes]]:
    """Every run of the case; each run's output files as bytes."""
    outputs = []
    for i, d in enumerate(case["deliveries"]):
        put_run(lake, work, f"run-{i}", d["rows"], watermark_to=iso(d["watermark_to"]))
        sessionize_bucket(
            SessionizeInput(run_id=f"run-{i}", bucket=0),
            lake,
            rules=RULES[case["rules"]],
            lookback_hours=case["lookback_h"],
        )
        prefix = run_bucket_prefix(f"run-{i}", 0)
        outputs.append({k: lake.get_bytes(k) for k in lake.list_keys(prefix) if k.endswith(".parquet")})
    return outputs


def test_a_false_candidate_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    examples = itertools.count()
    false_candidates = Counter()

    @reproducible(max_examples=6)
    @given(case=histories())
    @example(case=frozen_copy_case())
    def check(case: dict) -> None:
        n = next(examples)
        real = _run_all(case, MemoryObjectStore(), tmp_path / f"{n}-real")
        with monkeypatch.context() as m:  # every hash a candidate: the frozen rows must decide
            m.setattr(IdFilter, "probe", lambda self, hashes: list(hashes))
            lake = WatchedStore()
            always = _run_all(case, lake, tmp_path / f"{n}-always")
        assert always == real
        check_state(lake, tmp_path / f"{n}-final", current_rows(case["deliveries"]), RULES[case["rules"]])
        false_candidates["frozen rows read"] += any("/frozen-" in k for k in lake.served)

    check()
    assert false_candidates["frozen rows read"] > 0


def _days_of_runs(lake: MemoryObjectStore, work: Path, case: dict, first: int, last: int) -> list:
    results = []
    for i, d in enumerate(case["deliveries"][first:last], start=first):
        put_run(lake, work, f"run-{i}", d["rows"], watermark_to=iso(d["watermark_to"]))
        results.append(
            sessionize_bucket(
                SessionizeInput(run_id=f"run-{i}", bucket=0), lake, rules=RULES["plain"], lookback_hours=1
            )
        )
    return results


def _daily_case(days: int) -> dict:
    """Three visitors with a few events every day (each day's run freezes the days before), and each day a retry
    of an event two days old (its first copy frozen)."""
    s, deliveries = Stream(), []
    for day in range(days):
        at = T0 + timedelta(days=day)
        rows = [
            s.add(f"v{v}", (t := at + timedelta(minutes=5 * k + v)), received_at=t + timedelta(seconds=1))
            for v in range(3)
            for k in range(3)
        ]
        if day >= 2:
            first = deliveries[day - 2]["rows"][0]
            rows.append(s.copy(first, received_at=at + timedelta(hours=1), source_object=f"raw/retry{day}"))
        for row in rows:
            row["source_object"] = f"raw/day{day}-{row['source_object'].rsplit('/', 1)[-1]}"
        deliveries.append({"rows": rows, "watermark_to": at + timedelta(hours=3)})
    return {"rules": "plain", "lookback_h": 1, "deliveries": deliveries}


def test_an_hourly_run_reads_the_filters_not_the_frozen_id_index(tmp_path: Path) -> None:
    # Given a store a week old, one run a day, each bringing a copy of a frozen event
    case = _daily_case(7)
    lake = WatchedStore()
    results = _days_of_runs(lake, tmp_path, case, 0, 7)
    # Then the runs found the frozen copies (held for the dedupe) through the filters alone
    assert sum(r.frozen_rows_read for r in results) > 0
    assert any("/bloom-" in k for k in lake.served)
    assert not [k for k in lake.served if "/ids-" in k]
    assert all(r.id_rows_read == 0 for r in results)
    check_state(lake, tmp_path / "final", current_rows(case["deliveries"]), RULES["plain"])


def test_a_slice_written_before_the_filters_gets_one_built_from_its_index_once(tmp_path: Path) -> None:
    case = _daily_case(7)
    lake = WatchedStore()
    _days_of_runs(lake, tmp_path, case, 0, 4)
    # Given a pointer as written before the filters: no filter named (the index whole in ``ids``)
    doc = state.BucketState.from_json(json.loads(lake.get_bytes(pointer_key(0))))
    con = duckdb.connect()
    for s, files in doc.slices.items():
        if files.bloom is None:
            continue
        hashes = _hashes(con, lake, tmp_path / f"old{s}", files.id_files, "h")
        path = tmp_path / f"old-ids-{s}.parquet"
        con.execute(
            f"COPY (SELECT unnest($1::UBIGINT[]) AS h) TO '{path}' (FORMAT parquet)", [sorted(hashes)]
        )
        lake.upload(path, files.ids or "")
        lake.delete(files.bloom)
        files.bloom, files.ids_added = None, []
    con.close()
    lake.put_bytes(pointer_key(0), json.dumps(doc.to_json()).encode())
    # When the next run touches those slices, it builds each filter from the index; the run after reads filters
    lake.served.clear()
    (migrating,) = _days_of_runs(lake, tmp_path, case, 4, 5)
    assert migrating.id_rows_read > 0
    assert any("/ids-" in k for k in lake.served)
    lake.served.clear()
    after = _days_of_runs(lake, tmp_path, case, 5, 7)
    assert all(r.id_rows_read == 0 for r in after)
    assert not [k for k in lake.served if "/ids-" in k]
    check_filters(lake, tmp_path / "check")
    check_state(lake, tmp_path / "final", current_rows(case["deliveries"]), RULES["plain"])


def test_the_filter_file_round_trips_and_a_foreign_one_is_refused() -> None:
    ids = [0, 1, 2**63, 2**64 - 1]
    f = IdFilter.of(ids)
    back = IdFilter.from_bytes(f.to_bytes())
    assert [(x.count, x.capacity) for x in back.layers] == [(4, idfilter.ID_FILTER_MIN_CAPACITY)]
    assert back.probe(ids) == ids
    head = f.to_bytes()[:7]  # magic, version, one layer
    empty_layer = head + struct.pack("<QQdQ", 0, 1, 0.5, 8) + bytes(8)
    short_layer = head + struct.pack("<QQdQ", 0, 1, 0.5, 3) + b"\x01\x00\x00"  # rbloom would panic
    endless = head + struct.pack("<QQdQ", 0, 1, 0.5, 16) + (2**62).to_bytes(8, "little") + bytes(8)
    bad_files = (b"", b"PAR1" + bytes(40), f.to_bytes()[:10], f.to_bytes()[:-1], f.to_bytes() + b"x")
    for bad in (*bad_files, empty_layer, short_layer, endless):
        with pytest.raises(BadIdFilter):
            IdFilter.from_bytes(bad)


def test_a_filter_grown_by_layers_keeps_every_id_and_its_false_positive_rate() -> None:
    rng = random.Random(3)
    f, added = IdFilter(), []
    for n in (300, 900, 3000, 9000, 27000):  # each freeze overflows the last layer
        batch = [rng.getrandbits(64) for _ in range(n)]
        f = IdFilter.from_bytes(f.to_bytes()) if f.layers else f
        f.add(batch)
        added += batch
    assert len(f.layers) >= 4
    assert [x.fp_rate for x in f.layers] == [
        idfilter.ID_FILTER_FP_RATE / 2 ** (i + 1) for i in range(len(f.layers))
    ]
    assert f.count == len(added) and all(x.count <= x.capacity for x in f.layers)
    assert f.probe(added) == added
    others = [rng.getrandbits(64) for _ in range(200_000)]
    assert len(f.probe(others)) <= 2  # 1e-6 over 200,000 probes: 0.2 expected
