"""What the browser tests need from the machine: a missing piece skips them, except under ``CI=true``, where it fails."""

from __future__ import annotations

import os

import pytest

from clickstream_local.browser import find_chromium


def missing(reason: str) -> None:
    """Skip with ``reason``, or fail under ``CI=true`` (browser tests never skip there)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; browser tests never skip under CI=true")
    pytest.skip(reason)


def chromium_binary() -> str:
    """Debian's Chromium (or ``CHROMIUM_BIN``), or skip/fail as :func:`missing` does."""
    binary = find_chromium()
    if binary is None:
        missing(
            "chromium not found: install Debian's chromium (make test does when root) or set CHROMIUM_BIN"
        )
    assert binary is not None
    return binary
