"""Ingest bridges' health: the bridge writes a heartbeat row, /health and the dashboard read it.

Why a row: the bridge is its own process; the API and the dashboard must show
whether it is connected to its broker without a channel of their own to it. One
UPDATE every few seconds is cheap, and a heartbeat older than `STALE_AFTER` says
the bridge itself is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import IngestBridge

STALE_AFTER = timedelta(seconds=15)


@dataclass(frozen=True, slots=True)
class BridgeHealth:
    name: str
    broker: str
    connected: bool
    messages_per_sec: Decimal
    counters: dict[str, int]
    last_message_at: datetime | None
    heartbeat_at: datetime
    alive: bool  # the heartbeat is fresh

    @property
    def status(self) -> str:
        if not self.alive:
            return "stopped"
        return "connected" if self.connected else "disconnected"


def record_heartbeat(
    session: Session,
    *,
    name: str,
    broker: str,
    connected: bool,
    messages_per_sec: Decimal,
    counters: Mapping[str, int],
    started_at: datetime,
    last_message_at: datetime | None,
    now: datetime,
) -> None:
    """Write the bridge's row (created on first beat). Commits."""
    values = {
        "broker": broker,
        "connected": connected,
        "messages_per_sec": messages_per_sec,
        "counters": dict(counters),
        "started_at": started_at,
        "last_message_at": last_message_at,
        "heartbeat_at": now,
    }
    table = IngestBridge.__table__
    changed = session.execute(update(table).where(table.c.name == name).values(**values))
    if not changed.rowcount:  # type: ignore[attr-defined]
        session.add(IngestBridge(name=name, **values))
    session.commit()


def bridge_health(session: Session, now: datetime) -> list[BridgeHealth]:
    """Every bridge that ever beat, newest heartbeat first."""
    rows = session.scalars(select(IngestBridge).order_by(IngestBridge.heartbeat_at.desc()))
    return [
        BridgeHealth(
            name=row.name,
            broker=row.broker,
            connected=row.connected,
            messages_per_sec=row.messages_per_sec,
            counters={key: int(value) for key, value in (row.counters or {}).items()},
            last_message_at=row.last_message_at,
            heartbeat_at=row.heartbeat_at,
            alive=now - row.heartbeat_at <= STALE_AFTER,
        )
        for row in rows
    ]


def summary_line(bridges: list[BridgeHealth], now: datetime) -> str:
    """One line for the dashboard: the freshest bridge's state, rate and last message."""
    if not bridges:
        return "MQTT bridge: not running (no heartbeat yet)"
    bridge = bridges[0]
    parts = [f"MQTT bridge: {bridge.status}"]
    if bridge.alive:
        parts.append(f"{format(bridge.messages_per_sec, 'f')} messages/s")
    if bridge.last_message_at is None:
        parts.append("no message yet")
    else:
        seconds = max(0, int((now - bridge.last_message_at).total_seconds()))
        parts.append(f"last message {seconds} s ago")
    if not bridge.alive:
        parts.append(f"last heartbeat {bridge.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC")
    return " · ".join(parts)
