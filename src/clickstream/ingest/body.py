"""Reading a request body: content type, transfer encodings, size limits, JSON.

Everything here runs before the envelope is looked at, and every refusal is a typed domain error, so no byte
sequence a client can send ends in anything but a 4xx.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from typing import Any

from clickstream.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# application/json for fetch/XHR; text/plain is what navigator.sendBeacon sends for a string body.
JSON_MEDIA_TYPES = frozenset({"application/json", "text/plain"})
# A gzip stream with JSON inside. These are the API's BinaryMediaTypes: API Gateway hands them over intact.
GZIP_MEDIA_TYPES = frozenset({"application/gzip", "application/x-gzip"})
ACCEPTED_MEDIA_TYPES = JSON_MEDIA_TYPES | GZIP_MEDIA_TYPES
ACCEPTED_CHARSETS = frozenset({"utf-8", "utf8"})
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_CHUNK = 64 * 1024


class BadJson(BadRequest):
    """The body is not a JSON document (HTTP 400)."""

    code = "bad_json"


class BadEncoding(BadRequest):
    """The body's transfer encoding is broken: invalid base64 or corrupt gzip (HTTP 400)."""

    code = "bad_encoding"


def check_content_type(content_type: str | None) -> str:
    """The media type: ``application/json`` or ``text/plain`` with an optional UTF-8 charset, or
    ``application/gzip`` / ``application/x-gzip`` (gzip-compressed JSON); anything else is a 415."""
    if not content_type:
        raise UnsupportedMediaType(
            "Content-Type is required: application/json, text/plain or application/gzip"
        )
    media_type, *params = content_type.split(";")
    media_type = media_type.strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media_type[:64]!r} is not application/json, text/plain or application/gzip"
        )
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ACCEPTED_CHARSETS:
            raise UnsupportedMediaType("JSON bodies must be UTF-8")
    return media_type


def content_coding(content_encoding: str | None) -> str | None:
    """``"gzip"`` or ``None`` (no coding); any other coding is a 415."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if codings in (["gzip"], ["x-gzip"]):
        return "gzip"
    raise UnsupportedMediaType(
        f"Content-Encoding {(content_encoding or '')[:64]!r} is not supported (use gzip)"
    )


def gzip_arrived_as_text(body: str | None, is_base64: bool) -> bool:
    """True when a gzip body reached us as text: API Gateway decoded its bytes as UTF-8 (the body was not one of
    the API's binary media types), which cannot be undone. A gzip stream always starts with 0x1f 0x8b."""
    return not is_base64 and body is not None and body.startswith("\x1f")


def raw_body(body: str | None, is_base64: bool, max_bytes: int) -> bytes:
    """The body's bytes as the client sent them (API Gateway base64-encodes binary bodies), at most ``max_bytes``."""
    if body is None:
        return b""
    if is_base64:
        # 4 characters per 3 bytes: refuse a body whose encoding alone proves it too large before decoding it.
        if len(body) > (max_bytes // 3 + 1) * 4:
            raise PayloadTooLarge(f"body exceeds {max_bytes} bytes")
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadEncoding("body is marked base64 but is not valid base64") from exc
    else:
        if len(body) > max_bytes:  # each character is at least one byte
            raise PayloadTooLarge(f"body exceeds {max_bytes} bytes")
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadJson("body is not valid UTF-8") from exc
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"body exceeds {max_bytes} bytes")
    return data


def gunzip_bounded(data: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip body (several members allowed), refusing it once its output passes ``max_bytes``.

    The output is produced in bounded steps (``max_length``), so a gzip bomb costs at most ``max_bytes`` of
    memory before it is refused, never its decompressed size.
    """
    out: list[bytes] = []
    total = 0
    pending = data
    try:
        while True:
            inflater = zlib.decompressobj(_GZIP_WBITS)
            chunk = inflater.decompress(pending, min(_CHUNK, max_bytes - total + 1))
            while True:
                total += len(chunk)
                if total > max_bytes:
                    raise PayloadTooLarge(f"body exceeds {max_bytes} bytes after decompression")
                out.append(chunk)
                if inflater.eof or not (inflater.unconsumed_tail or chunk):
                    break
                chunk = inflater.decompress(inflater.unconsumed_tail, min(_CHUNK, max_bytes - total + 1))
            if not inflater.eof:  # input exhausted before the end of the stream
                raise BadEncoding("gzip body is truncated")
            pending = inflater.unused_data
            if not pending.strip(
                b"\0"
            ):  # trailing zero padding after the last member is tolerated, as gzip does
                break
    except zlib.error as exc:
        raise BadEncoding("body is not valid gzip") from exc
    return b"".join(out)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(data: bytes) -> Any:
    """The JSON document in ``data`` (UTF-8); NaN/Infinity, invalid UTF-8 and absurd nesting are a 400."""
    if not data.strip():
        raise BadJson("body is empty")
    try:
        return json.loads(data.decode("utf-8-sig"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise BadJson("body is not valid UTF-8") from exc
    except RecursionError as exc:
        raise BadJson("body is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers beyond the conversion limit
        raise BadJson(f"body is not valid JSON: {exc}"[:200]) from exc


def normalise_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """An API Gateway event's headers with lower-case names (single- and multi-value forms, last value wins)."""
    out: dict[str, str] = {}
    multi = event.get("multiValueHeaders") or {}
    if isinstance(multi, Mapping):
        for name, values in multi.items():
            if isinstance(name, str) and isinstance(values, list) and values and isinstance(values[-1], str):
                out[name.lower()] = values[-1]
    single = event.get("headers") or {}
    if isinstance(single, Mapping):
        for name, value in single.items():
            if isinstance(name, str) and isinstance(value, str):
                out[name.lower()] = value
    return out
