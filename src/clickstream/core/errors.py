"""Typed domain errors. Each maps to one HTTP status in one place (the ingest API's exception handlers)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(DomainError):
    """Malformed JSON or envelope (HTTP 400)."""

    code = "bad_request"


class Unauthorized(DomainError):
    """No or invalid identity (HTTP 401)."""

    code = "unauthorized"


class PayloadTooLarge(DomainError):
    """Body too large, also after decompression (HTTP 413)."""

    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    """Wrong content type or encoding (HTTP 415)."""

    code = "unsupported_media_type"


class TransientError(DomainError):
    """A dependency failed in a way worth retrying (Step Functions retries on it)."""

    code = "transient"


class InputError(DomainError):
    """Unreadable input or missing required columns (CLI exits non-zero with the message)."""

    code = "input_error"
