"""Registering meters, their API keys, suspension and key rotation."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Event, Meter, Role
from core.errors import DomainError, NotFound
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


DEVICE = {
    "technology": "solar_pv",
    "capacity_kw": "5.5",
    "country": "th",
    "grid_region": "TH-PEA",
    "latitude": "13.756331",
    "longitude": "100.501762",
    "commissioning_date": "2024-03-01",
}


def test_registry_fields_set_at_registration_and_stored_exactly(
    sessions: sessionmaker[Session],
) -> None:
    from datetime import date
    from decimal import Decimal

    with sessions() as session:
        make_user(session, "p1")
        register_meter(session, "M-1", "p1", PUBKEY, device=DEVICE)
    with sessions() as session:
        meter = session.scalar(select(Meter))
        assert meter is not None
        assert (meter.technology, meter.capacity_kw, meter.country, meter.grid_region) == (
            "solar_pv",
            Decimal("5.5"),
            "TH",
            "TH-PEA",
        )
        assert (meter.latitude, meter.longitude) == (Decimal("13.756331"), Decimal("100.501762"))
        assert meter.commissioning_date == date(2024, 3, 1)


def test_a_bad_registry_field_refuses_the_registration(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        make_user(session, "p1")
        with pytest.raises(DomainError) as caught:
            register_meter(session, "M-1", "p1", PUBKEY, device={**DEVICE, "country": "ZZ"})
        assert caught.value.field == "country"
        assert session.scalar(select(Meter)) is None


def test_editing_registry_fields_is_audited_with_old_and_new(
    sessions: sessionmaker[Session],
) -> None:
    from core.device_attributes import certificate_blocker
    from core.meters import update_device_attributes

    with sessions() as session:
        owner = make_user(session, "p1")
        register_meter(session, "M-1", "p1", PUBKEY)
        meter = session.scalar(select(Meter))
        assert certificate_blocker(meter) == (
            "cannot issue certificates: missing technology, capacity_kw, country, grid_region, "
            "commissioning_date"
        )
        update_device_attributes(session, "M-1", DEVICE, by="root")
        assert certificate_blocker(meter) is None
        update_device_attributes(
            session, "M-1", {"capacity_kw": "6", "latitude": "", "longitude": ""}, by="root"
        )
        update_device_attributes(session, "M-1", {"capacity_kw": "6.000"}, by="root")  # no change
        events = session.scalars(select(Event).order_by(Event.id)).all()
        edits = [e.payload for e in events if e.payload.get("change") == "device_updated"]
        assert [e["by"] for e in edits] == ["root", "root"]
        assert edits[0]["changes"]["capacity_kw"] == {"old": None, "new": "5.5"}
        assert edits[1]["changes"] == {
            "capacity_kw": {"old": "5.5", "new": "6"},
            "latitude": {"old": "13.756331", "new": None},
            "longitude": {"old": "100.501762", "new": None},
        }
        assert {e.user_id for e in events} == {owner.id}
        with pytest.raises(NotFound):
            update_device_attributes(session, "M-9", {"country": "TH"})
