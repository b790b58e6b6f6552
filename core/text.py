"""What a text field from outside may hold before it reaches a query, a hash or a log.

PostgreSQL refuses a NUL character in text, and a lone surrogate ("\\ud800", legal in
JSON escapes and Python strings) cannot be encoded as UTF-8 for SQLite, PostgreSQL,
argon2 or a signed message. Both are answered as bad input at the edge instead of
failing deep inside a driver. `text_problem` says what is wrong, so each caller raises
its own domain error (`invalid_format`, `unauthenticated`, `not_found`).
"""

from __future__ import annotations

import re

# C0 controls other than tab, newline and carriage return, and DEL: nothing a
# username, serial, key or note needs, and they garble logs and terminals.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text_problem(value: str, *, max_length: int, single_line: bool = True) -> str | None:
    """Why `value` is not acceptable text (None when it is)."""
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode text (a lone surrogate)"
    if _CONTROL.search(value) or (single_line and ("\n" in value or "\r" in value)):
        return "contains control characters"
    return None


def is_clean_text(value: object, *, max_length: int) -> bool:
    return isinstance(value, str) and text_problem(value, max_length=max_length) is None


def printable(value: str) -> str:
    """`value` safe to put in a message or a JSON answer: lone surrogates escaped."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
