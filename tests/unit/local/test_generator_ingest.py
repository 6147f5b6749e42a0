"""The generated requests against the real ingest handler: the API answers what the generator expects."""

from __future__ import annotations

import json
from collections import Counter

from clickstream.adapters.aws import client
from clickstream_local.bridge import FakeLambdaContext, load_handler
from clickstream_local.generator.traffic import TrafficConfig, generate


def test_ingest_accepts_the_trackers_requests_and_refuses_the_malformed_ones(aws):
    # Given a small day of traffic and the real ingest handler behind moto's Firehose
    traffic = generate(TrafficConfig(events=400, days=1, seed=5))
    ingest = load_handler("ingest")
    sample = [r for r in traffic.requests if r.kind == "malformed"] + [
        r for r in traffic.requests if r.kind != "malformed"
    ][:40]
    # When each request is posted
    statuses = Counter()
    accepted_events = 0
    for req in sample:
        answer = ingest(
            req.event, FakeLambdaContext("ingest", "arn:aws:lambda:us-east-1:123456789012:function:ingest")
        )
        # Then the API answers what the generator meant, with the JSON error shape for refusals
        assert answer["statusCode"] == req.expected_status, (req.kind, answer["body"])
        body = json.loads(answer["body"])
        if req.expected_status == 202:
            assert body == {"accepted": req.n_events}
            accepted_events += req.n_events
        else:
            assert set(body["error"]) >= {"code", "message"}
        statuses[answer["statusCode"]] += 1
    assert statuses[400] and statuses[401] and statuses[415] and statuses[202] == 40
    # And every accepted event landed in the raw bucket, the malformed requests' events did not
    raw = client("s3").list_objects_v2(Bucket=aws.settings.raw_bucket, Prefix="raw/")["Contents"]
    lines = [
        json.loads(line)
        for obj in raw
        for line in client("s3")
        .get_object(Bucket=aws.settings.raw_bucket, Key=obj["Key"])["Body"]
        .read()
        .splitlines()
        if line.strip()
    ]
    assert sum(len(rec["events"]) for rec in lines) == accepted_events
    # And the receive time is the simulated one, identity and internal flag come through
    by_id = {r.event["requestContext"]["requestId"]: r for r in sample}
    for rec in lines:
        req = by_id[rec["request_id"].split("#")[0]]
        assert rec["received_at"].startswith(req.received_at.strftime("%Y-%m-%dT%H:%M:%S"))
        claims = req.event["requestContext"].get("authorizer", {}).get("claims")
        if claims:
            assert rec["user_id"] == claims["sub"]
        else:  # the guest route: no user, the browser's identity-pool identity instead
            assert rec["user_id"] is None
            assert rec["guest_id"] == req.event["requestContext"]["identity"]["cognitoIdentityId"]
        assert rec["anonymous_id"] == json.loads(req.event["body"])["anonymous_id"]
