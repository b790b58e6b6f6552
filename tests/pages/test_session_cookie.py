"""The login cookie's routes: one-time hand-offs, no open redirect, HttpOnly cookie."""

from __future__ import annotations

import pytest

from pages.common.session_cookie import Handoffs, safe_next


def test_a_handoff_code_works_once_and_only_while_fresh() -> None:
    now = [0.0]
    handoffs = Handoffs(ttl_secs=60, clock=lambda: now[0])
    code = handoffs.issue("token-1")
    assert handoffs.redeem("not-" + code) is None
    assert handoffs.redeem(code) == "token-1"
    assert handoffs.redeem(code) is None
    late = handoffs.issue("token-2")
    now[0] = 60.0
    assert handoffs.redeem(late) is None
    assert handoffs.redeem("") is None and handoffs.redeem("x" * 65) is None


@pytest.mark.parametrize(
    ("asked", "sent"),
    [
        ("/live?range=24h", "/live?range=24h"),
        ("/", "/"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/a\r\nSet-Cookie: x", "/"),
        ("live", "/"),
    ],
)
def test_next_is_a_path_on_this_site(asked: str | None, sent: str) -> None:
    assert safe_next(asked) == sent
