"""Registering meters, their API keys, suspension and key rotation."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Event, Meter, Role
from core.errors import NotFound
from core.meters import (
    InvalidMeter,
    InvalidOwner,
    MeterUnauthenticated,
    SerialTaken,
    authenticate_meter,
    hash_api_key,
    register_meter,
    resume_meter,
    rotate_meter_key,
    set_meter_status,
    suspend_meter,
)
from tests.factories import keypair_for, make_user

PUBKEY = str(keypair_for("m").pubkey())


def test_register_meter_shows_the_key_once_and_stores_its_hash(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        owner = make_user(session, "p1")
        registered = register_meter(session, "M-1", "p1", PUBKEY, by="root")
        assert registered.api_key.startswith("gtx_") and len(registered.api_key) > 40
        stored = session.scalar(select(Meter))
        assert stored is not None and stored.api_key_hash == hash_api_key(registered.api_key)
        assert registered.api_key not in stored.api_key_hash
        assert (stored.owner_id, stored.status, stored.public_key) == (owner.id, "active", PUBKEY)
        assert authenticate_meter(session, registered.api_key).id == stored.id
        [event] = session.scalars(select(Event)).all()
        assert (event.type, event.user_id) == ("meter_changed", owner.id)


@pytest.mark.parametrize(
    ("serial", "owner", "key", "error"),
    [
        ("M:1", "p1", PUBKEY, InvalidMeter),
        ("", "p1", PUBKEY, InvalidMeter),
        ("M-1", "p1", "abc", InvalidMeter),
        ("M-1", "p1", "0OIl" * 8, InvalidMeter),
        ("M-1", "nobody", PUBKEY, NotFound),
        ("M-1", "op", PUBKEY, InvalidOwner),
        ("M-1", "gone", PUBKEY, InvalidOwner),
    ],
)
def test_register_meter_refuses(
    sessions: sessionmaker[Session], serial: str, owner: str, key: str, error: type[Exception]
) -> None:
    with sessions() as session:
        make_user(session, "p1")
        make_user(session, "op", role=Role.OPERATOR)
        make_user(session, "gone", disabled=True)
        with pytest.raises(error):
            register_meter(session, serial, owner, key)
        assert session.scalar(select(Meter)) is None


def test_serials_are_unique(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        make_user(session, "p1")
        register_meter(session, "M-1", "p1", PUBKEY)
        with pytest.raises(SerialTaken):
            register_meter(session, "M-1", "p1", PUBKEY)


def test_suspend_resume_and_rotate(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        make_user(session, "p1")
        old_key = register_meter(session, "M-1", "p1", PUBKEY).api_key
        assert suspend_meter(session, "M-1", by="root").status == "suspended"
        # A suspended meter still authenticates: the refusal names the suspension.
        assert authenticate_meter(session, old_key).status == "suspended"
        assert resume_meter(session, "M-1").status == "active"
        new_key = rotate_meter_key(session, "M-1").api_key
        assert authenticate_meter(session, new_key).serial == "M-1"
        with pytest.raises(MeterUnauthenticated):
            authenticate_meter(session, old_key)
        with pytest.raises(InvalidMeter):
            set_meter_status(session, "M-1", "broken")
        with pytest.raises(NotFound):
            set_meter_status(session, "M-404", "active")
        changes = [e.payload["change"] for e in session.scalars(select(Event).order_by(Event.id))]
        assert changes == ["registered", "suspended", "resumed", "key_rotated"]


def test_unknown_or_missing_keys_are_unauthenticated(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        for key in ("", "gtx_nope"):
            with pytest.raises(MeterUnauthenticated) as caught:
                authenticate_meter(session, key)
            assert caught.value.code == "unauthenticated"
