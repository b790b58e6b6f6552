"""Creating users and the first admin."""

from __future__ import annotations

import stat
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.auth import authenticate
from core.config import Settings
from core.db.models import Event, Role, User
from core.users import (
    InvalidUser,
    UsernameTaken,
    admin_password_file,
    create_user,
    ensure_first_admin,
    set_user_disabled,
)
from core.wallets import InvalidWallet
from tests.factories import wallet_for


def test_create_prosumer_with_wallet(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        user = create_user(session, "p1", "long-enough", "prosumer", wallet_for("p1"), by="root")
        assert (user.role, user.wallet_address) == ("prosumer", wallet_for("p1"))
        assert authenticate(session, "p1", "long-enough").id == user.id
        [event] = session.scalars(select(Event)).all()
        assert (event.type, event.user_id) == ("user_changed", None)
        assert event.payload == {
            "username": "p1",
            "change": "created",
            "role": "prosumer",
            "by": "root",
        }


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"wallet_address": None}, InvalidWallet, "wallet_address"),
        ({"wallet_address": "not-base58-0OIl"}, InvalidWallet, "wallet_address"),
        ({"wallet_address": "abc"}, InvalidWallet, "wallet_address"),
        ({"role": "king"}, InvalidUser, "role"),
        ({"password": "short"}, InvalidUser, "password"),
        ({"username": "has space"}, InvalidUser, "username"),
    ],
)
def test_create_user_refuses_bad_input(
    sessions: sessionmaker[Session], kwargs: dict, error: type[Exception], field: str
) -> None:
    arguments = {
        "username": "p1",
        "password": "long-enough",
        "role": "prosumer",
        "wallet_address": wallet_for("p1"),
        **kwargs,
    }
    with sessions() as session:
        with pytest.raises(error) as caught:
            create_user(session, **arguments)
        assert caught.value.field == field
        assert session.scalar(select(User)) is None


def test_staff_need_no_wallet_and_usernames_are_unique(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert create_user(session, "op", "long-enough", Role.OPERATOR).wallet_address is None
        with pytest.raises(UsernameTaken) as caught:
            create_user(session, "op", "long-enough", Role.ADMIN)
        assert caught.value.code == "username_taken"


def test_a_disabled_user_cannot_log_in(sessions: sessionmaker[Session]) -> None:
    from core.auth import InvalidCredentials

    with sessions() as session:
        create_user(session, "op", "long-enough", Role.OPERATOR)
        set_user_disabled(session, "op", True, by="root")
        with pytest.raises(InvalidCredentials):
            authenticate(session, "op", "long-enough")
        set_user_disabled(session, "op", False, by="root")
        assert authenticate(session, "op", "long-enough").username == "op"


def test_first_admin_from_the_environment(
    sessions: sessionmaker[Session], make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(ADMIN_USERNAME="root", ADMIN_PASSWORD="pw").app
    with sessions() as session:
        first = ensure_first_admin(session, settings)
        assert first is not None and first.generated_password is None
        assert authenticate(session, "root", "pw").role == "admin"
        assert ensure_first_admin(session, settings) is None
    assert not admin_password_file(settings).exists()


def test_first_admin_with_a_generated_password_saved_0600(
    sessions: sessionmaker[Session], make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings().app
    with sessions() as session:
        first = ensure_first_admin(session, settings)
        assert first is not None and first.generated_password
        path = admin_password_file(settings)
        assert first.password_file == path
        assert path.read_text().strip() == first.generated_password
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert authenticate(session, "admin", first.generated_password).role == "admin"
        # Second start: nothing created, nothing to print.
        assert ensure_first_admin(session, settings) is None
