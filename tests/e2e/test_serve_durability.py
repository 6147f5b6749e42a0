"""``clickstream serve`` keeps what it accepted: ``kill -9`` after the ``202`` or in the middle of a pipeline run
loses nothing and duplicates nothing once it is started again with the same ``--out``; SIGTERM ends promptly
whatever the clients hold open."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.serve_process import ServeProcess, event_ids, token, warehouse_rows
from tests.unit.local.serve_client import batch

pytestmark = pytest.mark.slow


def _events_by_id(out: Path) -> dict[str, tuple[int, str | None]]:
    rows = warehouse_rows(out, "SELECT event_id, count(*), any_value(user_id) FROM events GROUP BY event_id")
    return {event_id: (n, user) for event_id, n, user in rows}


def test_kill_9_after_the_202_loses_nothing_and_a_restart_loads_it_exactly_once(tmp_path: Path):
    out = tmp_path / "serve-output"
    first = ServeProcess(out).start()
    try:
        alice, bob = token(out, "alice"), token(out, "bob")
        # Given alice's first batch accepted and loaded by a pipeline run
        visitor = "0f6f1c1e-8c1b-4c2e-9d1a-6a1f3e7b2c40"
        loaded = batch(3, visitor)
        assert first.post(loaded, alice).status == 202
        run = first.run_pipeline()
        assert run.status == 200 and run.json()["warehouse"]["events"] == 3, run.body
        # And two more batches accepted (202) after that run: alice again, on the same visitor, and bob
        later = [batch(2, visitor), batch(4)]
        assert first.post(later[0], alice).status == 202
        assert first.post(later[1], bob).status == 202
        # When the process is killed before the next pipeline run
        first.kill9()
    finally:
        first.cleanup()
    # Then a restart with the same --out puts the spool through Firehose again and says what never reached a run
    second = ServeProcess(out).start()
    try:
        status = second.request("GET", "/local/status").json()
        assert (status.get("replayed_requests"), status.get("unprocessed_requests")) == (3, 2), status
        # And the next run loads every accepted event exactly once, alice's earlier ones kept
        code, rest, err = second.run_then_stop()
    finally:
        second.cleanup()
    assert code == 0, err
    assert "3 requests put through Firehose again (2 never reached a pipeline run)" in second.lines[2]
    assert "0 requests (0 events) accepted" in rest and "1 pipeline runs" in rest
    rows = _events_by_id(out)
    expected = event_ids(loaded, *later)
    assert sorted(rows) == sorted(expected)  # nothing lost, nothing foreign
    assert all(n == 1 for n, _ in rows.values())  # nothing twice
    subs = {uid for _, uid in rows.values()}
    assert len(subs) == 2 and None not in subs
    print(f"kill -9 after the 202: {len(expected)} events accepted, {len(rows)} in the warehouse, each once")


# The Commit step dies with the process: the warehouse load (an earlier step) has committed, the watermark has not.
DIE_AT_COMMIT = """
import os
import clickstream.pipeline.commit as commit
def _die(*args, **kwargs):
    os._exit(9)
commit.run_commit = _die
"""


def test_kill_during_a_pipeline_run_after_the_load_duplicates_nothing(tmp_path: Path):
    out = tmp_path / "serve-output"
    dying = ServeProcess(out, prelude=DIE_AT_COMMIT).start()
    try:
        posted = [batch(3), batch(2)]
        alice = token(out, "alice")
        for b in posted:
            assert dying.post(b, alice).status == 202
        # When a pipeline run is asked for and the process dies in its Commit step
        with pytest.raises((ConnectionError, OSError)):
            dying.run_pipeline()
        assert dying.wait(timeout=60) == 9
    finally:
        dying.cleanup()
    # Then the load had committed: the warehouse already holds the events
    assert sorted(_events_by_id(out)) == sorted(event_ids(*posted))
    # And after a restart and a run, each of them is there exactly once
    again = ServeProcess(out).start()
    try:
        code, _, err = again.run_then_stop()
    finally:
        again.cleanup()
    assert code == 0, err
    rows = _events_by_id(out)
    assert sorted(rows) == sorted(event_ids(*posted))
    assert all(n == 1 for n, _ in rows.values())


def _stalled_sockets(port: int, n: int) -> list[socket.socket]:
    """``n`` connections that never finish: a third idle, a third with half the headers, a third half a body."""
    held = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 3 == 1:
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Ty" % port)
        elif i % 3 == 2:
            s.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100000\r\n\r\n{"app_id":' % port
            )
        held.append(s)
    return held


def test_sigterm_ends_within_10_s_with_50_stalled_clients_and_leaves_the_warehouse_readable(tmp_path: Path):
    out = tmp_path / "serve-output"
    server = ServeProcess(out).start()
    held: list[socket.socket] = []
    try:
        posted = batch(3)
        assert server.post(posted, token(out, "dana")).status == 202
        assert (
            server.run_pipeline().status == 200
        )  # nothing left for a last pass: the stop is the clients' doing
        # Given 51 clients holding connections open: idle, half-sent headers, half-sent bodies
        held = _stalled_sockets(server.port, 51)
        assert server.request("GET", "/health").status == 200  # the server still answers others
        # When the server is sent SIGTERM (the read timeout is 30 s: only the shutdown path can end them in time)
        code, rest, err, took = server.sigterm(timeout=10)
    finally:
        for s in held:
            s.close()
        server.cleanup()
    # Then it exited cleanly
    assert code == 0, err
    assert "Stopped: 1 requests (3 events) accepted" in rest and "1 pipeline runs" in rest
    # And the warehouse opens and holds the events
    assert sorted(_events_by_id(out)) == sorted(event_ids(posted))
    print(f"SIGTERM with 51 stalled clients: exited in {took:.2f} s")
