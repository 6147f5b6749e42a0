"""Body decoding: bounded gunzip, base64, content types."""

from __future__ import annotations

import gzip
import zlib

import pytest

from clickstream.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from clickstream.ingest.body import (
    BadEncoding,
    check_content_type,
    content_coding,
    gunzip_bounded,
    parse_json,
    raw_body,
)


def test_gunzip_returns_the_body_up_to_exactly_the_limit():
    # Given a body of exactly the limit, compressed
    data = bytes(range(256)) * 400  # 102,400 bytes
    packed = gzip.compress(data)
    # When it is decompressed with that limit, and with one byte less
    # Then the first returns it whole and the second refuses it
    assert gunzip_bounded(packed, len(data)) == data
    with pytest.raises(PayloadTooLarge):
        gunzip_bounded(packed, len(data) - 1)


def test_gunzip_bomb_is_refused_after_at_most_the_limit_of_output(monkeypatch):
    # Given 200 MB of zeros in a small gzip, and an inflater that records how much it was allowed to produce
    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=9, mtime=0)
    produced = []
    real = zlib.decompressobj

    class Recording:
        def __init__(self, wbits):
            self._d = real(wbits)

        def decompress(self, data, max_length=0):
            assert max_length > 0, "every step must be bounded"
            out = self._d.decompress(data, max_length)
            produced.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._d, name)

    monkeypatch.setattr(zlib, "decompressobj", Recording)
    # When it is decompressed with a 1 MB limit
    with pytest.raises(PayloadTooLarge):
        gunzip_bounded(bomb, 1_048_576)
    # Then no more than the limit (plus one byte to notice) was ever inflated
    assert sum(produced) <= 1_048_576 + 1


def test_gunzip_accepts_concatenated_members_and_zero_padding():
    packed = gzip.compress(b'{"a":') + gzip.compress(b"1}") + b"\0\0\0"
    assert gunzip_bounded(packed, 1000) == b'{"a":1}'


@pytest.mark.parametrize(
    "packed",
    [
        b"",
        b"\x1f\x8b",
        gzip.compress(b"hello", mtime=0)[:-4],
        gzip.compress(b"hello", mtime=0) + b"garbage",
        b"{}",
    ],
)
def test_gunzip_refuses_corrupt_input(packed):
    with pytest.raises(BadEncoding):
        gunzip_bounded(packed, 1000)


def test_base64_body_size_is_judged_before_and_after_decoding():
    import base64

    # Given a limit of 30 bytes
    ok = base64.b64encode(b"x" * 30).decode()
    over = base64.b64encode(b"x" * 31).decode()
    # Then 30 decoded bytes pass and 31 do not, and a huge encoding is refused without decoding it
    assert raw_body(ok, True, 30) == b"x" * 30
    with pytest.raises(PayloadTooLarge):
        raw_body(over, True, 30)
    with pytest.raises(PayloadTooLarge):
        raw_body("A" * 10_000, True, 30)


def test_text_body_limit_counts_utf8_bytes():
    assert raw_body("é" * 10, False, 20) == "é".encode() * 10
    with pytest.raises(PayloadTooLarge):
        raw_body("é" * 11, False, 20)


@pytest.mark.parametrize(
    "value",
    ["application/json", "Application/JSON; charset=utf-8", 'application/json;charset="UTF-8"', "text/plain"],
)
def test_accepted_content_types(value):
    check_content_type(value)


@pytest.mark.parametrize(
    "value", ["", "application/x-www-form-urlencoded", "text/plain; charset=utf-16", "json"]
)
def test_refused_content_types(value):
    with pytest.raises(UnsupportedMediaType):
        check_content_type(value)


def test_content_codings():
    assert content_coding(None) is None
    assert content_coding("identity") is None
    assert content_coding("gzip") == "gzip"
    assert content_coding(" x-gzip ") == "gzip"
    for refused in ("deflate", "br", "gzip, br", "compress"):
        with pytest.raises(UnsupportedMediaType):
            content_coding(refused)


def test_deeply_nested_json_is_a_400_not_a_recursion_error():
    with pytest.raises(BadRequest):
        parse_json(b"[" * 200_000 + b"]" * 200_000)


def test_huge_integer_is_a_400():
    with pytest.raises(BadRequest):
        parse_json(b'{"n": ' + b"9" * 10_000 + b"}")
