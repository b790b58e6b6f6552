"""Gateways (head-end systems): one API key that submits for the meters an admin assigns.

Real fleets report through a head-end that holds one credential for many meters
(GridTokenX's simulator sends its whole fleet with one `X-API-KEY`). A gateway key
is accepted on every ingest door; each reading it forwards is still verified
against its own meter's public key, and a reading for a meter not assigned to the
gateway is refused (`forbidden`) before anything is stored.

Public API (same rules for the API and the dashboard), each commits:

- `create_gateway(session, name, serials, *, by) -> IssuedGateway(gateway, api_key)`:
  the plaintext key is returned this once; only its SHA-256 is stored.
- `assign_meters(session, name, serials, *, by) -> Gateway`: the gateway's meters
  become exactly `serials`.
- `rotate_gateway_key(session, name, *, by) -> IssuedGateway`: the old key stops at once.
- `revoke_gateway(session, name, *, by) -> Gateway`: its key stops working for good.
- `list_gateways(session) -> list[GatewayView]`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import Gateway, GatewayMeter, GatewayStatus, Meter
from core.errors import Conflict, DomainError, NotFound
from core.events import EventType, publish
from core.meters import SERIAL_PATTERN, hash_api_key, new_api_key
from core.readings.identity import GATEWAY_KEY_PREFIX


class InvalidGateway(DomainError):
    code = "invalid_format"


class GatewayNameTaken(Conflict):
    code = "conflict"
    field = "name"


class GatewayRevoked(Conflict):
    code = "conflict"


@dataclass(frozen=True)
class IssuedGateway:
    gateway: Gateway
    api_key: str  # plaintext, shown once


@dataclass(frozen=True, slots=True)
class GatewayView:
    name: str
    status: str
    meters: tuple[str, ...]
    created_by: str
    created_at: datetime
    last_seen_at: datetime | None


def _parse_name(name: str) -> str:
    text = (name or "").strip()
    if not SERIAL_PATTERN.fullmatch(text):
        raise InvalidGateway(
            "a gateway name is 1-64 letters, digits or . _ - and starts with a letter or digit",
            field="name",
        )
    return text


def _meter_ids(session: Session, serials: Iterable[str]) -> list[int]:
    wanted = sorted({(s or "").strip() for s in serials})
    if not all(SERIAL_PATTERN.fullmatch(s) for s in wanted):
        raise InvalidGateway("every meter is named by its serial", field="meters")
    rows = session.execute(select(Meter.serial, Meter.id).where(Meter.serial.in_(wanted)))
    found = {serial: meter_id for serial, meter_id in rows}
    missing = [s for s in wanted if s not in found]
    if missing:
        raise NotFound(f"no meter with serial {', '.join(map(repr, missing))}", field="meters")
    return [found[s] for s in wanted]


def get_gateway(session: Session, name: str) -> Gateway:
    gateway = session.scalar(select(Gateway).where(Gateway.name == (name or "").strip()))
    if gateway is None:
        raise NotFound(f"no gateway named {name!r}", field="name")
    return gateway


def _new_key() -> str:
    # Its own prefix: a leaked key says at a glance that it speaks for many meters.
    return GATEWAY_KEY_PREFIX + new_api_key().removeprefix("gtx_")


def _set_meters(session: Session, gateway: Gateway, meter_ids: list[int]) -> None:
    session.execute(delete(GatewayMeter).where(GatewayMeter.gateway_id == gateway.id))
    session.add_all(GatewayMeter(gateway_id=gateway.id, meter_id=m) for m in meter_ids)


def _changed(session: Session, gateway: Gateway, change: str, by: str) -> None:
    publish(
        session, EventType.GATEWAY_CHANGED, {"gateway": gateway.name, "change": change, "by": by}
    )


def create_gateway(
    session: Session, name: str, serials: Iterable[str], *, by: str = "system"
) -> IssuedGateway:
    """Store a gateway for `serials` and return its API key, shown this once. Commits."""
    name = _parse_name(name)
    meter_ids = _meter_ids(session, serials)
    if session.scalar(select(Gateway.id).where(Gateway.name == name)) is not None:
        raise GatewayNameTaken(f"a gateway named {name!r} exists")
    api_key = _new_key()
    gateway = Gateway(
        name=name,
        api_key_hash=hash_api_key(api_key),
        status=GatewayStatus.ACTIVE.value,
        created_by=by,
    )
    session.add(gateway)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise GatewayNameTaken(f"a gateway named {name!r} exists") from exc
    _set_meters(session, gateway, meter_ids)
    _changed(session, gateway, "created", by)
    session.commit()
    return IssuedGateway(gateway, api_key)


def assign_meters(
    session: Session, name: str, serials: Iterable[str], *, by: str = "system"
) -> Gateway:
    """The gateway may submit for exactly these meters from its next request on. Commits."""
    gateway = get_gateway(session, name)
    _set_meters(session, gateway, _meter_ids(session, serials))
    _changed(session, gateway, "meters_assigned", by)
    session.commit()
    return gateway


def rotate_gateway_key(session: Session, name: str, *, by: str = "system") -> IssuedGateway:
    """A new key; the old one stops working at once. Commits."""
    gateway = get_gateway(session, name)
    if gateway.status == GatewayStatus.REVOKED:
        raise GatewayRevoked(f"gateway {gateway.name!r} is revoked; create a new one")
    api_key = _new_key()
    gateway.api_key_hash = hash_api_key(api_key)
    _changed(session, gateway, "key_rotated", by)
    session.commit()
    return IssuedGateway(gateway, api_key)


def revoke_gateway(session: Session, name: str, *, by: str = "system") -> Gateway:
    """Its key stops working for good (its meters keep their own keys). Commits."""
    gateway = get_gateway(session, name)
    if gateway.status != GatewayStatus.REVOKED:
        gateway.status = GatewayStatus.REVOKED.value
        _changed(session, gateway, "revoked", by)
    session.commit()
    return gateway


def list_gateways(session: Session) -> list[GatewayView]:
    rows = session.execute(
        select(Gateway, Meter.serial)
        .outerjoin(GatewayMeter, GatewayMeter.gateway_id == Gateway.id)
        .outerjoin(Meter, Meter.id == GatewayMeter.meter_id)
        .order_by(Gateway.id, Meter.serial)
    )
    views: dict[int, tuple[Gateway, list[str]]] = {}
    for gateway, serial in rows:
        views.setdefault(gateway.id, (gateway, []))[1].extend([serial] if serial else [])
    return [
        GatewayView(g.name, g.status, tuple(s), g.created_by, g.created_at, g.last_seen_at)
        for g, s in views.values()
    ]
