"""Who is submitting: the meter behind an API key, with what acceptance needs in one query."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from solders.pubkey import Pubkey
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Meter, User
from core.meters import MeterUnauthenticated, hash_api_key


@dataclass(frozen=True, slots=True)
class SubmittingMeter:
    id: int
    serial: str
    owner_id: int
    wallet_address: str | None
    public_key: Pubkey
    status: str


@lru_cache(maxsize=4096)
def _pubkey(text: str) -> Pubkey:
    return Pubkey.from_string(text)


def _identity(row: Any) -> SubmittingMeter:
    meter_id, serial, owner_id, wallet, public_key, status = row
    return SubmittingMeter(meter_id, serial, owner_id, wallet, _pubkey(public_key), status)


def _identity_query() -> Any:
    return select(
        Meter.id, Meter.serial, Meter.owner_id, User.wallet_address, Meter.public_key, Meter.status
    ).join(User, User.id == Meter.owner_id)


def submitting_meter(session: Session, api_key: str) -> SubmittingMeter:
    """The meter holding `api_key` (any status); MeterUnauthenticated otherwise."""
    if not api_key:
        raise MeterUnauthenticated("a meter API key is required (Authorization or X-API-Key)")
    statement = _identity_query().where(Meter.api_key_hash == hash_api_key(api_key))
    row = session.execute(statement).one_or_none()
    if row is None:
        raise MeterUnauthenticated("unknown meter API key")
    return _identity(row)


def meter_identity(session: Session, meter: Meter) -> SubmittingMeter:
    return _identity(session.execute(_identity_query().where(Meter.id == meter.id)).one())
