"""CSV exports: the rows equal the screen's view for the same filter, paged by keyset
without repeats or gaps, scoped by viewer; signed links; spreadsheet-safe cells."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import views
from core.bootstrap import App
from core.db.models import Meter, MeterReading, User
from core.errors import Forbidden
from core.exports.csv_stream import check_access, safe_cell, stream_csv
from core.exports.links import InvalidLink, sign_link, verify_link
from core.exports.tables import TABLES, export_table
from core.views.filters import InvalidFilter, TableFilter, parse_filter
from tests.factories import NOW, make_reading
from tests.pages.seed import seed_dashboard


@pytest.fixture
def seeded(app: App) -> dict[str, User]:
    with app.sessions() as session:
        users = seed_dashboard(session).users
        return {name: session.get(User, user.id) for name, user in users.items()}  # type: ignore[misc]


def rows_of(app: App, table: str, user: User, flt: TableFilter, page_size: int = 2) -> list[dict]:
    data = b"".join(stream_csv(app.engine, export_table(table), user.id, flt, page_size=page_size))
    return list(csv.DictReader(io.StringIO(data.decode())))


@pytest.mark.parametrize(
    "flt",
    [
        TableFilter(),
        TableFilter(since=NOW - timedelta(minutes=50)),
        TableFilter(meter="MTR-A1"),
        TableFilter(status="minted", user="alice"),
        TableFilter(meter="MTR-NONE"),
    ],
    ids=["all", "since", "meter", "status+user", "nothing"],
)
def test_readings_export_equals_the_screen(app: App, seeded: dict[str, User], flt) -> None:
    with views.read_session(app.engine) as session:
        screen = views.filtered_readings(session, seeded["ops"], flt, limit=10_000)
        # An independent count of the same filter, written here in plain SQL terms.
        count = select(func.count()).select_from(MeterReading)
        if flt.since is not None:
            count = count.where(MeterReading.reading_timestamp >= flt.since)
        total = session.scalar(count)
    exported = rows_of(app, "readings", seeded["ops"], flt)
    assert [int(row["id"]) for row in exported] == [row.id for row in screen]
    assert len({row["id"] for row in exported}) == len(exported)  # no page repeated
    if not flt.meter and not flt.status:
        assert len(exported) == total
    for row, view in zip(exported, screen, strict=True):
        assert (row["meter_serial"], row["username"], row["status"]) == (
            view.meter_serial,
            view.username,
            view.status,
        )
        # Exact decimal kWh, never a float: micro-kWh / 10**6 by integer arithmetic.
        whole, micro = divmod(view.kwh_micro, 1_000_000)
        assert row["kwh"] == f"{whole}.{micro:06d}"


def test_a_prosumer_exports_only_their_own(app: App, seeded: dict[str, User]) -> None:
    readings = rows_of(app, "readings", seeded["alice"], TableFilter())
    assert readings and {row["username"] for row in readings} == {"alice"}
    events = rows_of(app, "events", seeded["alice"], TableFilter())
    assert events and {row["user_id"] for row in events} == {str(seeded["alice"].id)}
    for table in ("mints", "meters", "users"):
        with pytest.raises(Forbidden):
            check_access(app.engine, export_table(table), seeded["alice"].id, TableFilter())
    with pytest.raises(Forbidden):
        check_access(app.engine, export_table("users"), seeded["ops"].id, TableFilter())


def test_events_export_equals_the_screen(app: App, seeded: dict[str, User]) -> None:
    for flt in (
        TableFilter(),
        TableFilter(types=("tokens_minted",), text="bob"),
        TableFilter(meter="MTR-X"),
        TableFilter(user="alice"),
    ):
        with views.read_session(app.engine) as session:
            screen = views.filtered_events(session, seeded["root"], flt, limit=10_000)
        exported = rows_of(app, "events", seeded["root"], flt, page_size=1)
        assert [int(row["id"]) for row in exported] == [row.id for row in screen], flt
    assert [
        row["type"] for row in rows_of(app, "events", seeded["root"], TableFilter(meter="MTR-X"))
    ] == ["meter_reading_validation_failed"]


def test_mints_meters_users(app: App, seeded: dict[str, User]) -> None:
    root = seeded["root"]
    with views.read_session(app.engine) as session:
        batches = views.recent_batches(session, root, limit=10_000)
        meters = views.meters(session, root)
        users = views.users(session, root)
    assert [int(r["batch_id"]) for r in rows_of(app, "mints", root, TableFilter())] == [
        b.id for b in batches
    ]
    assert sorted(r["serial"] for r in rows_of(app, "meters", root, TableFilter())) == sorted(
        m.serial for m in meters
    )
    assert sorted(r["username"] for r in rows_of(app, "users", root, TableFilter())) == sorted(
        u.username for u in users
    )
    assert [r["username"] for r in rows_of(app, "users", root, TableFilter(role="operator"))] == [
        "ops"
    ]


def test_a_disabled_user_stops_getting_rows(app: App, seeded: dict[str, User]) -> None:
    stream = stream_csv(
        app.engine, export_table("readings"), seeded["ops"].id, TableFilter(), page_size=1
    )
    next(stream)  # the header
    next(stream)  # one page
    with app.sessions() as session:
        session.get(User, seeded["ops"].id).disabled = True  # type: ignore[union-attr]
        session.commit()
    with pytest.raises(Forbidden):
        next(stream)


def test_links_are_signed_scoped_and_expire() -> None:
    flt = TableFilter(since=NOW, meter="MTR-A1", types=("a", "b"))
    link = sign_link("secret", 7, "readings", flt, NOW, ttl=60)
    grant = verify_link("secret", link, NOW + timedelta(seconds=59))
    assert (grant.user_id, grant.table, grant.filter) == (7, "readings", flt)
    with pytest.raises(InvalidLink, match="expired"):
        verify_link("secret", link, NOW + timedelta(seconds=60))
    with pytest.raises(InvalidLink):
        verify_link("other secret", link, NOW)
    _body, mac = link.split(".")
    forged = sign_link("secret", 8, "readings", flt, NOW).split(".")[0]
    with pytest.raises(InvalidLink):
        verify_link("secret", f"{forged}.{mac}", NOW)
    with pytest.raises(InvalidLink):
        verify_link("secret", "garbage", NOW)


def test_filters_parse_and_refuse() -> None:
    flt = parse_filter({"since": "2026-11-20T06:00:00Z", "types": "a, b", "meter": " M "})
    assert flt == TableFilter(
        since=datetime(2026, 11, 20, 6, tzinfo=UTC), types=("a", "b"), meter="M"
    )
    assert parse_filter(flt.as_query()) == flt
    with pytest.raises(InvalidFilter) as unknown:
        parse_filter({"colour": "red"})
    assert unknown.value.field == "colour"
    with pytest.raises(InvalidFilter) as bad_time:
        parse_filter({"since": "yesterday"})
    assert bad_time.value.field == "since"


def test_bad_status_is_a_field_error(app: App, seeded: dict[str, User]) -> None:
    with pytest.raises(InvalidFilter) as bad:
        check_access(
            app.engine, export_table("readings"), seeded["ops"].id, TableFilter(status="lost")
        )
    assert bad.value.field == "status"


def test_formula_cells_are_defused() -> None:
    assert [safe_cell(c) for c in ("=HYPERLINK(1)", "+1+1", "@x", "-12.5", "-x", "ok")] == [
        "'=HYPERLINK(1)", "'+1+1", "'@x", "-12.5", "'-x", "ok",
    ]  # fmt: skip


def test_every_table_is_listed() -> None:
    assert set(TABLES) == {"readings", "mints", "events", "meters", "users", "certificates"}


def test_pages_cover_a_table_larger_than_one_page(app: App, seeded: dict[str, User]) -> None:
    with app.sessions() as session:
        meter = session.scalars(select(Meter).where(Meter.serial == "MTR-B1")).one()
        for minute in range(23):
            make_reading(session, meter, at=NOW - timedelta(days=2, minutes=minute))
        session.commit()
        expected = session.scalar(select(func.count()).select_from(MeterReading))
    exported = rows_of(app, "readings", seeded["ops"], TableFilter(), page_size=5)
    assert len(exported) == expected
    assert [int(r["id"]) for r in exported] == sorted(
        (int(r["id"]) for r in exported), reverse=True
    )
