"""Shared Powertools logger, metrics and tracer: one instance each, imported by handlers and domain code.

* **Metrics**: one namespace (:data:`NAMESPACE`) and one default dimension, ``service`` = :data:`SERVICE`; the
  stack's alarms and dashboard read them with exactly that dimension (a metric with more dimensions is another
  metric to CloudWatch, so a per-reason or per-code count is a separate ``single_metric``).
* **Traces**: the functions run with ``Tracing: Active``; each handler is ``tracer.capture_lambda_handler`` and the
  expensive domain calls ``tracer.capture_method``. Only botocore is patched (every AWS call becomes a
  subsegment), and only when the first boto3 client is made (:func:`trace_aws_calls`, from
  ``adapters.aws.client``): patching imports botocore, which the ingest function otherwise loads at its first
  request, not at import; patching everything would import the X-Ray SDK's patchers for libraries the functions
  do not use. Tracing is off outside Lambda and under ``POWERTOOLS_TRACE_DISABLED`` (the tests), and nothing is
  captured as metadata: a response or an argument may hold shoppers' data.
* **Logs**: JSON lines carrying the run id or the raw object's key (:func:`annotate`, which also makes them trace
  annotations). A failure is logged by :func:`log_failure` with its error text cut to :data:`ERROR_TEXT_LIMIT`
  characters and without the exception's own traceback text: an exception message may quote a whole raw line or
  row, and personal data has no place in logs.
"""

from __future__ import annotations

import contextlib
import functools
import traceback
from collections.abc import Callable
from numbers import Number
from pathlib import PurePath
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "clickstream"
NAMESPACE = "Clickstream"
# Longest error text a log line, a trace or a re-raised exception carries: enough for the cause and the place, too
# short for a whole raw line or warehouse row (those run to several hundred characters).
ERROR_TEXT_LIMIT = 240

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE, auto_patch=False)
_AWS_SDK_PATCHED: list[bool] = []


def trace_aws_calls() -> None:
    """Patch botocore for X-Ray once per process (a no-op where tracing is off)."""
    if not _AWS_SDK_PATCHED:
        _AWS_SDK_PATCHED.append(True)
        tracer.patch(("botocore",))


Handler = TypeVar("Handler", bound=Callable[..., Any])


def annotate(**keys: str | Number | bool) -> None:
    """Keys on every log line of this invocation (``logger.append_keys``) and on its trace (X-Ray annotations,
    searchable: ``annotation.run_id = "hourly-…"``)."""
    logger.append_keys(**keys)
    for name, value in keys.items():
        tracer.put_annotation(name, value)


def clip(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """``text`` on one line, control characters escaped, cut to ``limit`` characters with the length it had."""
    flat = "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)
    if len(flat) <= limit:
        return flat
    marker = f"… [{len(flat)} chars]"
    return flat[: max(0, limit - len(marker))] + marker


def _escaped(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def error_text(exc: BaseException, limit: int = ERROR_TEXT_LIMIT) -> str:
    """``Type: message`` of an exception, clipped (:func:`clip`)."""
    return clip(f"{type(exc).__name__}: {exc}", limit)


def failure_site(exc: BaseException) -> str:
    """Where an exception was raised: ``file:line in function`` of its innermost frame (no source text)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if not frames:
        return ""
    last = frames[-1]
    return f"{'/'.join(PurePath(last.filename).parts[-2:])}:{last.lineno} in {last.name}"


def log_failure(message: str, exc: BaseException, **extra: Any) -> None:
    """One ERROR line for a failure: the exception's type, its clipped text and where it was raised."""
    logger.error(
        message,
        extra={
            "error_type": type(exc).__name__,
            "error": error_text(exc),
            "where": failure_site(exc),
            **extra,
        },
    )


def shorten(exc: BaseException, limit: int = ERROR_TEXT_LIMIT) -> BaseException:
    """``exc`` with its text clipped in place (same class: the state machine matches errors by class name), so
    Lambda's own error line and the failure notice the state machine publishes carry no whole row either.
    Exceptions whose text does not come from their arguments keep it (pydantic bounds each value it quotes)."""
    text = str(exc)
    if len(text) > limit:
        with contextlib.suppress(AttributeError, TypeError):  # an extension type with read-only args
            exc.args = (clip(text, limit),)
            overhead = len(str(exc)) - len(exc.args[0])  # KeyError quotes its argument
            if overhead > 0:
                exc.args = (clip(text, limit - overhead),)
    return exc


def failures_logged(handler: Handler) -> Handler:
    """A handler whose exceptions are logged (:func:`log_failure`) and re-raised with their text clipped."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as exc:
            log_failure("invocation failed", exc)
            shorten(exc)
            raise

    return wrapper  # type: ignore[return-value]
