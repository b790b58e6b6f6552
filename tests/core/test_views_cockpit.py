"""The cockpit's read models: today's 15-minute bars, fleet health, the attention list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import views
from core.bootstrap import App
from core.db.models import Meter, User
from core.errors import Forbidden
from core.events import EventType, publish
from core.views.cockpit import BAR_SECS, attention_items, today_bars
from core.views.fleet import Health, fleet_summary, health_of, meter_curve
from core.views.fleet_table import FleetOrder, FleetQuery, fleet_page
from tests.factories import NOW, make_meter, make_reading, make_user


@pytest.fixture
def world(app: App) -> dict[str, User]:
    with app.sessions() as session:
        ops = make_user(session, "ops", role="operator")
        alice = make_user(session, "alice")
        seen = {"MTR-OK": NOW - timedelta(minutes=5), "MTR-LATE": NOW - timedelta(minutes=45),
                "MTR-GONE": NOW - timedelta(hours=5), "MTR-NEVER": None}  # fmt: skip
        for serial, at in seen.items():
            meter = make_meter(session, alice, serial=serial).meter
            meter.last_seen_at = at
        make_meter(session, alice, serial="MTR-OFF", suspended=True)
        session.commit()
        ok = session.scalars(select(Meter).where(Meter.serial == "MTR-OK")).one()
        # 11:00, 11:10 (same bar) and 11:50; one from yesterday that today's bars leave out.
        for minutes, kwh in ((60, "1.5"), (50, "2.25"), (10, "0.5"), (60 * 13, "9")):
            make_reading(session, ok, kwh=kwh, at=NOW - timedelta(minutes=minutes))
        publish(session, EventType.METER_READING_VALIDATION_FAILED,
                {"meter_serial": "MTR-OK", "error_code": "duplicate_reading"})  # fmt: skip
        publish(session, EventType.METER_READING_VALIDATION_FAILED,
                {"meter_serial": "MTR-OK", "error_code": "duplicate_reading"})  # fmt: skip
        publish(session, EventType.METER_READING_VALIDATION_FAILED,
                {"meter_serial": "MTR-LATE", "error_code": "invalid_signature"})  # fmt: skip
        publish(session, EventType.METER_FLAGGED,
                {"meter_serial": "MTR-LATE", "flag": "clock_ahead", "evidence": {}})  # fmt: skip
        session.commit()
        return {"ops": session.get(User, ops.id), "alice": session.get(User, alice.id)}  # type: ignore[dict-item]


def test_health_thresholds() -> None:
    assert health_of("active", NOW - timedelta(minutes=30), NOW) == Health.REPORTING
    assert health_of("active", NOW - timedelta(minutes=31), NOW) == Health.LATE
    assert health_of("active", NOW - timedelta(hours=2, seconds=1), NOW) == Health.SILENT
    assert health_of("active", None, NOW) == Health.SILENT
    assert health_of("suspended", NOW, NOW) == Health.SUSPENDED


def test_fleet_summary_and_rows(app: App, world: dict[str, User]) -> None:
    with views.read_session(app.engine) as session:
        summary = fleet_summary(session, world["ops"], NOW)
        since = NOW - timedelta(hours=12)
        every = FleetQuery(order=FleetOrder.SERIAL)
        listed = fleet_page(session, world["ops"], NOW, since, every, limit=None)
        rows = {row.serial: row for row in listed}
        with pytest.raises(Forbidden):
            fleet_summary(session, world["alice"], NOW)
    assert summary.counts == {Health.REPORTING: 1, Health.LATE: 1, Health.SILENT: 2,
                              Health.SUSPENDED: 1}  # fmt: skip
    assert [serial for serial, _, _ in summary.worst] == ["MTR-NEVER", "MTR-GONE", "MTR-LATE"]
    ok = rows["MTR-OK"]
    assert (ok.readings, ok.kwh_micro) == (3, 4_250_000)
    assert ok.rejections == {"duplicate_reading": 2}
    assert rows["MTR-LATE"].rejections == {"invalid_signature": 1}
    assert rows["MTR-LATE"].flags == {"clock_ahead": 1} and rows["MTR-OK"].flags == {}
    assert summary.flagged == ["MTR-LATE"] and summary.flagged_count == 1
    assert summary.most_refused == [("MTR-OK", 2), ("MTR-LATE", 1)]
    assert rows["MTR-NEVER"].readings == 0 and rows["MTR-NEVER"].cadence_secs is None


def test_today_bars(app: App, world: dict[str, User]) -> None:
    with views.read_session(app.engine) as session:
        bars = today_bars(session, world["ops"], NOW)
        curve = meter_curve(session, world["ops"], "MTR-OK", NOW - timedelta(hours=2), 1800)
    assert len(bars) == 12 * 4 + 1  # 00:00 .. 12:00 (the bar filling now)
    assert all(b.bucket_start.timestamp() % BAR_SECS == 0 for b in bars)
    generated = {
        b.bucket_start.strftime("%H:%M"): b.generated_kwh_micro
        for b in bars
        if b.generated_kwh_micro
    }
    assert generated == {"11:00": 3_750_000, "11:45": 500_000}
    assert sum(b.minted_kwh_micro for b in bars) == 0  # nothing minted in this world
    assert [(p.readings, p.kwh_micro) for p in curve] == [(2, 3_750_000), (1, 500_000)]


def test_attention_items() -> None:
    assert (
        attention_items(review=0, failed=0, mismatch=False, payer_low=False, silent=0, late=0) == []
    )
    items = attention_items(review=2, failed=1, mismatch=True, payer_low=True, silent=3, late=1)
    assert [(i.page, i.count) for i in items] == [
        ("control", 0), ("minting", 0), ("minting", 1), ("review", 2), ("fleet", 3), ("fleet", 1)
    ]  # fmt: skip
