"""Factories for users, meters and signed readings, shared by every test package.

Rows are inserted through the same core use cases the product uses where that is
cheap (meters), and directly where the use case is deliberately slow (users:
one argon2 hash of DEFAULT_PASSWORD is computed once and reused). Keys are
derived from names, so a test's wallets and meter keys are the same on every run.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from solders.keypair import Keypair
from sqlalchemy.orm import Session

from core.auth import TOKEN_TTL_SECS, hash_password, issue_token
from core.db.models import LoginSession, Meter, MeterReading, ReadingStatus, Role, SessionKind, User
from core.meters import register_meter, suspend_meter
from core.signatures import reading_message
from core.units import format_kwh, kwh_to_micro, parse_kwh

DEFAULT_PASSWORD = "correct-horse-battery"
# A fixed instant tests use as "now"; readings default to shortly before it.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_sequence = itertools.count(1)


def keypair_for(name: str) -> Keypair:
    """A deterministic ed25519 keypair derived from `name`."""
    return Keypair.from_seed(hashlib.sha256(name.encode()).digest())


def wallet_for(name: str) -> str:
    """A deterministic, valid Solana address (base58 of 32 bytes)."""
    return str(keypair_for(f"wallet:{name}").pubkey())


@cache
def _default_hash() -> str:
    return hash_password(DEFAULT_PASSWORD)


def login_token(
    session: Session,
    user: User,
    secret: str,
    *,
    now: datetime | None = None,
    ttl_secs: int = TOKEN_TTL_SECS,
    kind: SessionKind = SessionKind.API,
    idle_secs: int | None = None,
) -> str:
    """A session token backed by a live login_sessions row, as a login would make. Commits.

    Direct, so tests can start sessions in the past or with lifetimes of seconds.
    """
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    row = LoginSession(
        id=f"t{next(_sequence):06d}-{hashlib.sha256(repr(start).encode()).hexdigest()[:12]}",
        user_id=user.id,
        kind=kind.value,
        created_at=start,
        expires_at=start + timedelta(seconds=ttl_secs),
        last_seen_at=start,
        idle_timeout_secs=idle_secs,
    )
    session.add(row)
    session.commit()
    return issue_token(user, secret, session_id=row.id, ttl_secs=ttl_secs, now=start).access_token


def make_user(
    session: Session,
    username: str | None = None,
    *,
    role: Role | str = Role.PROSUMER,
    wallet_address: str | None = None,
    disabled: bool = False,
) -> User:
    """A user whose password is DEFAULT_PASSWORD; prosumers get a wallet by default. Commits."""
    username = username or f"user{next(_sequence)}"
    role = Role(role)
    if wallet_address is None and role is Role.PROSUMER:
        wallet_address = wallet_for(username)
    user = User(
        username=username,
        role=role.value,
        password_hash=_default_hash(),
        wallet_address=wallet_address,
        disabled=disabled,
    )
    session.add(user)
    session.commit()
    return user


@dataclass(frozen=True)
class MeterKeys:
    """A registered meter with what only the meter knows: its API key and signing key."""

    meter: Meter
    api_key: str
    keypair: Keypair

    @property
    def serial(self) -> str:
        return self.meter.serial

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def payload(self, kwh: str | Decimal | int = "1.5", at: datetime | None = None, **over: Any):
        return signed_reading(self.keypair, self.serial, kwh=kwh, at=at, **over)


def make_meter(
    session: Session,
    owner: User | None = None,
    *,
    serial: str | None = None,
    suspended: bool = False,
) -> MeterKeys:
    """A meter registered through core.meters (owner: a new prosumer by default). Commits."""
    owner = owner or make_user(session)
    serial = serial or f"MTR-{next(_sequence):05d}"
    keypair = keypair_for(f"meter:{serial}")
    registered = register_meter(session, serial, owner.username, str(keypair.pubkey()))
    if suspended:
        suspend_meter(session, serial)
    return MeterKeys(meter=registered.meter, api_key=registered.api_key, keypair=keypair)


def sign(keypair: Keypair, serial: str, at: datetime, kwh: str | Decimal | int) -> str:
    """base58 signature of the canonical message, as a meter computes it."""
    # Decimal, not parse_kwh: tests sign amounts the API must refuse (-1, 1e30) as well.
    return str(keypair.sign_message(reading_message(serial, at, Decimal(kwh))))


def rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def signed_reading(
    keypair: Keypair,
    serial: str,
    *,
    kwh: str | Decimal | int = "1.5",
    at: datetime | None = None,
    **over: Any,
) -> dict[str, Any]:
    """A submit-reading body signed by `keypair`; `over` replaces fields after signing."""
    at = at or NOW - timedelta(minutes=5)
    body: dict[str, Any] = {
        "meter_serial": serial,
        "kwh_amount": kwh if isinstance(kwh, str) else format_kwh(Decimal(kwh)),
        "reading_timestamp": rfc3339(at),
        "meter_signature": sign(keypair, serial, at, kwh),
    }
    body.update(over)
    return body


def make_reading(
    session: Session,
    meter: Meter,
    *,
    kwh: str | Decimal = "1.5",
    at: datetime | None = None,
    status: ReadingStatus | str = ReadingStatus.PENDING,
    **columns: Any,
) -> MeterReading:
    """A stored reading, inserted directly (for read-side tests). Commits."""
    owner = session.get(User, meter.owner_id)
    assert owner is not None
    reading = MeterReading(
        meter_id=meter.id,
        user_id=owner.id,
        wallet_address=owner.wallet_address,
        kwh_micro=kwh_to_micro(parse_kwh(kwh)),
        reading_timestamp=at or NOW - timedelta(minutes=15 * next(_sequence)),
        submitted_at=columns.pop("submitted_at", NOW),
        status=ReadingStatus(status).value,
        meter_signature=columns.pop("meter_signature", "sig"),
        **columns,
    )
    session.add(reading)
    session.commit()
    return reading
