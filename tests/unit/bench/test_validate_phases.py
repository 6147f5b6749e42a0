"""The validate step's phase profile: every phase is timed, the parts add up, and the engine is put back."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.validate import phases, run
from clickstream.validate import engine as engine_module


def test_the_profile_times_every_phase_of_the_engine_and_leaves_it_unwrapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two small objects of generated store traffic, judged set-wise (the engine's size threshold lowered)
    paths, n_events, _ = run.generate(3000, 2, tmp_path / "raw")
    originals = (engine_module.Engine.judge, engine_module.decode_object, engine_module.copy_parquet)
    out = tmp_path / "out"
    out.mkdir()
    # When the engine runs under the phase clocks
    events, total, clock, floor = phases.profile(paths, out, min_bytes=0)
    # Then every event was judged, each phase and each part of enrich took time, and within the engine's total
    assert events == n_events
    assert all(clock[p] > 0 for p in phases.PHASES), clock
    assert all(clock[p] > 0 for p in phases.ENRICH_PARTS), clock
    assert sum(clock[p] for p in phases.PHASES) <= total
    assert sum(clock[p] for p in phases.ENRICH_PARTS) <= clock["enrich"]
    assert floor > 0 and len(list(out.glob("*.parquet"))) == 2
    # And the engine's own functions are back once the profile ends
    assert (engine_module.Engine.judge, engine_module.decode_object, engine_module.copy_parquet) == originals
    # And the report names every phase with its share
    text = "\n".join(phases.report(events, total, clock, floor))
    for name in (*phases.PHASES, "other", "typed-decode floor"):
        assert name in text
