"""The frozen-id filter: a Bloom filter per state slice over its frozen-id index (``sessionize.state``).

An hourly run must find the copies of events whose first copy is frozen (the dedupe ranks them), but reading a
slice's whole frozen-id index makes the run's reads grow with the slice's history. The filter answers "maybe frozen"
or "certainly not" for a (visitor, event_id) hash in a fixed number of bits per id: the run reads the filters of the
slices it touches (a few kilobytes), and only a "maybe" becomes a candidate, confirmed by the slice's frozen rows as
before. A false positive costs that read and changes nothing else; a false negative cannot happen (every id of the
index is added to the filter).

The filter is ``rbloom``'s (Rust) with the identity as its hash: the index's keys are already 64 bits of an md5
(``state.id_hash_sql``). It is sized for ``capacity`` ids at ``ID_FILTER_FP_RATE``; a freeze adds its ids while they
fit, and past the capacity the filter is built again from the index at twice the ids it holds (so rebuilds are rare:
one per doubling of a slice's frozen history). The file is a small header (magic, version, ids added, capacity)
followed by ``rbloom``'s own bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from rbloom import Bloom

from clickstream.core.errors import DomainError

# A run of ~2,000 arrivals probing a filter at 1e-6 has a false candidate about once in 500 runs. Costs 28.8 bits
# (3.6 bytes) per id against the index's 8 bytes per id.
ID_FILTER_FP_RATE = 1e-6
ID_FILTER_MIN_CAPACITY = 1024
ID_FILTER_CONTENT_TYPE = "application/octet-stream"
_MAGIC = b"CSIF"
_VERSION = 1
_HEADER = struct.Struct("<4sBQQ")  # magic, version, ids added, capacity


class BadIdFilter(DomainError):
    """A frozen-id filter file that is not one (wrong magic, version or length)."""

    code = "bad_id_filter"


def _identity(h: int) -> int:
    """The filter's hash: the index's key itself (already a 64-bit hash; rbloom takes any signed 128-bit int)."""
    return h


@dataclass
class IdFilter:
    """A slice's frozen-id filter: the Bloom filter, how many ids were added and how many it was sized for."""

    bloom: Bloom
    count: int
    capacity: int

    @classmethod
    def sized(cls, expected: int) -> IdFilter:
        """An empty filter for twice ``expected`` ids (at least ``ID_FILTER_MIN_CAPACITY``)."""
        capacity = max(ID_FILTER_MIN_CAPACITY, 2 * expected)
        return cls(Bloom(capacity, ID_FILTER_FP_RATE, hash_func=_identity), 0, capacity)

    @classmethod
    def of(cls, hashes: list[int]) -> IdFilter:
        """A filter holding ``hashes``, with room for as many again."""
        out = cls.sized(len(hashes))
        out.add(hashes)
        return out

    def has_room(self, n: int) -> bool:
        return self.count + n <= self.capacity

    def add(self, hashes: list[int]) -> None:
        self.bloom.update(hashes)
        self.count += len(hashes)

    def probe(self, hashes: Iterable[int]) -> list[int]:
        """The hashes the filter may hold (every one it holds, and rarely one it does not)."""
        bloom = self.bloom
        return [h for h in hashes if h in bloom]

    def to_bytes(self) -> bytes:
        return _HEADER.pack(_MAGIC, _VERSION, self.count, self.capacity) + self.bloom.save_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> IdFilter:
        if len(data) <= _HEADER.size:
            raise BadIdFilter(f"a frozen-id filter of {len(data)} bytes is too short")
        magic, version, count, capacity = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise BadIdFilter(f"not a frozen-id filter (magic {magic!r}, version {version})")
        try:
            bloom = Bloom.load_bytes(data[_HEADER.size :], _identity)
        except ValueError as exc:
            raise BadIdFilter(f"a damaged frozen-id filter: {exc}") from exc
        return cls(bloom, int(count), int(capacity))
