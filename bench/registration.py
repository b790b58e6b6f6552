"""Prosumers and their meters for a benchmark, inserted in bulk.

Registration is not what the ingest benchmarks measure, and one register_meter per
meter took minutes on a loaded machine: the rows are added directly, one flush for
the owners and one for the meters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from core.db.models import Meter, MeterStatus, User
from tests.factories import wallet_for


def numbered(prefix: str, count: int) -> tuple[list[str], list[str]]:
    """Serials {prefix}-00000, ... and, one each, their owners' names {prefix}00000, ...
    (lower case)."""
    serials = [f"{prefix}-{index:05d}" for index in range(count)]
    return serials, [f"{prefix.lower()}{index:05d}" for index in range(count)]


def add_prosumer_meters(
    session: Session,
    serials: list[str],
    owner_names: list[str],
    meter_columns: Callable[[str], dict[str, Any]],
) -> None:
    """Prosumers named `owner_names` (wallets from tests.factories.wallet_for) and an
    active meter per serial, the i-th owned by owner i modulo their number;
    `meter_columns(serial)` gives the rest of its row (public key, API key hash, ...).
    Commits."""
    owners = [
        User(
            username=name,
            role="prosumer",
            password_hash="!",
            wallet_address=wallet_for(name),
            disabled=False,
        )
        for name in owner_names
    ]
    session.add_all(owners)
    session.flush()
    session.add_all(
        Meter(
            serial=serial,
            owner_id=owners[index % len(owners)].id,
            status=MeterStatus.ACTIVE.value,
            **meter_columns(serial),
        )
        for index, serial in enumerate(serials)
    )
    session.commit()
