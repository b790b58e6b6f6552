"""Meters with complete registry fields and minted readings, for certificate tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from core.db.models import Meter, MeterReading, ReadingStatus, User
from core.meters import update_device_attributes
from tests.factories import make_meter, make_reading

DEVICE = {
    "technology": "solar_pv",
    "capacity_kw": "10",
    "country": "TH",
    "grid_region": "TH-PEA",
    "commissioning_date": "2024-03-01",
}


def device_meter(session: Session, owner: User | None = None, **fields: str) -> Meter:
    """A registered meter with every field a certificate needs. Commits."""
    meter = make_meter(session, owner).meter
    update_device_attributes(session, meter.serial, {**DEVICE, **fields})
    return meter


def minted(session: Session, meter: Meter, at: datetime, kwh: str | Decimal) -> MeterReading:
    return make_reading(session, meter, kwh=str(kwh), at=at, status=ReadingStatus.MINTED)
