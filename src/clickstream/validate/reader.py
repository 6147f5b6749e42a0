"""Reading a raw Firehose object: gzip or plain, JSON lines, records that may be glued together (``}{``).

Each raw record is yielded with its ordinal in the object (``source_line``: 1-based, the line number when every
record sits on its own line). A well-formed record comes out already validated (one pydantic-core pass over the
line); anything else comes out loose (a decoded JSON value) or as unparseable text, for the caller to judge. A
loose value's lone surrogates (escaped in the JSON; pydantic-core refuses them) are replaced by U+FFFD
(``text.repair_surrogates``), and a document nested too deeply to decode is unparseable text.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from clickstream.validate.models import MAX_EVENT_BYTES, RECORD_ADAPTER
from clickstream.validate.text import SURROGATE_ESCAPE, repair_surrogates

GZIP_MAGIC = b"\x1f\x8b"


def decode_object(data: bytes) -> bytes:
    """The object's bytes, gunzipped when they start with the gzip magic (real Firehose writes GZIP)."""
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data


@dataclass(frozen=True, slots=True)
class RawLine:
    """One raw record of an object. Exactly one of ``record`` / ``loose`` / ``text`` is set."""

    ordinal: int
    raw: bytes | str  # the record's text as stored (for quarantine and lazy re-parsing)
    record: dict[str, Any] | None = None  # validated whole (envelope and every event passed)
    loose: Any = None  # decoded JSON that did not validate whole: judged part by part
    text: str | None = None  # not JSON at all

    def original(self) -> Any:
        """The record as JSON values (no datetime parsing), decoded on demand."""
        if self.loose is not None:
            return self.loose
        return json.loads(self.raw)


def read_records(payload: bytes, *, start: int = 0) -> Iterator[RawLine]:
    """Raw records of a decoded object, in order (ordinals continue from ``start``)."""
    ordinal = start
    for chunk in payload.split(b"\n"):
        line = chunk.strip()
        if not line:
            continue
        if len(line) <= MAX_EVENT_BYTES:  # larger records take the loose path, which measures each event
            try:
                record = RECORD_ADAPTER.validate_json(line)
            except ValidationError:
                record = None
            if record is not None:
                ordinal += 1
                yield RawLine(ordinal, line, record=record)
                continue
        for value, text, is_json in split_documents(line):
            ordinal += 1
            if is_json:
                yield RawLine(ordinal, text, loose=value)
            else:
                yield RawLine(ordinal, text, text=text)


def split_documents(line: bytes, *, errors: str = "replace") -> Iterator[tuple[Any, str, bool]]:
    """``(value, text, is_json)`` for each JSON document glued in ``line``; a tail that is not JSON comes last.

    ``errors`` is how invalid UTF-8 is decoded: ``replace`` for judging, ``surrogateescape`` for a caller that must
    write the documents' bytes back unchanged (``text.encode("utf-8", errors="surrogateescape")``).
    """
    text = line.decode("utf-8", errors=errors)
    decoder = json.JSONDecoder()
    idx, end = 0, len(text)
    while idx < end:
        while idx < end and text[idx] in " \t\r\n":
            idx += 1
        if idx >= end:
            return
        try:
            value, stop = decoder.raw_decode(text, idx)
        except (json.JSONDecodeError, RecursionError):  # not JSON, or nested deeper than any record is
            yield None, text[idx:], False
            return
        if SURROGATE_ESCAPE.search(text, idx, stop) is not None:
            value = repair_surrogates(value)  # a lone surrogate, escaped, becomes U+FFFD
        yield value, text[idx:stop], True
        idx = stop
