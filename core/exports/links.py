"""Signed, short-lived download links: which user may fetch which table with which filter.

A browser download cannot send the dashboard's session, so the page puts a link
in front of the user that carries its own proof: user id, table, filter and an
expiry, HMAC-signed with a key derived from API_SECRET_KEY (never the session
key itself, so a link is not a session and cannot be used as one). It grants one
read-only export for LINK_TTL_SECS; the user is re-checked (disabled, role) when
the link is used. It is a bearer capability while it lives: do not share it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from core.errors import DomainError
from core.views.filters import TableFilter, parse_filter

LINK_TTL_SECS = 900
_PURPOSE = b"gridtokenx export link v1"


class InvalidLink(DomainError):
    code = "invalid_link"  # 422: ask the page for a fresh link


@dataclass(frozen=True, slots=True)
class ExportGrant:
    user_id: int
    table: str
    filter: TableFilter


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_link(
    secret: str, user_id: int, table: str, flt: TableFilter, now: datetime,
    ttl: int = LINK_TTL_SECS,
) -> str:  # fmt: skip
    claims = {"u": user_id, "t": table, "f": flt.as_query(), "e": int(now.timestamp()) + ttl}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    mac = _b64(hmac.new(_key(secret), body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def verify_link(secret: str, token: str, now: datetime) -> ExportGrant:
    body, _, mac = token.partition(".")
    expected = _b64(hmac.new(_key(secret), body.encode(), hashlib.sha256).digest())
    if not mac or not hmac.compare_digest(mac, expected):
        raise InvalidLink("this download link is not valid; download again from the page")
    try:
        claims = json.loads(_unb64(body))
        grant = ExportGrant(int(claims["u"]), str(claims["t"]), parse_filter(claims["f"]))
        expires = int(claims["e"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidLink("this download link is malformed") from exc
    if now.timestamp() >= expires:
        raise InvalidLink("this download link has expired; download again from the page")
    return grant
