"""Hourly matching: per hour, only the same hour's retired Wh of the same region count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from core.certificates.issuance import issue_due
from core.certificates.lifecycle import InvalidCertificateRequest
from core.certificates.matching import hourly_match, parse_consumption_csv
from core.db.models import Certificate, User
from tests.core.certificates.support import device_meter, minted
from tests.factories import make_user

H0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_parse_consumption_csv() -> None:
    profile = parse_consumption_csv(
        "hour_start,wh\n2026-11-20T08:00:00Z,1500\n2026-11-20T16:00:00+07:00,0\n"
    )
    assert profile == {H0: 1500, H0 + timedelta(hours=1): 0}
    for bad in ("2026-11-20T08:30:00Z,1", "2026-11-20T08:00:00,1", "2026-11-20T08:00:00Z,1.5",
                "2026-11-20T08:00:00Z,-1", "x,1", "2026-11-20T08:00:00Z",
                "2026-11-20T08:00:00Z,1\n2026-11-20T08:00:00Z,2", ""):  # fmt: skip
        with pytest.raises(InvalidCertificateRequest):
            parse_consumption_csv(bad)


def test_only_the_same_hour_and_region_match(sessions) -> None:
    with sessions() as session:
        alice = make_user(session, "alice")
        pea = device_meter(session, alice)
        other_zone = device_meter(session, alice, grid_region="TH-MEA")
        minted(session, pea, H0 + timedelta(minutes=5), "1.2")  # 1200 Wh in hour 08
        minted(session, pea, H0 + timedelta(hours=1, minutes=5), "0.3")  # 300 Wh in hour 09
        minted(session, other_zone, H0 + timedelta(hours=1, minutes=5), "5")  # another zone
        issue_due(session, now=H0 + timedelta(hours=3), auto_issue=True)
        session.execute(update(Certificate).values(status="retired"))
        session.commit()
        viewer = session.scalar(select(User).where(User.username == "alice"))
        profile = {H0: 1000, H0 + timedelta(hours=1): 800, H0 + timedelta(hours=2): 500}
        report = hourly_match(session, viewer, profile, "th-pea")
        # Oracle: min(consumption, same-hour same-zone retired) per hour.
        assert [(h.certified_wh, h.matched_wh) for h in report.hours] == [
            (1200, 1000),
            (300, 300),
            (0, 0),
        ]
        assert (report.consumption_wh, report.matched_wh) == (2300, 1300)
        assert report.share == Decimal("56.52")  # 1300 / 2300 = 56.5217...%
        assert report.hours[0].share == Decimal("100.00")
        bob = make_user(session, "bob")
        assert hourly_match(session, bob, profile, "TH-PEA").matched_wh == 0  # not his
