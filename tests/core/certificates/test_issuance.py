"""Issuance in the database: whole Wh per device and hour, the rest carried, each reading
backing one bundle whatever races, crashes or retries. Expected figures are integer
arithmetic done here, not by the code under test."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.certificates import issuance
from core.certificates.issuance import issue_due
from core.db.models import (
    Certificate,
    CertificateBundle,
    CertificateReading,
    CertificateWatermark,
    MeterReading,
)
from core.meters import suspend_meter
from tests.core.certificates.support import device_meter, minted
from tests.factories import make_meter, make_reading

H0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = H0 + timedelta(hours=3, minutes=5)  # hours 08, 09 and 10 have closed; 11 is open


def bundles(session: Session) -> list[CertificateBundle]:
    return list(session.scalars(select(CertificateBundle).order_by(CertificateBundle.id)))


def test_hours_become_whole_wh_with_the_rest_carried(sessions: sessionmaker[Session]) -> None:
    amounts = {0: ["0.2505", "0.1002"], 1: ["0.0004", "0.0003"], 2: ["1.999999"]}
    with sessions() as session:
        meter = device_meter(session)
        for hour, values in amounts.items():
            for n, kwh in enumerate(values):
                minted(session, meter, H0 + timedelta(hours=hour, minutes=15 * n), kwh)
        minted(session, meter, H0 + timedelta(hours=3, minutes=1), "5")  # hour still open
        report = issue_due(session, now=NOW, auto_issue=True)
        # Oracle: mWh per hour = kWh x 10^6; whole Wh floored after adding the carried rest.
        mwh = [250_500 + 100_200, 400 + 300, 1_999_999]
        carry, expected = 0, []
        for energy in mwh:
            wh, carry = divmod(energy + carry, 1000)
            expected.append(wh)
        assert expected == [350, 1, 2000]
        rows = bundles(session)
        assert [b.wh for b in rows] == expected and report.wh == sum(expected)
        assert [b.hour_start for b in rows] == [H0 + timedelta(hours=h) for h in range(3)]
        assert [b.carried_in_mwh for b in rows] == [0, 700, 400]
        assert rows[-1].remainder_mwh == carry == 399
        assert sum(expected) == sum(mwh) // 1000  # nothing certified twice, nothing lost
        # Consecutive, disjoint id ranges: one id per Wh.
        assert [(b.first_id, b.last_id) for b in rows] == [(1, 350), (351, 351), (352, 2351)]
        certificates = session.scalars(select(Certificate).order_by(Certificate.id)).all()
        assert [(c.wh, c.status, c.holder_id) for c in certificates] == [
            (w, "issuing", meter.owner_id) for w in expected
        ]
        assert issue_due(session, now=NOW, auto_issue=True).bundles == 0  # a retry issues nothing


def test_an_hour_waits_for_its_readings_and_devices_for_their_fields(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        meter = device_meter(session)
        bare = make_meter(session).meter
        minted(session, meter, H0, "1")
        make_reading(session, meter, kwh="1", at=H0 + timedelta(minutes=30), status="review")
        minted(session, bare, H0, "1")
        minted(session, meter, H0 + timedelta(hours=1), "2")
        issue_due(session, now=NOW, auto_issue=True)
        assert [(b.meter_id, b.hour_start, b.wh) for b in bundles(session)] == [
            (meter.id, H0 + timedelta(hours=1), 2000)
        ]
        # Once the reading in review is minted, hour 08 issues (after hour 09: the carry
        # follows issuing order, so no energy is counted twice).
        session.execute(
            update(MeterReading).where(MeterReading.status == "review").values(status="minted")
        )
        session.commit()
        issue_due(session, now=NOW, auto_issue=True)
        assert [(b.hour_start, b.wh) for b in bundles(session)][-1] == (H0, 2000)


def test_review_when_auto_issue_is_off_over_capacity_or_suspended(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        small = device_meter(session, capacity_kw="0.5")  # 500 Wh in an hour at most
        normal = device_meter(session)
        paused = device_meter(session)
        minted(session, small, H0, "0.6")
        minted(session, normal, H0, "1")
        minted(session, paused, H0, "1")
        suspend_meter(session, paused.serial)
        issue_due(session, now=NOW, auto_issue=True)
        reasons = {b.meter_id: b.review_reason for b in bundles(session)}
        assert reasons[normal.id] is None
        assert (
            reasons[small.id]
            == "600 Wh exceeds the 500 Wh the rated capacity can produce in one hour"
        )
        assert reasons[paused.id] == "the device is suspended"
        minted(session, normal, H0 + timedelta(hours=1), "1")
        issue_due(session, now=NOW, auto_issue=False)
        status = session.scalars(select(Certificate.status).order_by(Certificate.id)).all()
        assert sorted(status) == ["issuing", "review", "review", "review"]


def test_the_database_refuses_a_second_link(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        meter = device_meter(session)
        reading = minted(session, meter, H0, "1")
        issue_due(session, now=NOW, auto_issue=True)
        [bundle] = bundles(session)
        session.add(CertificateReading(reading_id=reading.id, bundle_id=bundle.id))
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_crash_during_issuance_leaves_nothing_and_the_retry_issues_once(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with sessions() as session:
        meter = device_meter(session)
        minted(session, meter, H0, "1.5")
        real = issuance._move_carry

        def crash(*args, **kwargs):
            raise RuntimeError("power cut")

        monkeypatch.setattr(issuance, "_move_carry", crash)
        with pytest.raises(RuntimeError):
            issue_due(session, now=NOW, auto_issue=True)
        session.rollback()
        assert (
            bundles(session) == []
            and session.scalar(select(func.count(CertificateReading.reading_id))) == 0
        )
        monkeypatch.setattr(issuance, "_move_carry", real)
        issue_due(session, now=NOW, auto_issue=True)
        issue_due(session, now=NOW, auto_issue=True)
        assert [b.wh for b in bundles(session)] == [1500]


def test_concurrent_issuers_never_link_a_reading_twice(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        meters = [device_meter(session) for _ in range(3)]
        energy: dict[int, int] = {}
        for m_index, meter in enumerate(meters):
            for quarter in range(12):  # 3 hours of 15-minute readings
                micro = 123_457 * (quarter + 1) + m_index
                minted(session, meter, H0 + timedelta(minutes=15 * quarter), f"{micro / 10**6:.6f}")
                energy[meter.id] = energy.get(meter.id, 0) + micro
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def issuer() -> None:
        try:
            barrier.wait()
            with sessions() as session:
                for _ in range(3):
                    issue_due(session, now=NOW, auto_issue=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=issuer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with sessions() as session:
        links = session.scalar(select(func.count(CertificateReading.reading_id)))
        assert links == 36
        rows = bundles(session)
        assert len(rows) == 9  # one per device and hour
        for meter_id, total in energy.items():
            assert sum(b.wh for b in rows if b.meter_id == meter_id) == total // 1000
        ranges = sorted((b.first_id, b.last_id) for b in rows)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
        assert sum(last - first + 1 for first, last in ranges) == sum(b.wh for b in rows)


def watermark(session: Session) -> datetime | None:
    session.rollback()
    return session.scalar(select(CertificateWatermark.since))


def test_a_run_reads_only_from_the_watermark_and_never_skips_an_hour(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        meter = device_meter(session)
        minted(session, meter, H0, "1")
        make_reading(session, meter, kwh="1", at=H0 + timedelta(hours=1), status="review")
        minted(session, meter, H0 + timedelta(hours=1, minutes=15), "2")
        issue_due(session, now=NOW, auto_issue=True)
        # Hour 09 waits for its reading in review: the watermark stays at that hour.
        assert watermark(session) == H0 + timedelta(hours=1)
        assert [(b.hour_start, b.wh) for b in bundles(session)] == [(H0, 1000)]
        later = NOW + timedelta(hours=2)
        session.execute(
            update(MeterReading)
            .where(MeterReading.status == "review")
            .values(status="minted", minted_at=later)
        )
        session.commit()
        issue_due(session, now=later, auto_issue=True)
        assert [(b.hour_start, b.wh) for b in bundles(session)][1:] == [
            (H0 + timedelta(hours=1), 3000)
        ]
        assert watermark(session) == later
        # Beyond the watermark: a reading minted long ago of an hour closed long ago is not
        # read again (the run does not scan history) ...
        old = minted(session, meter, H0 + timedelta(hours=2), "4")
        session.execute(update(MeterReading).where(MeterReading.id == old.id).values(minted_at=NOW))
        session.commit()
        assert issue_due(session, now=later + timedelta(hours=1), auto_issue=True).bundles == 0
        # ... while one minted since (an admin's retry of an old hour) and one of an hour
        # closed since (minted before it closed) are each issued once.
        retried = minted(session, meter, H0 + timedelta(hours=2, minutes=15), "5")
        recent = later + timedelta(hours=1, minutes=5)  # after the last run
        fresh = minted(session, meter, recent, "6")
        session.execute(
            update(MeterReading)
            .where(MeterReading.id.in_([retried.id, fresh.id]))
            .values(minted_at=recent + timedelta(minutes=5))
        )
        session.commit()
        done = later + timedelta(hours=3)
        report = issue_due(session, now=done, auto_issue=True)
        assert report.bundles == 2 and report.wh == 11_000
        assert issue_due(session, now=done, auto_issue=True).bundles == 0
        linked = session.scalar(
            select(func.count(CertificateReading.reading_id)).where(
                CertificateReading.reading_id.in_([retried.id, fresh.id])
            )
        )
        assert linked == 2


def test_a_backlog_is_read_in_pages_that_follow_each_other(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        meters = [device_meter(session) for _ in range(3)]
        energy: dict[int, int] = {}
        for m_index, meter in enumerate(meters):
            for quarter in range(12):  # 3 hours of 15-minute readings
                micro = 345_679 * (quarter + 1) + m_index
                minted(session, meter, H0 + timedelta(minutes=15 * quarter), f"{micro / 10**6:.6f}")
                energy[meter.id] = energy.get(meter.id, 0) + micro
        # Pages of 5 readings cut hours in two; one page only: the watermark stays.
        first = issue_due(session, now=NOW, auto_issue=True, limit=5, pages=1)
        assert first.bundles == 1 and watermark(session) is None
        report = issue_due(session, now=NOW, auto_issue=True, limit=5)
        assert first.bundles + report.bundles == 9  # one per device and hour, none split
        assert watermark(session) == NOW
        rows = bundles(session)
        for meter_id, total in energy.items():
            assert sum(b.wh for b in rows if b.meter_id == meter_id) == total // 1000
        assert session.scalar(select(func.count(CertificateReading.reading_id))) == 36
