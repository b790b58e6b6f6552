"""The base of every domain error: a stable `code` the web and UI layers translate."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain was broken; `code` is stable, the message says why."""

    code = "error"
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    code = "conflict"


class InvalidInput(DomainError):
    code = "invalid_format"
