"""The real ``@snowplow/browser-tracker`` from npm, with its default settings, in Debian's headless Chromium, posting
from a page of another origin to ``clickstream serve``; the events reach the warehouse under the token's user.

The tracker fetches with ``credentials: 'include'`` unless told otherwise, so the browser accepts the answers only
when the preflight and the answers carry ``Access-Control-Allow-Credentials: true`` for the page's origin. The page
and the driver are ``web/snowplow-capture/post-to-serve.mjs`` (playwright-core driving ``/usr/bin/chromium``;
``make test`` installs the npm packages). Without Chromium, node or those packages the test skips with the reason;
under ``CI=true`` it fails instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from clickstream_local.auth import LocalIssuer
from tests.e2e.browser_needs import chromium_binary, missing
from tests.e2e.serve_process import ServeProcess, environment, token, warehouse_rows

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CAPTURE_DIR = Path(__file__).resolve().parents[2] / "web" / "snowplow-capture"
DRIVER = CAPTURE_DIR / "post-to-serve.mjs"


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    node = shutil.which("node")
    if node is None:
        missing("node not found: the Snowplow tracker is driven from web/snowplow-capture with node")
    for package in ("@snowplow/browser-tracker", "playwright-core", "esbuild"):
        if not (CAPTURE_DIR / "node_modules" / package / "package.json").is_file():
            missing(f"{package} not installed: npm ci --prefix web/snowplow-capture (make test does)")
    return str(binary)


def test_the_snowplow_tracker_with_its_defaults_posts_cross_origin_and_the_events_carry_the_tokens_user(
    chromium: str, tmp_path: Path
):
    out = tmp_path / "serve-output"
    server = ServeProcess(out).start()
    try:
        # Given a token for a shopper, and the tracker on a page at http://localhost:<another port>
        bearer = token(out, "tracker-shopper")
        collector = f"http://127.0.0.1:{server.port}"
        # When the tracker, configured with an app id and customHeaders only, tracks three events
        driven = subprocess.run(
            ["node", str(DRIVER), collector, bearer],
            capture_output=True,
            text=True,
            timeout=180,
            env={**environment(), "CHROMIUM": chromium},
            cwd=CAPTURE_DIR,
        )
        assert driven.returncode == 0, driven.stderr
        seen = json.loads(driven.stdout.strip().splitlines()[-1])
        # Then it fetched with its default credentials: 'include', from another origin
        tracker_fetches = [f for f in seen["fetches"] if "/com.snowplowanalytics.snowplow/tp2" in f["url"]]
        assert tracker_fetches and {f["credentials"] for f in tracker_fetches} == {"include"}, seen
        assert not seen["page"].startswith(collector)
        # And Chromium let every POST through, each answered 202 with the Authorization header sent, three events
        assert seen["failed"] == [], seen
        assert seen["posts"] and {p["status"] for p in seen["posts"]} == {202}, seen
        assert all(p["authorization"] for p in seen["posts"])
        assert sum(p["accepted"] for p in seen["posts"]) == 3, seen
        assert not [line for line in seen["console"] if "CORS" in line], seen["console"]
        # And after a pipeline run the events are in the warehouse under the token's user
        code, _, err = server.run_then_stop()
    finally:
        server.cleanup()
    assert code == 0, err
    sub = LocalIssuer.load(out).subject("tracker-shopper")
    rows = warehouse_rows(out, "SELECT event_type, user_id, app_id FROM events ORDER BY event_ts, event_type")
    assert sorted(r[0] for r in rows) == ["custom:newsletter.signup", "page_view", "search"]
    assert {(r[1], r[2]) for r in rows} == {(sub, "shop-web")}
