"""The frozen-id filter: a Bloom filter per state slice over its frozen-id index (``sessionize.state``).

An hourly run must find the copies of events whose first copy is frozen (the dedupe ranks them), but reading a
slice's whole frozen-id index makes the run's reads grow with the slice's history. The filter answers "maybe frozen"
or "certainly not" for a (visitor, event_id) hash in a fixed number of bits per id: the run reads the filters of the
slices it touches (a few kilobytes), and only a "maybe" becomes a candidate, confirmed by the slice's frozen rows as
before. A false positive costs that read and changes nothing else; a false negative cannot happen (every id of the
index is added to the filter).

The filter is ``rbloom``'s (Rust) with the identity as its hash: the index's keys are already 64 bits of an md5
(``state.id_hash_sql``). It grows without reading the index (a scalable Bloom filter): it is a list of layers, each
sized for a capacity; a freeze adds its ids to the last layer while they fit, and past it opens a new layer with room for
the rest twice and for as many ids again as the filter holds (so the capacity about doubles and the layers are
few: one per doubling of the slice's frozen history), at half the previous layer's false-positive rate, so the rates sum to less than
``ID_FILTER_FP_RATE`` however many layers there are. The file is a header (magic, version, layers) and per layer
its ids, capacity, false-positive rate and ``rbloom``'s own bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from rbloom import Bloom

from clickstream.core.errors import DomainError

# A run of ~2,000 arrivals probing a filter at 1e-6 has a false candidate about once in 500 runs. The first layer
# is sized at half of it (about 30 bits, 3.8 bytes, per id, against the index's 8 bytes), each later one at half the
# one before (about 1.44 more bits per id each).
ID_FILTER_FP_RATE = 1e-6
ID_FILTER_MIN_CAPACITY = 256  # a slice's first layer: 1 KB (a store has 16 slices per bucket)
ID_FILTER_CONTENT_TYPE = "application/octet-stream"
_MAGIC = b"CSIF"
_VERSION = 1
_HEADER = struct.Struct("<4sBH")  # magic, version, layers
_LAYER = struct.Struct("<QQdQ")  # ids added, capacity, false-positive rate, length of rbloom's bytes
_BLOOM_HEAD = 8  # rbloom's bytes: its number of hash functions (8 bytes, little-endian), then the bits
_MAX_HASHES = 64  # 1e-6 halved 20 times still needs under 60


class BadIdFilter(DomainError):
    """A frozen-id filter file that is not one (wrong magic, version or length)."""

    code = "bad_id_filter"


def _identity(h: int) -> int:
    """The filter's hash: the index's key itself (already a 64-bit hash; rbloom takes any signed 128-bit int)."""
    return h


@dataclass
class Layer:
    """One Bloom filter of a slice's frozen-id filter: its ids added, the ids and rate it was sized for."""

    bloom: Bloom
    count: int
    capacity: int
    fp_rate: float

    @classmethod
    def sized(cls, capacity: int, fp_rate: float) -> Layer:
        return cls(Bloom(capacity, fp_rate, hash_func=_identity), 0, capacity, fp_rate)


@dataclass
class IdFilter:
    """A slice's frozen-id filter: a hash may be in the index when any layer says so."""

    layers: list[Layer] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(layer.count for layer in self.layers)

    @property
    def size_in_bits(self) -> int:
        return sum(layer.bloom.size_in_bits for layer in self.layers)

    @classmethod
    def of(cls, hashes: list[int]) -> IdFilter:
        """A filter holding ``hashes``, with room for as many again in its one layer."""
        out = cls()
        out.add(hashes)
        return out

    def add(self, hashes: list[int]) -> None:
        """Add ``hashes``: into the last layer while it has room, the rest into a new layer with room for them
        twice and for the ids the filter already holds, at half the last layer's rate."""
        last = self.layers[-1] if self.layers else None
        room = last.capacity - last.count if last is not None else 0
        if last is not None and room > 0:
            last.bloom.update(hashes[:room])
            last.count += min(room, len(hashes))
        rest = hashes[room:]
        if rest or not self.layers:
            rate = ID_FILTER_FP_RATE / 2 if last is None else last.fp_rate / 2
            layer = Layer.sized(max(ID_FILTER_MIN_CAPACITY, self.count + 2 * len(rest)), rate)
            layer.bloom.update(rest)
            layer.count = len(rest)
            self.layers.append(layer)

    def probe(self, hashes: Iterable[int]) -> list[int]:
        """The hashes the filter may hold (every one it holds, and rarely one it does not)."""
        blooms = [layer.bloom for layer in self.layers]
        return [h for h in hashes if any(h in b for b in blooms)]

    def to_bytes(self) -> bytes:
        parts = [_HEADER.pack(_MAGIC, _VERSION, len(self.layers))]
        for layer in self.layers:
            data = layer.bloom.save_bytes()
            parts += [_LAYER.pack(layer.count, layer.capacity, layer.fp_rate, len(data)), data]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> IdFilter:
        if len(data) < _HEADER.size:
            raise BadIdFilter(f"a frozen-id filter of {len(data)} bytes is too short")
        magic, version, n = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise BadIdFilter(f"not a frozen-id filter (magic {magic!r}, version {version})")
        out, at = cls(), _HEADER.size
        for _ in range(n):
            if len(data) < at + _LAYER.size:
                raise BadIdFilter("a truncated frozen-id filter")
            count, capacity, rate, length = _LAYER.unpack_from(data, at)
            at += _LAYER.size
            if len(data) < at + length or length <= _BLOOM_HEAD:  # rbloom panics on fewer than its head
                raise BadIdFilter("a truncated frozen-id filter")
            hashes = int.from_bytes(data[at : at + _BLOOM_HEAD], "little")
            if not 1 <= hashes <= _MAX_HASHES:  # a damaged head would make every probe loop that many times
                raise BadIdFilter(f"a frozen-id filter layer with {hashes} hash functions")
            bloom = Bloom.load_bytes(data[at : at + length], _identity)
            out.layers.append(Layer(bloom, int(count), int(capacity), float(rate)))
            at += length
        if at != len(data) or not out.layers:
            raise BadIdFilter("a frozen-id filter with trailing bytes or no layer")
        return out
