"""The dashboard's read models on both databases: numbers, buckets and who sees what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core import views
from core.config import AppSettings
from core.db.engine import create_db_engine
from core.db.models import Meter, MeterReading
from core.errors import Forbidden
from core.views import Split, Window
from tests.factories import NOW, make_reading
from tests.pages.seed import BACKENDS, MINT, SIGNATURE, Seeded, seed_dashboard, shared_database


@pytest.fixture(scope="module", params=BACKENDS)
def seeded_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Seeded]]:
    """One seeded database per module and backend: these tests only read."""
    with shared_database(request, tmp_path_factory.mktemp("views")) as url:
        engine = create_db_engine(url)
        with Session(engine, expire_on_commit=False) as session:
            seeded = seed_dashboard(session)
        yield engine, seeded
        engine.dispose()


@pytest.fixture
def world(seeded_engine: tuple[Engine, Seeded]) -> Iterator[tuple[Session, Seeded]]:
    engine, seeded = seeded_engine
    with views.read_session(engine) as session:
        yield session, seeded


@pytest.fixture
def private_world(sessions: sessionmaker[Session]) -> Iterator[tuple[Session, Seeded]]:
    """A world of its own, for a test that changes it."""
    with sessions() as session:
        yield session, seed_dashboard(session)


def test_window_buckets_are_aligned_and_end_with_now() -> None:
    window = Window.ending_at(datetime(2026, 11, 20, 12, 7, 30, tzinfo=UTC), 3600, 900)
    assert window.since == datetime(2026, 11, 20, 11, 15, tzinfo=UTC)
    assert window.until == datetime(2026, 11, 20, 12, 15, tzinfo=UTC)
    assert len(window.starts()) == 4


def test_overview_counts_today(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    stats = views.overview(session, seeded.users["ops"], NOW)
    # Today: alice's 3 minted + pending + failed (09:00) + bob's minted + review (10:00).
    assert stats.readings_today == 7
    assert stats.kwh_micro_today == 23_000_000
    assert (stats.base_units_minted_today, stats.readings_minted_today) == (6_500_000_000, 4)
    assert (stats.pending, stats.review, stats.minting, stats.failed) == (1, 1, 0, 1)


def test_expected_supply_is_bootstrap_plus_minted(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    expected = views.expected_supply(session, seeded.users["root"], AppSettings())
    assert expected is not None
    assert (expected.mint_address, expected.expected) == (MINT, 6_500_000_000)


@pytest.mark.parametrize(
    "call",
    [
        lambda s, u: views.overview(s, u, NOW),
        lambda s, u: views.expected_supply(s, u, AppSettings()),
        lambda s, u: views.queue_depth(s, u, Window.ending_at(NOW, 3600, 60)),
        lambda s, u: views.recent_batches(s, u),
        lambda s, u: views.latency_percentiles(s, u, NOW - timedelta(days=1)),
        lambda s, u: views.failed_readings(s, u),
        lambda s, u: views.review_queue(s, u),
        lambda s, u: views.meters(s, u),
        lambda s, u: views.users(s, u),
        lambda s, u: views.wallet_totals(s, u, user_id=u.id + 1),
    ],
)
def test_staff_data_refuses_a_prosumer(world: tuple[Session, Seeded], call) -> None:
    session, seeded = world
    with pytest.raises(Forbidden):
        call(session, seeded.users["alice"])


def test_admin_only_views_refuse_an_operator(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    for call in (views.review_queue, views.meters, views.users):
        with pytest.raises(Forbidden):
            call(session, seeded.users["ops"])


def test_a_prosumer_sees_only_their_own_readings_and_events(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    alice = seeded.users["alice"]
    latest = views.latest_readings(session, alice, limit=100)
    assert {row.username for row in latest} == {"alice"} and len(latest) == 5
    series = views.energy_series(session, alice, Window.ending_at(NOW, 86_400, 3600), Split.METER)
    assert {point.series for point in series} == {"MTR-A1", "MTR-A2"}
    events = views.event_log(session, alice)
    assert {event.user_id for event in events} == {alice.id}
    assert "alice-mint" in [event.payload.get("note") for event in events]
    everything = views.event_log(session, seeded.users["ops"])
    assert {"bob-mint", "alice-mint"} <= {event.payload.get("note") for event in everything}
    assert any(event.user_id is None for event in everything)


def test_energy_series_buckets_exact_kwh_on_both_databases(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    window = Window.ending_at(NOW, 4 * 3600, 3600)
    points = views.energy_series(session, seeded.users["ops"], window)
    by_hour = {point.bucket_start.hour: point.kwh_micro for point in points}
    # 09:00 failed 1.0, 10:00 review 15.0, 11:00 minted 1.5+1.5+1.5+2.0 and pending 0.5.
    assert by_hour == {9: 1_000_000, 10: 15_000_000, 11: 7_000_000, 12: 0}
    split = views.energy_series(session, seeded.users["ops"], window, Split.PROSUMER)
    assert [p.series for p in split if p.bucket_start.hour == 10] == ["bob", "alice"]


def test_queue_depth_walks_back_from_the_open_count(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    points = views.queue_depth(session, seeded.users["ops"], Window.ending_at(NOW, 4 * 3600, 3600))
    # Open now: pending, failed, review (3). In 11:00 five accepted and four minted.
    assert [(p.bucket_start.hour, p.accepted, p.minted, p.depth) for p in points] == [
        (9, 1, 0, 1),
        (10, 1, 0, 2),
        (11, 5, 4, 3),
        (12, 0, 0, 3),
    ]


def test_latency_percentiles_and_batches(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    ops = seeded.users["ops"]
    latency = views.latency_percentiles(session, ops, NOW - timedelta(days=1))
    # Accepted 30 s after 11:00, 11:15, 11:30 and at 11:11; all minted 11:40.
    assert latency.readings == 4
    assert latency.percentiles == {50: 1470, 90: 2370, 99: 2370}
    [batch] = views.recent_batches(session, ops)
    assert (batch.signature, batch.total_readings, batch.max_latency_secs) == (SIGNATURE, 4, 2370)


def test_wallet_totals_daily_production_and_mints(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    alice = seeded.users["alice"]
    totals = views.wallet_totals(session, alice)
    assert (totals.minted_to_wallet, totals.minted_readings, totals.waiting_readings) == (
        4_500_000_000,
        3,
        2,
    )
    days = views.daily_production(session, alice, Window.ending_at(NOW, 3 * 86_400, 86_400))
    assert [(d.kwh_micro, d.minted_base_units) for d in days] == [
        (0, 0),
        (0, 0),
        (6_000_000, 4_500_000_000),
    ]
    [mint] = views.recent_mints(session, alice)
    assert (mint.signature, mint.readings, mint.base_units) == (SIGNATURE, 3, 4_500_000_000)
    # Staff may look at a prosumer's wallet; the reading rows are the same.
    staff_view = views.wallet_totals(session, seeded.users["ops"], user_id=alice.id)
    assert staff_view == totals


def test_wallet_totals_follow_the_current_wallet(
    private_world: tuple[Session, Seeded],
) -> None:
    session, seeded = private_world
    alice = seeded.users["alice"]
    reading = session.get(MeterReading, seeded.reading_ids["alice_minted_0"])
    assert reading is not None
    reading.wallet_address = "an-old-wallet"
    session.commit()
    totals = views.wallet_totals(session, alice)
    assert (totals.minted_base_units, totals.minted_to_wallet) == (4_500_000_000, 3_000_000_000)


def test_event_filters(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    ops = seeded.users["ops"]
    assert len(views.event_log(session, ops, types=["tokens_minted"])) == 2
    assert [e.payload["note"] for e in views.event_log(session, ops, text="BOB-MINT")] == [
        "bob-mint"
    ]
    assert views.event_log(session, ops, text="100%") == []  # LIKE wildcards are escaped
    recent = views.event_log(session, ops, since=NOW - timedelta(minutes=10), until=NOW)
    assert [e.type for e in recent] == ["meter_reading_validation_failed"]


def test_review_and_failed_queues(world: tuple[Session, Seeded]) -> None:
    session, seeded = world
    total, rows = views.review_queue(session, seeded.users["root"])
    assert (total, [r.id for r in rows]) == (1, [seeded.reading_ids["bob_review"]])
    total, rows = views.failed_readings(session, seeded.users["ops"])
    assert (total, rows[0].last_error) == (1, "blockhash expired 3 times")
    meter_serials = [m.serial for m in views.meters(session, seeded.users["root"])]
    assert meter_serials == ["MTR-A1", "MTR-A2", "MTR-B1"]
    assert session.scalar(select(MeterReading.status).where(MeterReading.id == rows[0].id)) == (
        "failed"
    )


def test_buckets_are_exact_at_their_edges(private_world: tuple[Session, Seeded]) -> None:
    session, seeded = private_world
    meter = session.scalars(select(Meter).where(Meter.serial == "MTR-B1")).one()
    edge = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    for at, kwh in [(edge - timedelta(microseconds=1), "0.000001"), (edge, "0.000002")]:
        make_reading(session, meter, kwh=kwh, at=at)
    window = Window(
        since=edge - timedelta(hours=1), until=edge + timedelta(hours=1), bucket_secs=3600
    )
    points = views.energy_series(session, seeded.users["ops"], window)
    assert [(p.bucket_start.hour, p.kwh_micro) for p in points] == [(5, 1), (6, 2)]
