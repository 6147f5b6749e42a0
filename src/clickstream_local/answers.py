"""An HTTP answer of ``clickstream serve``: status, headers, body; JSON errors in the API's shape."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, body: Any, headers: Mapping[str, str] | None = None) -> HttpAnswer:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        return cls(status, all_headers, json.dumps(body, separators=(",", ":"), default=str).encode("utf-8"))

    @classmethod
    def error(
        cls, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> HttpAnswer:
        return cls.json(status, {"error": {"code": code, "message": message}}, headers)
