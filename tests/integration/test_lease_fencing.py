"""Fencing through the real state machine and handlers: an execution whose lease was taken over while it ran writes
no bucket state, moves no watermark, and fails through the failure notice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from clickstream.adapters.storage import S3ObjectStore
from clickstream.core.times import iso
from clickstream.pipeline.lease import PIPELINE_LEASE
from clickstream_local import bridge
from tests.integration.test_state_machine import T0, _notifications, sfn  # noqa: F401  (the stack fixture)
from tests.unit.sessionize.data import Stream, write_parquet

OTHER = "arn:aws:states:us-east-1:123456789012:execution:p:the-other-one"


def test_a_run_whose_lease_was_taken_over_writes_no_state_and_fails(sfn, tmp_path):  # noqa: F811
    # Given a validated object after the watermark, and a Sessionize step during which the lease expires and
    # another execution takes it (the real handler runs after that)
    lake, state = S3ObjectStore(sfn["settings"].lake_bucket), sfn["state"]
    state.set_watermark(T0, "run-0")
    stream = Stream("raw/obj-1")
    stream.add("visitor-x", T0 + timedelta(minutes=5), event_id="x-1")
    lake.upload(write_parquet(tmp_path / "obj-1.parquet", stream.rows), "validated/obj-1.parquet")
    state.put_ledger(
        {
            "source_key": "raw/obj-1",
            "validated_at": T0 + timedelta(minutes=10),
            "validated_key": "validated/obj-1.parquet",
        }
    )
    real_sessionize = bridge.load_handler("sessionize")

    def sessionize_after_a_takeover(event, context):
        later = datetime.now(UTC) + timedelta(days=1)  # past the expiry of the lease Plan took
        assert state.acquire_lease(PIPELINE_LEASE, OTHER, later + timedelta(hours=2), now=later)
        return real_sessionize(event, context)

    arn = bridge.create_pipeline_state_machine(sfn["stack"], {"sessionize": sessionize_after_a_takeover})
    # When the hourly run executes
    run = bridge.run_pipeline(arn, "hourly-1", {"as_of": iso(T0 + timedelta(hours=1))})
    # Then it fails without writing any bucket state, the watermark stays, the other execution keeps the lease,
    # and the failure notice names the lost lease
    assert run["status"] == "FAILED", run
    assert list(lake.list_keys("sessionized/")) == []
    assert state.get_watermark() == T0
    assert (state.get_lease("pipeline") or {}).get("owner") == OTHER
    notices = _notifications(sfn["queue_url"])
    assert notices and "LeaseLost" in json.dumps(notices)
