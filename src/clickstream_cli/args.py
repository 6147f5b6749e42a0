"""What every command shares: argument types, the console, progress bars, the laptop stack's import."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from types import ModuleType
from typing import Any

Subparsers = argparse._SubParsersAction  # the ``add_subparsers()`` object every command registers on


# -- argument types (argparse turns ArgumentTypeError and ValueError into a usage error, exit 2) ---------------------
def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def day(text: str) -> str:
    """A day, YYYY-MM-DD (kept as text, normalised)."""
    try:
        return str(date.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


def utc_datetime(text: str) -> datetime:
    """An ISO-8601 instant as aware UTC (a naive one means UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_zone(text: str) -> str:
    """An IANA time zone name."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone: {text!r}") from None
    return text


# -- output ---------------------------------------------------------------------------------------------------------
def console() -> Any:
    """A rich console; wide enough for the tables when the output is not a terminal (logs and CI)."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=120)


class NoProgress:
    """Progress bars that draw nothing (``--no-progress``), with rich's ``Progress`` methods."""

    def add_task(self, *_args: Any, **_kwargs: Any) -> int:
        return 0

    def advance(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def update(self, *_args: Any, **_kwargs: Any) -> None:
        return None


@contextmanager
def progress_bars(out: Any, enabled: bool, *, label_width: int) -> Iterator[Any]:
    """rich progress bars (label, bar, done/total, elapsed) on ``out``; :class:`NoProgress` when not ``enabled``."""
    if not enabled:
        yield NoProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"[bold]{{task.description:<{label_width}}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
    ) as bars:
        yield bars


class StageProgress:
    """A back-fill's stages (``operations.backfill.Progress``) as one progress bar each."""

    def __init__(self, bars: Any) -> None:
        self._bars = bars
        self._task: Any = None

    def stage(self, description: str, total: int) -> None:
        self._task = self._bars.add_task(description, total=total)

    def advance(self, done: int) -> None:
        if self._task is not None:
            self._bars.update(self._task, completed=done)


# -- the laptop stack --------------------------------------------------------------------------------------------
class LocalStackMissing(RuntimeError):
    """The command needs clickstream_local, which is not installed."""


def local_module(name: str) -> ModuleType:
    """``clickstream_local.<name>``, imported when a command needs it; a clear error when the laptop stack (a
    development install, ``pip install -e '.[dev]'``) is not there."""
    try:
        return importlib.import_module(f"clickstream_local.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == "clickstream_local" or exc.name.startswith("clickstream_local.")):
            raise LocalStackMissing(
                "this command runs the laptop stack (clickstream_local), which is not installed here:"
                " install the repository for development (pip install -e '.[dev]')"
            ) from exc
        raise
