"""Hourly matching at its edges: every CSV refusal with its line and reason, the hour
limit, rounding of shares, and which retired certificates a query counts (status, region,
the profile's first and last hour, the viewer). Expected figures are written out here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.certificates.issuance import issue_due
from core.certificates.lifecycle import InvalidCertificateRequest
from core.certificates.matching import (
    MAX_HOURS,
    HourMatch,
    MatchReport,
    hourly_match,
    parse_consumption_csv,
)
from core.db.models import Certificate, CertificateBundle, User
from tests.core.certificates.support import device_meter, minted
from tests.factories import make_user

H0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def refusal(text: str) -> tuple[str, str | None]:
    with pytest.raises(InvalidCertificateRequest) as caught:
        parse_consumption_csv(text)
    return str(caught.value), caught.value.field


def test_header_blank_rows_spaces_and_offsets() -> None:
    text = (
        " Hour_Start , WH \n\n , \n2026-11-20T08:00:00Z, 15 \n"
        "2026-11-20T10:00:00+01:00,0\n2026-11-20T10:00:00.000000+00:00,7\n"
    )
    assert parse_consumption_csv(text) == {
        H0: 15,
        H0 + timedelta(hours=1): 0,
        H0 + timedelta(hours=2): 7,
    }
    assert all(hour.tzinfo is UTC for hour in parse_consumption_csv(text))
    assert parse_consumption_csv("2026-11-20T08:00:00Z,1") == {H0: 1}  # no header
    assert parse_consumption_csv("2026-11-20T08:00:00z,1") == {H0: 1}  # RFC 3339 allows "z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hour_start,wh\n2026-11-20T08:00:00Z,1,2", "line 2: expected two columns: hour_start,wh"),
        ("2026-11-20T08:00:00Z", "line 1: expected two columns: hour_start,wh"),
        ("x,1\n2026-11-20T08:00:00Z,1\nhour_start,wh",
         "line 1: 'x' is not an RFC 3339 time"),
        ("2026-11-20T08:00:00Z,1\nhour_start,wh", "line 2: 'hour_start' is not an RFC 3339 time"),
        ("2026-11-20T08:00:00,1", "line 1: the time needs an offset (e.g. Z)"),
        ("2026-11-20T08:01:00Z,1", "line 1: hour_start must be on the hour"),
        ("2026-11-20T08:00:01Z,1", "line 1: hour_start must be on the hour"),
        ("2026-11-20T08:00:00.000001Z,1", "line 1: hour_start must be on the hour"),
        ("2026-11-20T08:00:00+05:30,1", "line 1: hour_start must be on the hour"),
        ("\n2026-11-20T08:00:00Z,1.0",
         "line 2: wh must be a whole, non-negative number of Wh, not '1.0'"),
        ("2026-11-20T08:00:00Z,", "line 1: wh must be a whole, non-negative number of Wh, not ''"),
        ("2026-11-20T08:00:00Z,1\n2026-11-20T09:00:00+01:00,2",
         "line 2: the hour 2026-11-20T08:00:00+00:00 appears twice"),
        ("hour_start,wh\n", "the CSV has no hours"),
        ("\n \n", "the CSV has no hours"),
    ],
)  # fmt: skip
def test_each_refusal_names_the_line_and_the_reason(text: str, message: str) -> None:
    assert refusal(text) == (message, "csv")


def test_a_leap_year_of_hours_and_not_one_more() -> None:
    assert MAX_HOURS == 366 * 24
    rows = [f"{(H0 + timedelta(hours=h)).isoformat()},{h}" for h in range(MAX_HOURS + 1)]
    profile = parse_consumption_csv("\n".join(rows[:MAX_HOURS]))
    assert len(profile) == MAX_HOURS and profile[H0 + timedelta(hours=MAX_HOURS - 1)] == 8783
    assert refusal("\n".join(rows)) == (f"line {MAX_HOURS + 1}: at most 8784 hours", "csv")


@pytest.mark.parametrize(
    ("matched", "consumption", "share"),
    [(0, 0, "0"), (5, 0, "0"), (0, 7, "0.00"), (1, 800, "0.12"), (3, 800, "0.38"),
     (1, 3, "33.33"), (2, 3, "66.67"), (7, 7, "100.00"), (1, 1600, "0.06")],
)  # fmt: skip
def test_shares_round_half_to_even_at_a_hundredth_of_a_percent(
    matched: int, consumption: int, share: str
) -> None:
    # 1/800 = 0.125 % -> 0.12 (half to even); 3/800 = 0.375 % -> 0.38; 1/1600 = 0.0625 %.
    hour = HourMatch(H0, consumption, matched, matched)
    assert hour.share == Decimal(share) and str(hour.share) == share


def test_a_report_sums_its_hours() -> None:
    hours = [HourMatch(H0, 800, 5, 1), HourMatch(H0 + timedelta(hours=1), 800, 9, 2)]
    report = MatchReport("TH-PEA", hours)
    assert (report.consumption_wh, report.matched_wh, report.share) == (
        1600,
        3,
        Decimal("0.19"),  # 3/1600 = 0.1875 %
    )
    assert MatchReport("TH-PEA", []).share == Decimal(0)


def test_a_region_is_required(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        viewer = make_user(session, "alice")
        for blank in ("", "  ", None):
            with pytest.raises(InvalidCertificateRequest) as caught:
                hourly_match(session, viewer, {H0: 1}, blank)  # type: ignore[arg-type]
            assert (str(caught.value), caught.value.field) == (
                "a grid region is required",
                "grid_region",
            )


def test_only_retired_certificates_of_the_profiles_hours_and_the_viewer_count(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        alice = make_user(session, "alice")
        bob = make_user(session, "bob")
        mine, theirs = device_meter(session, alice), device_meter(session, bob)
        for hour, kwh in enumerate(["1", "2", "3", "4", "5"]):  # hours 07 .. 11
            minted(session, mine, H0 + timedelta(hours=hour - 1, minutes=10), kwh)
        minted(session, theirs, H0 + timedelta(hours=1, minutes=10), "0.25")
        minted(session, theirs, H0 + timedelta(hours=1, minutes=40), "0.5")
        issue_due(session, now=H0 + timedelta(hours=6), auto_issue=True)
        session.execute(update(Certificate).values(status="retired"))
        # Hour 10 of alice stays active: not retired, so not a claim.
        ten = session.scalar(
            select(CertificateBundle.id).where(
                CertificateBundle.hour_start == H0 + timedelta(hours=2),
                CertificateBundle.meter_id == mine.id,
            )
        )
        session.execute(
            update(Certificate).where(Certificate.bundle_id == ten).values(status="active")
        )
        session.commit()
        viewer = session.scalar(select(User).where(User.username == "alice"))
        # Profile hours 08..11 (07 lies outside it: not fetched, not matched).
        profile = {H0: 1500, H0 + timedelta(hours=1): 2500, H0 + timedelta(hours=2): 100,
                   H0 + timedelta(hours=3): 6000}  # fmt: skip
        report = hourly_match(session, viewer, profile, " th-pea ")
        assert report.grid_region == "TH-PEA"
        assert [(h.hour_start, h.consumption_wh, h.certified_wh, h.matched_wh)
                for h in report.hours] == [
            (H0, 1500, 2000, 1500),
            (H0 + timedelta(hours=1), 2500, 3000, 2500),
            (H0 + timedelta(hours=2), 100, 0, 0),
            (H0 + timedelta(hours=3), 6000, 5000, 5000),
        ]  # fmt: skip
        staff = User(id=0, username="ops", role="operator")
        everyone = hourly_match(session, staff, profile, "TH-PEA")
        # Staff see bob's 750 Wh of hour 09 too: 3000 + 750 = 3750.
        assert [h.certified_wh for h in everyone.hours] == [2000, 3750, 0, 5000]
        assert [h.matched_wh for h in everyone.hours] == [1500, 2500, 0, 5000]
        assert hourly_match(session, viewer, profile, "TH-MEA").matched_wh == 0
        # A profile given out of order is reported in hour order.
        backwards = dict(reversed(list(profile.items())))
        assert [h.hour_start for h in hourly_match(session, viewer, backwards, "TH-PEA").hours] == [
            H0,
            H0 + timedelta(hours=1),
            H0 + timedelta(hours=2),
            H0 + timedelta(hours=3),
        ]
