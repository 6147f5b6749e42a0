"""The spool of ``clickstream serve``: durable, ordered, one file per request, torn writes never replayed."""

from __future__ import annotations

import os

import pytest

from clickstream.local.spool import Spool, SpoolBusy


def test_entries_come_back_in_order_with_their_records_across_a_reopen(tmp_path):
    spool = Spool(tmp_path).open()
    try:
        first = spool.append([b'{"a":1}\n', b'{"a":2}\n'])
        second = spool.append([b'{"b":"\\u2028 \\r"}'])  # a record without its newline gets one
    finally:
        spool.close()
    # When the folder is opened again (the next start)
    again = Spool(tmp_path).open()
    try:
        # Then the entries are there in order, byte for byte, and the sequence goes on after them
        entries = again.entries()
        assert [e.sequence for e in entries] == [first.sequence, second.sequence] == [1, 2]
        assert entries[0].records() == [b'{"a":1}\n', b'{"a":2}\n']
        assert entries[1].records() == [b'{"b":"\\u2028 \\r"}\n']
        assert again.append([b"{}\n"]).sequence == 3
    finally:
        again.close()


def test_a_write_a_crash_interrupted_is_not_an_entry_and_is_cleared(tmp_path):
    spool = Spool(tmp_path).open()
    spool.append([b"{}\n"])
    spool.close()
    # Given a temporary file left by a write that never reached its rename (its request got no 202)
    torn = spool.dir / ".000000000002.ndjson.tmp"
    torn.write_bytes(b'{"half":')
    # When the spool is opened again
    again = Spool(tmp_path).open()
    try:
        # Then only the whole entry is there, and the torn file is gone
        assert [e.sequence for e in again.entries()] == [1] and not torn.exists()
    finally:
        again.close()


def test_entries_are_private_to_the_user(tmp_path):
    spool = Spool(tmp_path).open()
    try:
        entry = spool.append([b"{}\n"])
        assert os.stat(entry.path).st_mode & 0o077 == 0
    finally:
        spool.close()


def test_a_record_spanning_lines_is_refused(tmp_path):
    spool = Spool(tmp_path).open()
    try:
        with pytest.raises(ValueError):
            spool.append([b'{"a":\n1}\n'])
        assert spool.entries() == []
    finally:
        spool.close()


def test_loaded_only_moves_forward(tmp_path):
    spool = Spool(tmp_path).open()
    try:
        assert spool.loaded == 0
        spool.mark_loaded(5)
        spool.mark_loaded(3)
        assert spool.loaded == 5
    finally:
        spool.close()


def test_one_process_per_spool(tmp_path):
    holder = Spool(tmp_path).open()
    try:
        with pytest.raises(SpoolBusy):
            Spool(tmp_path).open()
    finally:
        holder.close()
    Spool(tmp_path).open().close()  # free again once the holder is gone
