"""The last enabled admin cannot be disabled, on both databases, even by two admins at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Role, User
from core.last_admin import LastAdmin
from core.users import set_user_disabled
from tests.factories import make_user


def _enabled_admins(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(User.username)
                .where(User.role == Role.ADMIN.value, User.disabled.is_(False))
                .order_by(User.username)
            )
        )


def test_the_last_enabled_admin_stays(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        make_user(session, "root", role=Role.ADMIN)
        make_user(session, "second", role=Role.ADMIN)
        make_user(session, "gone", role=Role.ADMIN, disabled=True)  # does not count
        make_user(session, "op", role=Role.OPERATOR)
        set_user_disabled(session, "second", True)
        with pytest.raises(LastAdmin) as caught:
            set_user_disabled(session, "root", True)
        assert caught.value.code == "last_admin" and "root is the last enabled admin" in str(
            caught.value
        )
        session.rollback()
        set_user_disabled(session, "op", True)  # anyone else is still disabled as before
        set_user_disabled(session, "root", False)  # enabling is never refused
        set_user_disabled(session, "second", False)
        set_user_disabled(session, "root", True)
    assert _enabled_admins(sessions) == ["second"]


def test_two_admins_disabling_each_other_at_once_leave_one(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        make_user(session, "a", role=Role.ADMIN)
        make_user(session, "b", role=Role.ADMIN)
    first_checked, release = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def disable(username: str, session: Session) -> None:
        try:
            set_user_disabled(session, username, True)
            outcomes[username] = "disabled"
        except LastAdmin:
            outcomes[username] = "refused"
        finally:
            session.close()

    # The first change has checked and written but not committed when the second starts.
    held = sessions()
    commit = held.commit

    def commit_later() -> None:
        first_checked.set()
        assert release.wait(30)
        commit()

    held.commit = commit_later  # type: ignore[method-assign]
    first = threading.Thread(target=disable, args=("a", held))
    first.start()
    assert first_checked.wait(30)
    second = threading.Thread(target=disable, args=("b", sessions()))
    second.start()
    # Unguarded, the second change would pass now, on the stale count of two admins.
    second.join(timeout=1.0)
    release.set()
    first.join(30)
    second.join(30)
    assert outcomes == {"a": "disabled", "b": "refused"}
    assert _enabled_admins(sessions) == ["b"]
