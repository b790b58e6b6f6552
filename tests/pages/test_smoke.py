"""Every page renders for every role that may see it, without an exception."""

from __future__ import annotations

import pytest

from tests.pages.conftest import Dashboard

PAGES_BY_ROLE = {
    "root": [
        "overview",
        "fleet",
        "live",
        "minting",
        "events",
        "certificates",
        "control",
        "review",
        "admin",
    ],
    "ops": ["overview", "fleet", "live", "minting", "events", "certificates"],
    "alice": ["live", "events", "certificates", "wallet"],
}
CASES = [(user, page) for user, pages in PAGES_BY_ROLE.items() for page in pages]


@pytest.mark.parametrize(("username", "page"), CASES)
def test_page_renders(shared_dashboard: Dashboard, username: str, page: str) -> None:
    at = shared_dashboard.open(username, page)
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]
    assert at.title[0].value
