"""moto's in-process S3 lists under concurrent deletes once the bridge's patches are installed: a key deleted while
a listing walks the bucket is left out, never a ``KeyError`` that fails the listing (and the Sessionize step that
listed: another bucket's clean-up deletes while it runs)."""

from __future__ import annotations

from moto.s3.utils import _VersionedKeyStore

from clickstream_local import bridge


class _Version:
    disposed = False

    def dispose(self) -> None:
        self.disposed = True


def test_a_key_deleted_during_a_listing_is_left_out() -> None:
    # Given the bridge's patches, and a bucket's key store of three keys
    bridge._install_patches()
    store = _VersionedKeyStore()
    for key in ("a", "b", "c"):
        store[key] = _Version()
    # When a listing has begun and another thread deletes a key it has not reached yet
    listing = iter(store.items())
    first = next(listing)
    store.pop("c")
    rest = list(listing)
    # Then the listing ends, without the deleted key
    assert [first[0], *(k for k, _ in rest)] == ["a", "b"]
    assert [k for k, _ in store.items()] == ["a", "b"] and len(list(store.values())) == 2
