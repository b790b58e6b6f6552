"""Meters with complete registry fields and minted readings, for certificate tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from core.db.models import Meter, MeterReading, ReadingStatus, User
from core.db.types import utcnow
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
    """Minted now, as the pipeline stamps it (issuance reads from its watermark on)."""
    reading = make_reading(session, meter, kwh=str(kwh), at=at, status=ReadingStatus.MINTED)
    reading.minted_at = utcnow()
    session.commit()
    return reading


def seed_certificates(session: Session, now: datetime) -> None:
    """Demo-sized certificates for the browser test: two devices of alice and bob, six
    closed hours each, issued and active; alice has retired one. Commits."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from core.certificates.issuance import issue_due
    from core.db.models import Certificate

    hour = now.replace(minute=0, second=0, microsecond=0)
    for name, technology, region in (("alice", "solar_pv", "TH-PEA"), ("bob", "wind", "TH-MEA")):
        owner = session.scalar(select(User).where(User.username == name))
        meter = device_meter(session, owner, technology=technology, grid_region=region)
        for h in range(1, 7):
            for quarter in range(4):
                at = hour - timedelta(hours=h) + timedelta(minutes=15 * quarter)
                minted(session, meter, at, f"{0.4 + 0.05 * quarter + 0.01 * h:.6f}")
    issue_due(session, now=now, auto_issue=True)
    session.execute(update(Certificate).values(status="active", issue_signature="5" * 88))
    first = session.scalars(select(Certificate).order_by(Certificate.id).limit(1)).one()
    first.status, first.beneficiary, first.purpose = "retired", "Alice's bakery", "Scope 2"
    first.period_start = first.period_end = now.date()
    first.claim_country, first.finished_at = "TH", now
    session.commit()
