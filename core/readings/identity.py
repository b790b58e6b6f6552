"""Who is submitting: the meter behind an API key, with what acceptance needs, in one query.

A key is a meter's own or a gateway's (core.gateways). A gateway names the meter
per reading; `gateway_meters` resolves them, set-based, among the meters assigned to
the gateway; acceptance then records each meter's contact and, on PostgreSQL, locks
the meters in id order (core.readings.store.touch_meters).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from solders.pubkey import Pubkey
from sqlalchemy import Integer, String, bindparam, or_, select, update
from sqlalchemy.orm import Session

from core.db.models import Gateway, GatewayMeter, GatewayStatus, Meter, User
from core.db.params import any_of
from core.db.statements import per_dialect
from core.meters import MeterUnauthenticated, hash_api_key
from core.readings.errors import ForeignMeter, ReadingRejected, UnknownMeter

# A gateway key's prefix (core.gateways issues them): which table a key is looked up in.
GATEWAY_KEY_PREFIX = "gtxgw_"


@dataclass(frozen=True, slots=True)
class SubmittingMeter:
    id: int
    serial: str
    owner_id: int
    wallet_address: str | None
    public_key: Pubkey
    status: str
    # Set by claim_meter: this transaction has already recorded contact and, on
    # PostgreSQL, holds the meter row's lock; acceptance need not touch it again.
    claimed_at: datetime | None = None
    # Its dlms-enc key as stored (sealed, core.readings.encryption; None: none set) and
    # whether its plaintext frames are refused: read with the identity, so the
    # GridTokenX door needs no query of its own.
    sealed_key: str | None = field(default=None, repr=False)
    encryption_required: bool = False


@lru_cache(maxsize=4096)
def _pubkey(text: str) -> Pubkey:
    return Pubkey.from_string(text)


def _identity(row: Any, claimed_at: datetime | None = None) -> SubmittingMeter:
    meter_id, serial, owner_id, wallet, public_key, status, sealed_key, required = row
    return SubmittingMeter(
        meter_id,
        serial,
        owner_id,
        wallet,
        _pubkey(public_key),
        status,
        claimed_at,
        sealed_key,
        bool(required),
    )


def _identity_query() -> Any:
    return select(
        Meter.id,
        Meter.serial,
        Meter.owner_id,
        User.wallet_address,
        Meter.public_key,
        Meter.status,
        Meter.enc_key,
        Meter.encryption_required,
    ).join(User, User.id == Meter.owner_id)


# Built once: every ingest request runs it.
_BY_KEY_HASH = _identity_query().where(Meter.api_key_hash == bindparam("key_hash"))


def submitting_meter(session: Session, api_key: str) -> SubmittingMeter:
    """The meter holding `api_key` (any status); MeterUnauthenticated otherwise."""
    if not api_key:
        raise MeterUnauthenticated("a meter API key is required (Authorization or X-API-Key)")
    row = session.execute(_BY_KEY_HASH, {"key_hash": hash_api_key(api_key)}).one_or_none()
    if row is None:
        raise MeterUnauthenticated("unknown meter API key")
    return _identity(row)


def meters_by_serial(session: Session, serials: Iterable[str]) -> dict[str, SubmittingMeter]:
    """The meters named by serial (any status), in one query; unknown serials are absent.

    For doors where the meter is named, not keyed (the MQTT topic): the reading's
    signature, verified against this meter's key, is what authenticates it.
    """
    wanted = sorted(set(serials))
    if not wanted:
        return {}
    rows = session.execute(_identity_query().where(Meter.serial.in_(wanted)))
    return {row[1]: _identity(row) for row in rows}


_BY_KEY_HASHES = (
    select(Meter.api_key_hash, *_identity_query().selected_columns)
    .join(User, User.id == Meter.owner_id)
    .where(Meter.api_key_hash.in_(bindparam("key_hashes", expanding=True)))
)


def meters_by_key_hash(session: Session, key_hashes: Iterable[str]) -> dict[str, SubmittingMeter]:
    """The meters holding these hashed API keys, in one query (group commit's lookup);
    unknown hashes are absent. Reads without locking: acceptance locks the meters."""
    wanted = sorted(set(key_hashes))
    if not wanted:
        return {}
    rows = session.execute(_BY_KEY_HASHES, {"key_hashes": wanted})
    return {row[0]: _identity(row[1:]) for row in rows}


def meter_identity(session: Session, meter: Meter) -> SubmittingMeter:
    return _identity(session.execute(_identity_query().where(Meter.id == meter.id)).one())


_METERS, _USERS = Meter.__table__, User.__table__
# The owner's wallet through a scalar subquery: SQLite's RETURNING may not name
# the tables of an UPDATE ... FROM.
_OWNER_WALLET = (
    select(_USERS.c.wallet_address).where(_USERS.c.id == _METERS.c.owner_id).scalar_subquery()
)
_CLAIM = (
    update(_METERS)
    .where(_METERS.c.api_key_hash == bindparam("key_hash"))
    .values(last_seen_at=bindparam("now"))
    .returning(
        _METERS.c.id,
        _METERS.c.serial,
        _METERS.c.owner_id,
        _OWNER_WALLET,
        _METERS.c.public_key,
        _METERS.c.status,
        _METERS.c.enc_key,
        _METERS.c.encryption_required,
    )
)


@dataclass(frozen=True, slots=True)
class SubmittingGateway:
    """A gateway key: it may submit for the meters assigned to it, each named per reading."""

    id: int
    name: str


_GATEWAYS = Gateway.__table__
# A gateway's contact time is recorded at most this often. Recording it on every
# request would hold the gateway's row locked to the end of each request, and every
# meter behind one head-end key would queue there, one request at a time.
GATEWAY_CONTACT_SECS = 30
_GATEWAY_BY_KEY = select(_GATEWAYS.c.id, _GATEWAYS.c.name, _GATEWAYS.c.last_seen_at).where(
    _GATEWAYS.c.api_key_hash == bindparam("key_hash"),
    _GATEWAYS.c.status == GatewayStatus.ACTIVE.value,
)
# Guarded: of the requests that all saw a stale contact time, one writes it.
_GATEWAY_CONTACT = (
    update(_GATEWAYS)
    .where(
        _GATEWAYS.c.id == bindparam("gateway_id"),
        or_(_GATEWAYS.c.last_seen_at.is_(None), _GATEWAYS.c.last_seen_at < bindparam("stale")),
    )
    .values(last_seen_at=bindparam("now"))
)


def claim_submitter(
    session: Session, api_key: str, now: datetime
) -> SubmittingMeter | SubmittingGateway:
    """The meter or the active gateway holding `api_key`; MeterUnauthenticated otherwise.

    One statement: the key's prefix says whether it is a gateway's. A revoked
    gateway's key is as unknown as a made-up one. A gateway's row is read, not
    locked: its contact time is written only when older than GATEWAY_CONTACT_SECS.
    """
    if not api_key.startswith(GATEWAY_KEY_PREFIX):
        # Only gateway keys carry their prefix; any other key is a meter's or nobody's.
        return claim_meter(session, api_key, now)
    row = session.execute(_GATEWAY_BY_KEY, {"key_hash": hash_api_key(api_key)}).one_or_none()
    if row is None:
        raise MeterUnauthenticated(UNKNOWN_GATEWAY_KEY)
    _note_gateway_contact(session, row.id, row.last_seen_at, now)
    return SubmittingGateway(row.id, row.name)


UNKNOWN_GATEWAY_KEY = "unknown meter or gateway API key"


def _note_gateway_contact(
    session: Session, gateway_id: int, last_seen_at: datetime | None, now: datetime
) -> bool:
    """Write the gateway's contact time if older than GATEWAY_CONTACT_SECS; whether written."""
    stale = now - timedelta(seconds=GATEWAY_CONTACT_SECS)
    if last_seen_at is not None and last_seen_at >= stale:
        return False
    session.execute(_GATEWAY_CONTACT, {"gateway_id": gateway_id, "stale": stale, "now": now})
    return True


_GATEWAYS_BY_KEY_HASHES = select(
    _GATEWAYS.c.api_key_hash, _GATEWAYS.c.id, _GATEWAYS.c.name, _GATEWAYS.c.last_seen_at
).where(
    _GATEWAYS.c.api_key_hash.in_(bindparam("key_hashes", expanding=True)),
    _GATEWAYS.c.status == GatewayStatus.ACTIVE.value,
)


def gateways_by_key_hash(
    session: Session, key_hashes: Iterable[str], now: datetime
) -> tuple[dict[str, SubmittingGateway], bool]:
    """The active gateways holding these hashed keys, in one query (group commit's lookup),
    and whether a contact time was written (then the caller commits it)."""
    wanted = sorted(set(key_hashes))
    if not wanted:
        return {}, False
    found: dict[str, SubmittingGateway] = {}
    written = False
    for key_hash, gateway_id, name, last_seen_at in session.execute(
        _GATEWAYS_BY_KEY_HASHES, {"key_hashes": wanted}
    ):
        written |= _note_gateway_contact(session, gateway_id, last_seen_at, now)
        found[key_hash] = SubmittingGateway(gateway_id, name)
    return found, written


def gateway_meters(
    session: Session, wanted: Iterable[tuple[SubmittingGateway, str]]
) -> list[SubmittingMeter | ReadingRejected]:
    """For each (gateway, serial), the meter if assigned to the gateway, else why not
    (`forbidden` for a meter not assigned to it, `unknown_meter` for a serial no meter
    has), in two queries at most. Reads without locking:
    acceptance touches and locks the meters."""
    pairs = list(wanted)
    if not pairs:
        return []
    rows = session.execute(
        _gateway_meters_statement(session.get_bind().dialect.name),
        {"gateway_ids": sorted({g.id for g, _ in pairs}), "serials": sorted({s for _, s in pairs})},
    )
    assigned = {(row[0], row[2]): _identity(row[1:]) for row in rows}
    missing = {s for g, s in pairs if (g.id, s) not in assigned}
    known = (
        set(session.scalars(select(Meter.serial).where(Meter.serial.in_(sorted(missing)))))
        if missing
        else set()
    )
    return [assigned.get((g.id, s)) or _not_assigned(g, s, s in known) for g, s in pairs]


@per_dialect
def _gateway_meters_statement(dialect: str) -> Any:
    """core.db.params: the gateway ids and the serials as one array each on PostgreSQL."""
    return (
        select(GatewayMeter.gateway_id, *_identity_query().selected_columns)
        .join(Meter, Meter.id == GatewayMeter.meter_id)
        .join(User, User.id == Meter.owner_id)
        .where(
            any_of(GatewayMeter.gateway_id, "gateway_ids", Integer(), dialect),
            any_of(Meter.serial, "serials", String(), dialect),
        )
    )


def _not_assigned(gateway: SubmittingGateway, serial: str, exists: bool) -> ReadingRejected:
    if not exists:
        return UnknownMeter(f"no meter with serial {serial!r}")
    return ForeignMeter(f"meter {serial!r} is not assigned to gateway {gateway.name!r}")


def claim_meter(session: Session, api_key: str, now: datetime) -> SubmittingMeter:
    """`submitting_meter` and the meter's contact time in one statement (the ingest path).

    Opens the caller's write transaction: on PostgreSQL the meter row stays locked
    until it ends, so one meter's submissions are judged one after the other. A
    refusal that rolls back also undoes the contact time.
    """
    if not api_key:
        raise MeterUnauthenticated("a meter API key is required (Authorization or X-API-Key)")
    row = session.execute(_CLAIM, {"key_hash": hash_api_key(api_key), "now": now}).one_or_none()
    if row is None:
        raise MeterUnauthenticated("unknown meter API key")
    return _identity(row, claimed_at=now)
