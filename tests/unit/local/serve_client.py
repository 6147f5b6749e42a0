"""A ``clickstream serve`` endpoint in a thread and a raw-socket client, for the unit tests of serve."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickstream.local.auth import LocalIssuer
from clickstream.local.serve import LocalServer, ServeOptions, running, stop_server


class Served:
    """A running endpoint on an ephemeral port, stopped by :meth:`stop` (only one per process at a time: the
    moto stack behind it is process-wide)."""

    def __init__(self, out: Path, **options: Any) -> None:
        self.out = out
        self._cm = running(ServeOptions(port=0, out=out, **options))
        self.server: LocalServer = self._cm.__enter__()
        self.port = self.server.server_address[1]
        self.issuer = LocalIssuer.load(out)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            stop_server(self.server)
            self._thread.join()
            self._cm.__exit__(None, None, None)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=20)

    def raw(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send raw bytes, read one answer: (status, headers, body)."""
        with self.connect() as s:
            s.sendall(data)
            return read_answer(s)

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    def post(self, events: dict[str, Any], user: str) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.issuer.issue(user)}"}
        return self.request("POST", "/v1/events", json.dumps(events).encode(), headers)


def read_answer(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer off a socket: (status, lower-cased headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without an answer after {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def batch(n: int = 1, anonymous_id: str | None = None) -> dict[str, Any]:
    """A native batch of ``n`` page views from one visitor."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "app_id": "shop-web",
        "sent_at": now,
        "anonymous_id": anonymous_id or str(uuid.uuid4()),
        "events": [
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "page_view",
                "occurred_at": now,
                "page": {"url": "http://localhost:5173/"},
            }
            for _ in range(n)
        ],
    }


def is_api_error(body: bytes, code: str) -> dict[str, Any]:
    """The ``error`` object of a JSON error answer, checked for its shape and ``code``."""
    error = json.loads(body)["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    return error
