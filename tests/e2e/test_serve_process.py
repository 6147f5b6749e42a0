"""``clickstream serve`` and ``clickstream token`` as separate processes: post, SIGTERM, open the warehouse."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "clickstream"


def _clickstream(*args: str) -> list[str]:
    return [str(BIN), *args] if BIN.exists() else [sys.executable, "-m", "clickstream_cli.main", *args]


@pytest.mark.slow
def test_a_token_from_another_process_is_accepted_and_sigterm_leaves_a_readable_warehouse(tmp_path: Path):
    import duckdb

    out = tmp_path / "serve-output"
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")}
    # Given the server started on a free port, its URL the first line it prints
    server = subprocess.Popen(
        _clickstream("serve", "--port", "0", "--out", str(out), "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith("Listening on http://127.0.0.1:"), first + (
            server.stderr.read() if server.stderr else ""
        )
        port = int(first.rsplit(":", 1)[1])
        # And a token printed by `clickstream token` in another process, from the same out dir
        token = subprocess.run(
            _clickstream("token", "--user", "dana", "--out-dir", str(out)),
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=60,
        ).stdout.strip()
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        batch = {
            "app_id": "shop-web",
            "sent_at": now,
            "anonymous_id": str(uuid.uuid4()),
            "events": [
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "page_view",
                    "occurred_at": now,
                    "page": {"url": "http://localhost:5173/"},
                }
                for _ in range(3)
            ],
        }
        # When events are posted with it
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request(
            "POST",
            "/v1/events",
            body=json.dumps(batch),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        resp = conn.getresponse()
        assert (resp.status, json.loads(resp.read())) == (202, {"accepted": 3})
        conn.close()
        # And the server is sent SIGTERM
        server.send_signal(signal.SIGTERM)
        rest, err = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # Then it exits cleanly after a last pipeline pass
    assert server.returncode == 0, err
    assert "Stopped: 1 requests (3 events) accepted" in rest and "1 pipeline runs" in rest
    # And the warehouse opens and holds the three events
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    finally:
        con.close()
