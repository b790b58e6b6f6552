"""The demo passwords live only in DATA_DIR/demo-logins.txt (0600): the simulator and the
launcher say where, and print none of them."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from core.bootstrap import App
from core.db.models import Role
from simulator import __main__ as simulator_main
from tests.api.server import serve
from tests.factories import DEFAULT_PASSWORD, NOW, make_user


@pytest.fixture
def api_url(app: App) -> Iterator[str]:
    api = create_app(app, clock=lambda: NOW, config_ttl_secs=0, create_first_admin=False)
    with serve(api) as url:
        yield url


def _passwords(logins: Path) -> list[str]:
    rows = [line.split() for line in logins.read_text().splitlines()[2:]]
    return [row[2] for row in rows]


def test_the_simulator_prints_where_the_logins_are_not_the_passwords(
    app: App,
    api_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with app.sessions() as session:
        make_user(session, "root", role=Role.ADMIN)
    data = tmp_path / "demo-data"
    for name, value in {
        "DATA_DIR": str(data),
        "ADMIN_USERNAME": "root",
        "ADMIN_PASSWORD": DEFAULT_PASSWORD,
        "DATABASE_URL": app.settings.app.effective_database_url,
    }.items():
        monkeypatch.setenv(name, value)
    assert simulator_main.main(["--api-url", api_url, "--backfill-hours", "0", "--once"]) == 0
    printed = capsys.readouterr()
    logins = data / "demo-logins.txt"
    assert stat.S_IMODE(logins.stat().st_mode) == 0o600
    passwords = _passwords(logins)
    assert len(passwords) == 4 and DEFAULT_PASSWORD in passwords
    assert str(logins) in printed.out
    for password in passwords:
        assert password not in printed.out and password not in printed.err


def test_the_launcher_says_where_the_logins_are(tmp_path: Path, capsys) -> None:
    from launcher.__main__ import logins_notice
    from launcher.supervisor import say

    logins = tmp_path / "demo-logins.txt"
    say(logins_notice(logins))
    out = capsys.readouterr().out
    assert str(logins) in out and "printed nowhere" in out
