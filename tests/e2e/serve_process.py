"""``clickstream serve`` as a separate process, for the end-to-end tests: start, post, run, SIGTERM, kill -9."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "clickstream"


def clickstream(*args: str) -> list[str]:
    return [str(BIN), *args] if BIN.exists() else [sys.executable, "-m", "clickstream_cli.main", *args]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")}


def event_ids(*batches: dict[str, Any]) -> list[str]:
    return [e["event_id"] for b in batches for e in b["events"]]


def token(out: Path, user: str) -> str:
    return subprocess.run(
        clickstream("token", "--user", user, "--out-dir", str(out)),
        capture_output=True,
        text=True,
        check=True,
        env=environment(),
        timeout=60,
    ).stdout.strip()


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ServeProcess:
    """One ``clickstream serve --port 0 --out DIR`` process; ``prelude`` is Python run before the CLI (to make the
    process die at a chosen point)."""

    out: Path
    prelude: str | None = None
    proc: subprocess.Popen[str] | None = None
    port: int = 0
    lines: list[str] = field(default_factory=list)

    def start(self) -> ServeProcess:
        args = ("serve", "--port", "0", "--out", str(self.out), "--quiet")
        if self.prelude is None:
            command = clickstream(*args)
        else:
            code = f"import sys\n{self.prelude}\nfrom clickstream_cli.main import main\nsys.exit(main({list(args)!r}))"
            command = [sys.executable, "-c", code]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith("Listening on http://127.0.0.1:"):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=60)
            raise AssertionError(f"serve did not start: {first!r}\n{err}")
        self.lines.append(first)
        self.lines.append(self.proc.stdout.readline())  # the issuer
        self.lines.append(self.proc.stdout.readline())  # what the spool held at start
        self.lines.append(self.proc.stdout.readline())  # the store and the dashboard
        self.port = int(first.rsplit(":", 1)[1])
        return self

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Answer(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def post(self, events: dict[str, Any], bearer: str) -> Answer:
        return self.request(
            "POST",
            "/v1/events",
            json.dumps(events).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {bearer}"},
        )

    def run_pipeline(self) -> Answer:
        return self.request("POST", "/local/run-pipeline")

    def run_then_stop(self, timeout: float = 120) -> tuple[int, str, str]:
        """One pipeline run that must succeed, then SIGTERM: (exit code, rest of stdout, stderr)."""
        run = self.run_pipeline()
        assert run.status == 200 and run.json()["status"] == "SUCCEEDED", run.body
        code, rest, err, _ = self.sigterm(timeout=timeout)
        return code, rest, err

    def sigterm(self, timeout: float) -> tuple[int, str, str, float]:
        """SIGTERM and wait up to ``timeout`` s: (exit code, rest of stdout, stderr, seconds it took)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rest, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, rest, err, time.monotonic() - started

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=60)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        self.proc.communicate(timeout=timeout)
        return self.proc.returncode

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=60)


def warehouse_rows(out: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    import duckdb

    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
