"""Issuance, field by field: every column of a bundle, its certificate, its links and the
carry, the report, and the edges of what a run reads (the open hour, the watermark less
LOOK_BACK, hours still settling, lost races). Expected figures are integer arithmetic
written here (1 kWh = 10^6 mWh), never the code under test."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.certificates import issuance
from core.certificates.issuance import (
    LOOK_BACK,
    IssueReport,
    Split,
    hour_of,
    issue_due,
    review_reason,
    split_energy,
)
from core.db.models import (
    Certificate,
    CertificateBundle,
    CertificateCarry,
    CertificateDaily,
    CertificateReading,
    CertificateSequence,
    CertificateWatermark,
    Meter,
    MeterReading,
)
from tests.core.certificates.support import device_meter, minted
from tests.factories import make_meter, make_reading, make_user

H0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = H0 + timedelta(hours=4, minutes=5)  # hours 08 .. 11 have closed; 12 is open


def test_split_energy_floors_whole_wh_and_keeps_the_rest() -> None:
    assert split_energy(0, 0) == Split(0, 0)
    assert split_energy(999, 0) == Split(0, 999)
    assert split_energy(1, 999) == Split(1, 0)
    assert split_energy(1_000_700, 500) == Split(1001, 200)
    for energy, carried in [(-1, 0), (0, -1), (0, 1000)]:
        with pytest.raises(
            ValueError, match=r"^energy is non-negative and a carried rest is below 1 Wh$"
        ):
            split_energy(energy, carried)


def test_hour_of_drops_minutes_seconds_and_microseconds() -> None:
    assert hour_of(H0 + timedelta(minutes=59, seconds=59, microseconds=999_999)) == H0


def test_review_reasons_in_order_and_the_capacity_limit_to_the_wh() -> None:
    meter = Meter(status="active", capacity_kw=Decimal("2.5"))  # 2500 Wh in one hour
    assert review_reason(meter, 2500, auto_issue=True) is None
    assert review_reason(meter, 2501, auto_issue=True) == (
        "2501 Wh exceeds the 2500 Wh the rated capacity can produce in one hour"
    )
    assert review_reason(meter, 1, auto_issue=False) == (
        "awaiting approval (CERTIFICATES_AUTO_ISSUE is off)"
    )
    assert review_reason(Meter(status="active", capacity_kw=Decimal("0.001")), 2,
                         auto_issue=False).startswith("2 Wh exceeds the 1 Wh")  # fmt: skip
    suspended = Meter(status="suspended", capacity_kw=Decimal("0.001"))
    assert review_reason(suspended, 5, auto_issue=False) == "the device is suspended"


def bundle_rows(session: Session) -> list[tuple]:
    names = ("meter_id", "producer_id", "hour_start", "readings", "energy_mwh", "carried_in_mwh",
             "wh", "remainder_mwh", "first_id", "last_id", "technology", "capacity_kw", "country",
             "grid_region", "commissioning_date", "review_reason", "created_at")  # fmt: skip
    rows = session.scalars(select(CertificateBundle).order_by(CertificateBundle.id))
    return [tuple(getattr(b, n) for n in names) for b in rows]


def certificate_rows(session: Session) -> list[tuple]:
    names = ("bundle_id", "first_id", "last_id", "wh", "holder_id", "holder_wallet", "status",
             "attempts", "created_at", "updated_at", "operation_id")  # fmt: skip
    rows = session.scalars(select(Certificate).order_by(Certificate.id))
    return [tuple(getattr(c, n) for n in names) for c in rows]


def test_every_field_of_bundles_certificates_links_carry_and_report(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        ann, ben = make_user(session, "ann"), make_user(session, "ben")
        device_meter(session)  # idle: the devices' ids are not 1, 2 (carry rows' rowids)
        wind = device_meter(session, ann, technology="wind", capacity_kw="2.5", country="DE",
                            grid_region="DE-LU", commissioning_date="2019-05-06")  # fmt: skip
        solar = device_meter(session, ben)
        at = [H0 + timedelta(hours=h, minutes=m) for h, m in ((0, 0), (1, 10), (1, 50), (2, 0),
                                                               (3, 59))]  # fmt: skip
        # mWh: 500 | 600_000 + 400_700 | 2_500_000 | 2_501_000
        readings = [minted(session, wind, at[0], "0.0005"), minted(session, wind, at[1], "0.6"),
                    minted(session, wind, at[2], "0.4007"), minted(session, wind, at[3], "2.5"),
                    minted(session, wind, at[4], "2.501")]  # fmt: skip
        sun = minted(session, solar, H0 + timedelta(minutes=30), "3.000999")
        report = issue_due(session, now=NOW, auto_issue=True)
        # Oracle, carried rest per hour: 500 -> 0 Wh, rest 500; 1_000_700 + 500 -> 1001, 200;
        # 2_500_000 + 200 -> 2500, 200 (at capacity: issued); 2_501_000 + 200 -> 2501, 200
        # (over 2500: review). Solar: 3_000_999 -> 3000 Wh, rest 999. Ids run on in
        # (device, hour) order: wind 1..1001, 1002..3501, 3502..6002; solar 6003..9002.
        wind_fields = (wind.id, ann.id)
        wind_device = ("wind", Decimal("2.5"), "DE", "DE-LU", date(2019, 5, 6))
        solar_fields = (solar.id, ben.id)
        solar_device = ("solar_pv", Decimal("10"), "TH", "TH-PEA", date(2024, 3, 1))
        over = "2501 Wh exceeds the 2500 Wh the rated capacity can produce in one hour"
        assert bundle_rows(session) == [
            (*wind_fields, H0, 1, 500, 0, 0, 500, None, None, *wind_device, None, NOW),
            (*wind_fields, H0 + timedelta(hours=1), 2, 1_000_700, 500, 1001, 200, 1, 1001,
             *wind_device, None, NOW),
            (*wind_fields, H0 + timedelta(hours=2), 1, 2_500_000, 200, 2500, 200, 1002, 3501,
             *wind_device, None, NOW),
            (*wind_fields, H0 + timedelta(hours=3), 1, 2_501_000, 200, 2501, 200, 3502, 6002,
             *wind_device, over, NOW),
            (*solar_fields, H0, 1, 3_000_999, 0, 3000, 999, 6003, 9002, *solar_device, None, NOW),
        ]  # fmt: skip
        ids = report.bundle_ids
        wh = 1001 + 2500 + 2501 + 3000
        assert report == IssueReport(bundles=5, wh=wh, in_review=1, remainder_mwh=200 + 999,
                                     lost_races=0, bundle_ids=ids)  # fmt: skip
        assert ids == sorted(ids) and len(set(ids)) == 5
        assert certificate_rows(session) == [
            (ids[1], 1, 1001, 1001, ann.id, ann.wallet_address, "issuing", 0, NOW, NOW, None),
            (ids[2], 1002, 3501, 2500, ann.id, ann.wallet_address, "issuing", 0, NOW, NOW, None),
            (ids[3], 3502, 6002, 2501, ann.id, ann.wallet_address, "review", 0, NOW, NOW, None),
            (ids[4], 6003, 9002, 3000, ben.id, ben.wallet_address, "issuing", 0, NOW, NOW, None),
        ]  # fmt: skip
        links = set(session.execute(select(CertificateReading.reading_id,
                                           CertificateReading.bundle_id)).all())  # fmt: skip
        by_bundle = [ids[0], ids[1], ids[1], ids[2], ids[3]]
        assert links == {(r.id, b) for r, b in zip(readings, by_bundle, strict=True)} | {
            (sun.id, ids[4])
        }
        carries = set(session.execute(select(CertificateCarry.meter_id,
                                             CertificateCarry.remainder_mwh,
                                             CertificateCarry.bundle_id)).all())  # fmt: skip
        assert carries == {(wind.id, 200, ids[3]), (solar.id, 999, ids[4])}
        assert session.scalar(select(CertificateSequence.next_id)) == 9003
        daily = {(d.day, d.technology, d.grid_region, d.status): d.wh
                 for d in session.scalars(select(CertificateDaily))}  # fmt: skip
        assert daily == {
            (date(2026, 11, 20), "wind", "DE-LU", "issued"): 1001 + 2500 + 2501,
            (date(2026, 11, 20), "solar_pv", "TH-PEA", "issued"): 3000,
        }
        assert session.scalar(select(CertificateWatermark.since)) == NOW

        # The next hour of each device takes the carry on and moves it (the guarded UPDATE).
        later = NOW + timedelta(hours=1)
        minted(session, wind, H0 + timedelta(hours=4, minutes=1), "0.0008")  # 800 + 200
        minted(session, solar, H0 + timedelta(hours=4, minutes=2), "0.000002")  # 2 + 999
        again = issue_due(session, now=later, auto_issue=False)
        assert [row[3:10] for row in bundle_rows(session)[5:]] == [
            (1, 800, 200, 1, 0, 9003, 9003),
            (1, 2, 999, 1, 1, 9004, 9004),
        ]
        assert (again.bundles, again.wh, again.in_review, again.remainder_mwh) == (2, 2, 2, 1)
        carries = set(session.execute(select(CertificateCarry.meter_id,
                                             CertificateCarry.remainder_mwh,
                                             CertificateCarry.bundle_id)).all())  # fmt: skip
        assert carries == {(wind.id, 0, again.bundle_ids[0]), (solar.id, 1, again.bundle_ids[1])}
        assert session.scalar(select(CertificateWatermark.since)) == later


def bundle_hours(session: Session) -> list[tuple[int, datetime, int]]:
    rows = session.scalars(select(CertificateBundle).order_by(CertificateBundle.id))
    return [(b.meter_id, b.hour_start, b.wh) for b in rows]


def test_the_open_hour_and_readings_not_minted_wait(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        meter = device_meter(session)
        open_hour = hour_of(NOW)
        minted(session, meter, open_hour - timedelta(microseconds=1), "1")  # closed hour 11
        minted(session, meter, open_hour, "2")  # the open hour
        for n, status in enumerate(("failed", "rejected")):  # never minted: nothing, no wait
            at = H0 + timedelta(minutes=10 + n)
            make_reading(session, meter, kwh="4", at=at, status=status)
        minted(session, meter, H0 + timedelta(minutes=20), "3")
        report = issue_due(session, now=NOW, auto_issue=True)
        assert bundle_hours(session) == [
            (meter.id, H0, 3000),
            (meter.id, open_hour - timedelta(hours=1), 1000),
        ]
        assert report.bundles == 2


@pytest.mark.parametrize("status", ["pending", "review", "minting"])
def test_an_hour_with_a_reading_on_its_way_waits_and_holds_the_watermark(
    sessions: sessionmaker[Session], status: str
) -> None:
    with sessions() as session:
        meter = device_meter(session)
        minted(session, meter, H0, "1")
        minted(session, meter, H0 + timedelta(hours=1), "2")
        make_reading(session, meter, kwh="1", at=H0 + timedelta(hours=1, minutes=59), status=status)
        minted(session, meter, H0 + timedelta(hours=2), "3")
        # The next hour's first instant is not hour 09's: it does not hold hour 10.
        report = issue_due(session, now=NOW, auto_issue=True)
        assert [(h, wh) for _, h, wh in bundle_hours(session)] == [
            (H0, 1000),
            (H0 + timedelta(hours=2), 3000),
        ]
        assert report.bundles == 2
        assert session.scalar(select(CertificateWatermark.since)) == H0 + timedelta(hours=1)


def test_a_run_looks_back_from_the_watermark_to_the_minute(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        meter = device_meter(session)
        first = minted(session, meter, H0, "1")
        issue_due(session, now=NOW, auto_issue=True)
        assert session.scalar(select(CertificateWatermark.since)) == NOW
        assert timedelta(minutes=15) == LOOK_BACK
        since = NOW - LOOK_BACK  # 11:50: readings minted from here, or of hours from 11:00
        cases = {
            "at the look-back": (H0 + timedelta(hours=1), since, True),
            "just before it": (H0 + timedelta(hours=2), since - timedelta(microseconds=1), False),
            "of the hour it starts in": (hour_of(since), NOW - timedelta(days=1), True),
            "of the hour before": (hour_of(since) - timedelta(microseconds=1),
                                   NOW - timedelta(days=1), False),
        }  # fmt: skip
        made = {}
        for name, (at, minted_at, _) in cases.items():
            reading = minted(session, meter, at, "1")
            session.execute(update(MeterReading).where(MeterReading.id == reading.id)
                            .values(minted_at=minted_at))  # fmt: skip
            made[name] = reading.id
        session.commit()
        later = NOW + timedelta(hours=2)
        issue_due(session, now=later, auto_issue=True)
        linked = set(session.scalars(select(CertificateReading.reading_id)))
        assert {name: made[name] in linked for name in cases} == {
            name: expected for name, (_, _, expected) in cases.items()
        }
        assert first.id in linked
        assert session.scalar(select(CertificateWatermark.since)) == later


def test_an_hour_larger_than_a_page_is_issued_in_parts(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        meter = device_meter(session)
        for quarter in range(3):
            minted(session, meter, H0 + timedelta(minutes=15 * quarter), "1")
        first = issue_due(session, now=NOW, auto_issue=True, limit=2)
        assert (first.bundles, first.wh) == (1, 2000)
        assert session.scalar(select(CertificateWatermark.since)) is None  # not moved
        rest = issue_due(session, now=NOW, auto_issue=True, limit=2)
        assert (rest.bundles, rest.wh) == (1, 1000)
        assert session.scalar(select(CertificateWatermark.since)) == NOW
        assert session.scalar(select(func.count(CertificateReading.reading_id))) == 3


def test_a_page_that_ends_on_an_hour_boundary_goes_on_after_it(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        a, b = device_meter(session), device_meter(session)
        minted(session, a, H0, "1")
        minted(session, a, H0 + timedelta(hours=1), "2")
        minted(session, b, H0, "3")
        minted(session, b, H0 + timedelta(hours=1), "4")
        report = issue_due(session, now=NOW, auto_issue=True, limit=2)
        assert sorted(bundle_hours(session)) == sorted([
            (a.id, H0, 1000), (a.id, H0 + timedelta(hours=1), 2000),
            (b.id, H0, 3000), (b.id, H0 + timedelta(hours=1), 4000),
        ])  # fmt: skip
        assert (report.bundles, report.wh) == (4, 10_000)
        assert session.scalar(select(CertificateWatermark.since)) == NOW


def test_a_lost_race_issues_nothing_counts_once_and_holds_the_hour(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with sessions() as session:
        meter = device_meter(session)
        minted(session, meter, H0 + timedelta(hours=1), "1")
        monkeypatch.setattr(issuance, "_move_carry", lambda *args: False)
        report = issue_due(session, now=NOW, auto_issue=True)
        assert (report.bundles, report.wh, report.lost_races, report.bundle_ids) == (0, 0, 1, [])
        assert (
            bundle_hours(session) == [] and session.scalar(select(CertificateSequence.next_id)) == 1
        )
        assert session.scalar(select(CertificateWatermark.since)) == H0 + timedelta(hours=1)

        def linked_first(*args: object) -> bool:
            raise IntegrityError("INSERT", {}, Exception("duplicate key"))

        monkeypatch.setattr(issuance, "_move_carry", linked_first)
        report = issue_due(session, now=NOW, auto_issue=True)
        assert (report.bundles, report.lost_races) == (0, 1)
        assert session.scalar(select(func.count(CertificateReading.reading_id))) == 0


def test_a_carry_moved_by_another_issuer_loses_the_race(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with sessions() as session:
        meter = device_meter(session)
        minted(session, meter, H0, "1.0005")
        issue_due(session, now=NOW, auto_issue=True)
        minted(session, meter, H0 + timedelta(hours=1), "1")
        real = issuance._move_carry

        def moved_meanwhile(session: Session, *args: object) -> bool:
            # Another issuer moved the carry since this one read it: the guard sees its bundle.
            session.execute(update(CertificateCarry).values(bundle_id=-1))
            return real(session, *args)

        monkeypatch.setattr(issuance, "_move_carry", moved_meanwhile)
        report = issue_due(session, now=NOW + timedelta(hours=1), auto_issue=True)
        assert (report.bundles, report.lost_races) == (0, 1)
        assert [wh for _, _, wh in bundle_hours(session)] == [1000]


def test_awaiting_issue_counts_the_windows_minted_unissued_certifiable_readings(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        meter = device_meter(session)
        bare = make_meter(session).meter  # no registry fields
        start, end = H0 + timedelta(hours=1), H0 + timedelta(hours=3)
        minted(session, meter, H0, "1")  # issued below, and before the window anyway
        assert issuance.awaiting_issue(session, H0, start) == 1  # no watermark yet: all
        issue_due(session, now=H0 + timedelta(hours=1, minutes=5), auto_issue=True)
        watermark = session.scalar(select(CertificateWatermark.since))
        minted(session, meter, start - timedelta(microseconds=1), "1")  # the window before
        assert issuance.awaiting_issue(session, H0, start) == 1  # H0's is linked already
        minted(session, meter, start, "1")  # the window's first instant: counted
        minted(session, meter, end - timedelta(microseconds=1), "1")  # its last: counted
        minted(session, meter, end, "1")  # the next window
        minted(session, bare, start, "1")  # never certifiable
        make_reading(session, meter, kwh="1", at=start + timedelta(minutes=5), status="pending")
        assert issuance.awaiting_issue(session, start, end) == 2
        # Beyond the run's window (minted long before the watermark, of an hour closed
        # before it): issuance will not read it again, so it is not waited for.
        old = minted(session, meter, start + timedelta(minutes=30), "1")
        session.execute(update(MeterReading).where(MeterReading.id == old.id)
                        .values(minted_at=watermark - LOOK_BACK - timedelta(hours=1)))  # fmt: skip
        session.commit()
        assert issuance.awaiting_issue(session, start, end) == 3  # its hour closed since
        session.execute(update(CertificateWatermark).values(since=end + timedelta(hours=1)))
        session.commit()
        assert issuance.awaiting_issue(session, start, end) == 2  # the two minted now
        # Minted within LOOK_BACK before the watermark: still read, so still waited for.
        session.execute(update(MeterReading).where(MeterReading.id == old.id)
                        .values(minted_at=end + timedelta(hours=1) - LOOK_BACK))  # fmt: skip
        session.commit()
        assert issuance.awaiting_issue(session, start, end) == 3


def test_an_hour_larger_than_a_page_keeps_the_call_s_time_and_auto_issue(
    sessions: sessionmaker[Session],
) -> None:
    """The one-hour-larger-than-a-page branch issues with this call's `now` and setting
    (auto-issue on: a lost setting reads as off and would put the bundle in review)."""
    with sessions() as session:
        meter = device_meter(session)
        for quarter in range(3):
            minted(session, meter, H0 + timedelta(minutes=15 * quarter), "1")
        issue_due(session, now=NOW, auto_issue=True, limit=2)
        [bundle] = bundle_rows(session)
        assert (bundle[6], bundle[15], bundle[16]) == (2000, None, NOW)  # wh, reason, created
        [certificate] = certificate_rows(session)
        assert (certificate[3], certificate[6], certificate[8]) == (2000, "issuing", NOW)


def test_middle_pages_keep_the_call_s_time_and_auto_issue(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        a, b = device_meter(session), device_meter(session)
        for meter, hour, kwh in ((a, 0, "1"), (a, 1, "2"), (b, 0, "3"), (b, 1, "4")):
            minted(session, meter, H0 + timedelta(hours=hour), kwh)
        report = issue_due(session, now=NOW, auto_issue=True, limit=2)  # 3 pages of 2 rows
        assert (report.bundles, report.in_review) == (4, 0)
        assert {(row[6], row[15], row[16]) for row in bundle_rows(session)} == {
            (1000, None, NOW), (2000, None, NOW), (3000, None, NOW), (4000, None, NOW)
        }  # fmt: skip
        assert {(c[6], c[8]) for c in certificate_rows(session)} == {("issuing", NOW)}


def test_an_hour_held_on_an_early_page_holds_the_watermark_to_the_last(
    sessions: sessionmaker[Session],
) -> None:
    """Meter a's 08:00 hour still has a reading on its way: it is held on the first page,
    and after three more pages the watermark stops at that hour, not at `now`."""
    with sessions() as session:
        a, b = device_meter(session), device_meter(session)
        minted(session, a, H0, "1")
        make_reading(session, a, at=H0 + timedelta(minutes=10))  # pending: the hour is open
        minted(session, a, H0 + timedelta(hours=1), "2")
        minted(session, b, H0, "3")
        minted(session, b, H0 + timedelta(hours=1), "4")
        report = issue_due(session, now=NOW, auto_issue=True, limit=2)
        assert sorted(bundle_hours(session)) == sorted([
            (a.id, H0 + timedelta(hours=1), 2000), (b.id, H0, 3000),
            (b.id, H0 + timedelta(hours=1), 4000),
        ])  # fmt: skip
        assert report.bundles == 3
        assert session.scalar(select(CertificateWatermark.since)) == H0


def _devices_over_two_transactions(session: Session) -> list[Meter]:
    """21 devices, one hour each: two transactions of issuance (20 devices per one)."""
    meters = [device_meter(session) for _ in range(issuance.METERS_PER_TRANSACTION + 1)]
    for number, meter in enumerate(meters, start=1):  # number + 0.5 Wh: i Wh, 500 mWh of rest
        minted(session, meter, H0, Decimal(2 * number + 1) / 2000)  # kWh: 0.0015 .. 0.0215
    return meters


def test_a_report_sums_every_transaction_of_the_call(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        meters = _devices_over_two_transactions(session)
        report = issue_due(session, now=NOW, auto_issue=False)
        # Oracle: device i (1..21) made i Wh and 500 mWh of rest; all wait for approval.
        assert (report.bundles, report.wh, report.in_review) == (21, 21 * 22 // 2, 21)
        assert report.remainder_mwh == 21 * 500
        bundles = session.scalars(select(CertificateBundle.id).order_by(CertificateBundle.id))
        assert report.bundle_ids == list(bundles) and len(meters) == 21


def test_races_lost_in_two_transactions_count_twice_and_hold_the_hour(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with sessions() as session:
        _devices_over_two_transactions(session)
        monkeypatch.setattr(issuance, "_move_carry", lambda *args: False)
        report = issue_due(session, now=NOW, auto_issue=True)
        assert (report.bundles, report.lost_races) == (0, 2)

        def linked_first(*args: object) -> bool:
            raise IntegrityError("INSERT", {}, Exception("duplicate key"))

        monkeypatch.setattr(issuance, "_move_carry", linked_first)
        report = issue_due(session, now=NOW, auto_issue=True)
        assert (report.bundles, report.lost_races) == (0, 2)
        assert session.scalar(select(func.count(CertificateReading.reading_id))) == 0
        assert session.scalar(select(CertificateWatermark.since)) == H0  # both held it


def test_the_watermark_moves_only_from_the_value_this_run_read(
    sessions: sessionmaker[Session],
) -> None:
    """Of two issuers that read the same watermark, the one that moves second finds it
    moved already and leaves it (its view is no newer)."""
    with sessions() as session:
        session.execute(update(CertificateWatermark).values(since=H0))
        session.commit()
        issuance._move_watermark(session, H0 - timedelta(hours=1), NOW)  # read a stale value
        assert session.scalar(select(CertificateWatermark.since)) == H0
        issuance._move_watermark(session, H0, NOW)
        assert session.scalar(select(CertificateWatermark.since)) == NOW
