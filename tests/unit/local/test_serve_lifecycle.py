"""``clickstream serve`` endpoints started and stopped one after the other: the spool across restarts, a stop that
does not wait on stalled clients, the Host names it accepts, and a failed validation answered as a JSON 500 that
names the object (each test runs its own endpoint; the moto stack behind one is process-wide)."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from clickstream.local.serve import ServeError, ServeOptions, closing_line, running
from clickstream.local.spool import Spool
from tests.unit.local.serve_client import Served, batch


def _warehouse(out: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# -- the spool -----------------------------------------------------------------------------------------------------
def test_a_202_is_answered_once_the_records_are_in_the_spool(tmp_path):
    s = Served(tmp_path / "out")
    try:
        posted = batch(3)
        # When a request is accepted
        assert s.post(posted, "alice")[0] == 202
        # Then its raw record is on disk under DIR/spool before any pipeline run, the events in it as sent
        [entry] = s.server.endpoint.spool.entries()
        [record] = [json.loads(r) for r in entry.records()]
        assert [e["event_id"] for e in record["events"]] == [e["event_id"] for e in posted["events"]]
        assert record["user_id"] == s.issuer.subject("alice")
        # And a refused request writes nothing there
        assert s.request("POST", "/v1/events", b"{not json", {"Authorization": "Bearer x"})[0] == 401
        assert len(s.server.endpoint.spool.entries()) == 1
    finally:
        s.stop()


def test_a_restart_keeps_a_returning_visitors_earlier_events(tmp_path):
    out = tmp_path / "out"
    visitor = "7d3c1e0a-5b2f-4c8e-9a61-2f0b7e4d9c13"
    first, second = batch(3, visitor), batch(2, visitor)
    # Given a visitor whose first batch was loaded in one session
    s = Served(out)
    try:
        assert s.post(first, "alice")[0] == 202
        assert s.request("POST", "/local/run-pipeline")[1]["warehouse"]["events"] == 3
    finally:
        s.stop()
    # When the same visitor posts again in the next session, and it runs the pipeline
    s = Served(out)
    try:
        assert s.post(second, "alice")[0] == 202
        status, run = s.request("POST", "/local/run-pipeline")
        assert status == 200 and run["status"] == "SUCCEEDED"
        replayed = (s.server.endpoint.replayed_requests, run["requests_since_previous_run"])
    finally:
        s.stop()
    # Then the warehouse holds both batches, each event once (a load replaces the visitor's rows whole: the lake
    # behind it was rebuilt from the spool)
    rows = _warehouse(out, "SELECT event_id, count(*) FROM events GROUP BY event_id")
    expected = {e["event_id"] for e in first["events"] + second["events"]}
    assert {r[0] for r in rows} == expected and all(n == 1 for _, n in rows)
    # And the second session put the first one's request through again, counting only its own as new
    assert replayed == (1, 1)


def test_a_second_server_on_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    holder = Spool(out).open()
    try:
        with pytest.raises(ServeError, match="one clickstream serve per output folder"):
            running(ServeOptions(port=0, out=out)).__enter__()
    finally:
        holder.close()
    # And once the other process is gone, the folder can be served again
    with running(ServeOptions(port=0, out=out)) as server:
        assert server.endpoint.spool.entries() == []


# -- hosts ---------------------------------------------------------------------------------------------------------
def test_allow_host_adds_a_name(tmp_path):
    s = Served(tmp_path / "out", allow_hosts=("shop.test",))
    try:
        status, _, _ = s.raw(f"GET /health HTTP/1.1\r\nHost: shop.test:{s.port}\r\n\r\n".encode())
        assert status == 200
        status, _, _ = s.raw(f"GET /health HTTP/1.1\r\nHost: other.test:{s.port}\r\n\r\n".encode())
        assert status == 403
    finally:
        s.stop()


# -- stopping ------------------------------------------------------------------------------------------------------
def test_stopping_does_not_wait_for_stalled_clients(tmp_path):
    # Given a server whose read deadlines are long, and 30 clients holding connections open in every way
    s = Served(tmp_path / "out", idle_timeout=300, read_timeout=300)
    held = []
    try:
        for i in range(30):
            c = s.connect()
            if i % 3 == 1:
                c.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Par" % s.port)
            elif i % 3 == 2:
                c.sendall(
                    b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 50\r\n\r\n{" % s.port
                )
            held.append(c)
        assert s.request("GET", "/health")[0] == 200
        # When it is stopped
        stopper = threading.Thread(target=s.stop)
        stopper.start()
        stopper.join(timeout=60)
        # Then it stopped (the read deadline alone would have kept it 300 s) and every stalled client was closed
        assert not stopper.is_alive()
        for c in held:
            c.settimeout(10)
            with contextlib.suppress(ConnectionResetError):  # closed, or reset with unread data
                assert c.recv(10) == b""
    finally:
        for c in held:
            c.close()
        s.stop()


# -- a failed validation -------------------------------------------------------------------------------------------
def test_a_failed_validation_is_a_json_500_naming_the_object_and_the_others_still_load(tmp_path, monkeypatch):
    s = Served(tmp_path / "out")
    try:
        endpoint = s.server.endpoint
        real = endpoint.validate

        def validate(event: dict[str, Any], context: Any) -> dict[str, Any]:
            # A raw object the validate handler cannot read: the one holding eve's visitor
            from clickstream.adapters.storage import S3ObjectStore
            from clickstream.validate.notifications import parse_notification

            for record in event["Records"]:
                for ref in parse_notification(record["body"]):
                    if b"eve-visitor" in S3ObjectStore(ref.bucket).get_bytes(ref.key):
                        raise ValueError("cannot read this object")
            return real(event, context)

        monkeypatch.setattr(endpoint, "validate", validate)
        # Given a good request from bob and a poisoned one from eve
        good = batch(2)
        assert s.post(good, "bob")[0] == 202
        bad = batch(3, anonymous_id="eve-visitor-00000000-0000-4000-8000-000000000000")
        assert s.post(bad, "eve")[0] == 202
        # When the pipeline is run
        status, answer = s.request("POST", "/local/run-pipeline")
        # Then the answer is a JSON 500 naming the raw object and the error
        assert status == 500
        error = answer["error"]
        assert error["code"] == "validation_failed"
        [failed] = error["objects"]
        assert failed["object"].startswith("raw/") and failed["object"] in error["message"]
        assert "ValueError: cannot read this object" in failed["error"]
        # And the failure is counted as one, never as validated; bob's events still reached the warehouse
        run = answer["run"]
        assert run["validate_failures"] >= 1
        assert run["objects_validated"] == 2  # bob's object and S3's test notification sent at start-up
        assert run["status"] == "SUCCEEDED" and run["warehouse"]["events"] == 2
        # And the status and the closing line say so
        assert s.request("GET", "/local/status")[1]["failed_objects"] == [failed]
        s.stop()
        line = closing_line(endpoint)
        assert "1 raw object(s) FAILED validation" in line and failed["object"] in line
        # And the spool still holds eve's request, and a run that failed an object does not mark it loaded
        assert len(endpoint.spool.entries()) == 2 and endpoint.spool.loaded == 0
    finally:
        s.stop()


def test_a_batch_that_failed_whole_is_described_by_its_records_error():
    # Given the error Powertools raises when every record of a batch failed (what an unreadable object gives)
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from clickstream.local.runner import _describe_error

    def handler(record: Any) -> None:
        raise ValueError("Not a gzipped file (b'\\x1f\\x8b')")

    event = {"Records": [{"messageId": "m1", "body": "{}", "eventSource": "aws:sqs", "attributes": {}}]}
    with pytest.raises(Exception) as caught:
        process_partial_response(event=event, record_handler=handler, processor=BatchProcessor(EventType.SQS))
    # Then the description is the record's own error, not Powertools' wrapper
    assert _describe_error(caught.value) == "ValueError: Not a gzipped file (b'\\x1f\\x8b')"


def test_the_command_line_takes_host_names_and_a_read_timeout(capsys):
    from clickstream.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.allow_hosts is None and args.read_timeout == 30.0
    args = build_parser().parse_args(
        ["serve", "--allow-host", "shop.test", "--allow-host", "10.0.0.5", "--read-timeout", "2.5"]
    )
    assert args.allow_hosts == ["shop.test", "10.0.0.5"] and args.read_timeout == 2.5
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--read-timeout", "0"])
    assert "must be positive" in capsys.readouterr().err


def test_a_request_spooled_but_not_put_to_firehose_is_accepted_and_delivered_later(tmp_path, monkeypatch):
    out = tmp_path / "out"
    posted = batch(3)
    s = Served(out)
    try:
        # Given Firehose refusing every put
        endpoint = s.server.endpoint

        def refuse(records: list[bytes]) -> None:
            raise ConnectionError("Firehose is unreachable")

        monkeypatch.setattr(endpoint.firehose, "put_records", refuse)
        # When a request arrives: it is accepted, since its records are in the spool
        assert s.post(posted, "alice")[0] == 202
        # And a pipeline run says why it cannot deliver them, in JSON
        status, answer = s.request("POST", "/local/run-pipeline")
        assert status == 500 and "Firehose is unreachable" in answer["error"]["message"]
        # And the stop's last pass fails too, and says the spool keeps them
        s.stop()
        assert "last pipeline pass FAILED" in closing_line(endpoint)
    finally:
        s.stop()
    monkeypatch.undo()
    # Then the next start delivers them, and a run loads them
    s = Served(out)
    try:
        status, run = s.request("POST", "/local/run-pipeline")
        assert status == 200 and run["requests_since_previous_run"] == 1
    finally:
        s.stop()
    rows = _warehouse(out, "SELECT event_id FROM events")
    assert sorted(r[0] for r in rows) == sorted(e["event_id"] for e in posted["events"])


def test_a_spool_that_cannot_write_answers_503_and_accepts_nothing(tmp_path, monkeypatch):
    s = Served(tmp_path / "out")
    try:
        endpoint = s.server.endpoint

        def disk_full(records: list[bytes]) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(endpoint.spool, "append", disk_full)
        # When the request's records cannot be made durable
        status, answer = s.post(batch(2), "alice")
        # Then the client is told to retry (the API's 503), and nothing is counted or queued for a run
        assert status == 503 and answer["error"]["code"]
        assert endpoint.accepted_requests == 0 and endpoint.unprocessed_requests == 0
        monkeypatch.undo()
        assert endpoint.spool.entries() == []
    finally:
        s.stop()
