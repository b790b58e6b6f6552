"""The Users page says why the last enabled admin stays enabled.

The page lists only the other users, so the refusal shows when two admins disable
each other at once: here "deputy" is disabling "root" (written, not committed yet)
while root, on the page, disables deputy. Root's click waits for deputy's change,
then counts again and is refused with the message.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from core.db.models import Role, User
from core.users import set_user_disabled
from tests.factories import make_user
from tests.pages.conftest import Dashboard
from tests.support.localnet import wait_for


def test_the_users_page_shows_the_last_admin_refusal(dashboard: Dashboard) -> None:
    app = dashboard.app
    if app.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL: its lock waits are visible, so the race is staged exactly")
    with app.sessions() as session:
        make_user(session, "deputy", role=Role.ADMIN)
    at = dashboard.open("root", "admin")
    at.selectbox(key="admin.user_toggle_name").select("deputy").run()

    written, release = threading.Event(), threading.Event()
    held = app.sessions()
    commit = held.commit

    def commit_when_released() -> None:
        written.set()
        assert release.wait(60)
        commit()

    held.commit = commit_when_released  # type: ignore[method-assign]
    deputy = threading.Thread(target=lambda: set_user_disabled(held, "root", True, by="deputy"))
    deputy.start()
    assert written.wait(30)

    def release_once_root_waits() -> None:
        with app.engine.connect() as probe:
            wait_for(
                lambda: probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                ).scalar(),
                timeout=30,
                what="root's change waiting for deputy's lock",
            )
        release.set()

    watcher = threading.Thread(target=release_once_root_waits)
    watcher.start()
    at.button(key="admin.user_toggle").click().run()
    watcher.join(60)
    deputy.join(60)
    held.close()
    messages = [block.value for block in at.error]
    assert any("deputy is the last enabled admin" in m and "(last_admin)" in m for m in messages)
    with app.sessions() as session:
        enabled = session.scalars(
            select(User.username).where(User.role == Role.ADMIN.value, User.disabled.is_(False))
        ).all()
    assert enabled == ["deputy"]
