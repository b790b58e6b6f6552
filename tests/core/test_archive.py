"""Archiving closed months (core.archive) on SQLite and PostgreSQL.

The expected totals are read before the archive by plain SQL over the rows (the
oracle), and the files are read back here with gzip and json, not with the module's
reader, and compared with the rows that were there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.archive import ArchiveMismatch, ArchiveRefused, archive_before
from core.archive import removal as removal_module
from core.archive.__main__ import main as archive_main
from core.config import AppSettings, TokenizationConfig
from core.db.engine import create_db_engine, session_factory
from core.db.models import (
    Event,
    IntervalAmount,
    IntervalStatus,
    Meter,
    MeterReading,
    MintTotal,
    ReadingStatus,
    SettlementInterval,
    TokenMint,
    User,
)
from core.db.partitions import bounds, ensure_months, months
from core.minting import states
from core.minting.claim import claim_pending
from core.minting.minted_buckets import minted_between, minted_per_bucket
from core.minting.reconcile import check_supply
from core.minting.totals import GRX, full_sum_audit
from core.readings import accept_reading
from core.readings.errors import ReadingTooOld
from core.readings.identity import submitting_meter
from core.readings.queries import reading_stats
from core.rollups import DAY, FIFTEEN_MINUTES, accepted, measure, rollup_rows
from core.settings_store import effective_config, update_settings
from core.views.costs import costs
from core.views.overview import expected_supply
from tests.factories import make_meter, make_reading, make_user
from tests.support.seed import seed_producers, seed_readings

AUG, SEP, OCT, NOV = (date(2026, m, 1) for m in (8, 9, 10, 11))
ARCHIVED = (AUG, SEP, OCT)
NOW = datetime(2026, 11, 20, tzinfo=UTC)  # October closed (+7 days of reading age), November not
COSTS_NOW = datetime(2026, 11, 2, tzinfo=UTC)  # its 30 days hold October's minting
MINT = "GRXArchiveTestMint1111111111111111111111111"
BOOTSTRAP_SUPPLY = 7
CONFIG = TokenizationConfig.model_validate(
    {**TokenizationConfig().model_dump(), "max_mint_wait_secs": 0}
)


def _mint_all(sessions: sessionmaker[Session], now: datetime) -> None:
    """Mint every pending reading through the real state machine (claim, sign, confirm)."""
    while True:
        with sessions() as session:
            batches = claim_pending(session, CONFIG, now=now, wallets_per_transaction=2)
            if not batches:
                return
            for batch in batches:
                signature = f"sig-{batch.id}"
                states.mark_signed_many(
                    session, [states.SignedBatch(batch.id, signature, b"tx", "hash", 9)], now=now
                )
                assert states.mark_confirmed(session, batch.id, slot=1, now=now)


def _seed(sessions: sessionmaker[Session], engine) -> None:
    """Three prosumers, readings in August to November; some rejected, the rest minted."""
    ensure_months(engine, [SEP, OCT])  # August and November stay in the default partition
    with sessions() as session:
        producers = seed_producers(session, 3)
        session.add(
            TokenMint(
                address=MINT,
                rpc_url="-",
                token_program="spl-token",
                decimals=9,
                bootstrap_supply=BOOTSTRAP_SUPPLY,
            )
        )
        make_user(session, "archive-admin", role="admin")
        for month in (*ARCHIVED, NOV):
            start = datetime(month.year, month.month, 3, tzinfo=UTC)
            seed_readings(session, producers, 6, start=start)
            session.execute(
                update(MeterReading)
                .where(MeterReading.reading_timestamp >= start, MeterReading.id % 5 == 0)
                .values(status="rejected")
            )
            session.commit()
            _mint_all(sessions, start + timedelta(days=1))
        # A telemetry interval's amount names a September reading (a foreign key on SQLite).
        reading = session.scalars(
            select(MeterReading).where(
                MeterReading.status == "minted", MeterReading.reading_timestamp >= bounds(SEP)[0]
            )
        ).first()
        interval = SettlementInterval(
            meter_id=reading.meter_id,
            interval_start=reading.reading_timestamp,
            interval_end=reading.reading_timestamp + timedelta(minutes=15),
            status=IntervalStatus.CLOSED.value,
            net_micro=reading.kwh_micro,
            settled_micro=reading.kwh_micro,
        )
        session.add(interval)
        session.flush()
        session.add(
            IntervalAmount(interval_id=interval.id, seq=0, reading_id=reading.id, kwh_micro=1)
        )
        session.commit()


def _in(month: date, column):
    start, end = bounds(month)
    return (column >= start) & (column < end)


def _oracle(session: Session) -> dict:
    """Totals and rows by plain SQL, before anything is archived."""
    minted = MeterReading.status == "minted"
    count, units = session.execute(
        select(func.count(), func.coalesce(func.sum(MeterReading.token_base_units), 0)).where(
            minted
        )
    ).one()
    rows = {}
    for month in ARCHIVED:
        readings = session.scalars(
            select(MeterReading)
            .where(_in(month, MeterReading.reading_timestamp))
            .order_by(MeterReading.id)
        ).all()
        events = session.scalars(
            select(Event).where(_in(month, Event.created_at)).order_by(Event.id)
        ).all()
        rows[month] = (
            [
                (r.id, r.user_id, r.kwh_micro, r.status, r.token_base_units, r.reading_timestamp)
                for r in readings
            ],
            [(e.id, e.type, e.user_id, e.payload, e.created_at) for e in events],
        )
    users = session.scalars(select(Meter.owner_id)).all()
    admin = session.scalars(select(User).where(User.username == "archive-admin")).one()
    start, end = bounds(AUG)[0], bounds(NOV)[0]
    return {
        "minted": (int(count), int(units)),
        "rows": rows,
        "views": {  # the read models that read rollups or totals, not rows
            "costs": costs(session, admin, COSTS_NOW),
            "expected supply": expected_supply(
                session, admin, AppSettings(energy_token_mint=MINT)
            ).expected,
            "minted per day": minted_per_bucket(session, start, end, 86_400),
            "minted": minted_between(session, start, end),
            "rollups": {
                level.bucket_secs: _rollup_totals(session, level)
                for level in (FIFTEEN_MINUTES, DAY)
            },
        },
        "stats": {None: reading_stats(session)} | {u: reading_stats(session, u) for u in users},
    }


def _rollup_totals(session: Session, level) -> dict[int, tuple[int, ...]]:
    """Per owner, from the rollups: what stats counts (accepted, their kWh, minted, units)."""
    rows = rollup_rows(level)
    return {
        int(user): tuple(int(value) for value in values)
        for user, *values in session.execute(
            select(
                rows.c.user_id,
                accepted(rows, "n"),
                accepted(rows, "kwh"),
                measure(rows, "n", (ReadingStatus.MINTED,)),
                func.coalesce(func.sum(rows.c.minted_units), 0),
            ).group_by(rows.c.user_id)
        )
    }


def _file_rows(directory: Path, table: str) -> list[dict]:
    with gzip.open(directory / f"{table}.jsonl.gz", "rt") as handle:
        return [json.loads(line) for line in handle]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _check_files(root: Path, expected: dict) -> None:
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for month in ARCHIVED:
        directory = root / f"{month:%Y-%m}"
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        names = sorted(os.listdir(directory))
        assert names == [
            "SHA256SUMS",
            "events.jsonl.gz",
            "manifest.json",
            "meter_readings.jsonl.gz",
        ]
        for name in names:
            assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
        for line in (directory / "SHA256SUMS").read_text().splitlines():
            sha, name = line.split("  ")
            assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == sha
        readings, events = expected["rows"][month]
        assert readings and events  # the check can fail: there was something to archive
        got = [
            (
                r["id"],
                r["user_id"],
                r["kwh_micro"],
                r["status"],
                r["token_base_units"],
                _at(r["reading_timestamp"]),
            )
            for r in _file_rows(directory, "meter_readings")
        ]
        assert got == readings
        got_events = [
            (e["id"], e["type"], e["user_id"], e["payload"], _at(e["created_at"]))
            for e in _file_rows(directory, "events")
        ]
        assert got_events == [(i, t, u, json.loads(json.dumps(p)), c) for i, t, u, p, c in events]
        manifest = json.loads((directory / "manifest.json").read_text())
        entry = manifest["tables"]["meter_readings"]
        minted = [r for r in readings if r[3] == "minted"]
        assert entry["rows"] == len(readings)
        assert entry["kwh_micro"] == sum(r[2] for r in readings)
        assert Decimal(entry["kwh"]) == Decimal(sum(r[2] for r in readings)) / 10**6
        assert (entry["minted_rows"], entry["token_base_units"], entry["minted_kwh_micro"]) == (
            len(minted),
            sum(r[4] for r in minted),
            sum(r[2] for r in minted),
        )
        assert manifest["tables"]["events"]["rows"] == len(events)
        assert manifest["months"] == [f"{month:%Y-%m}"]
        assert manifest["schema_version"]
        sums = dict(
            reversed(line.split("  "))
            for line in (directory / "SHA256SUMS").read_text().splitlines()
        )
        assert entry["sha256"] == sums["meter_readings.jsonl.gz"]


def _check_totals(sessions: sessionmaker[Session], expected: dict) -> None:
    supply = BOOTSTRAP_SUPPLY + expected["minted"][1]  # what the chain holds
    result = check_supply(sessions, MINT, lambda: supply)
    assert result.ok and result.expected_supply == supply
    with sessions() as session:
        audit = full_sum_audit(session)
        assert audit.ok
        assert (audit.running_readings, audit.running_base_units) == expected["minted"]
        assert (audit.summed_readings, audit.summed_base_units) == expected["minted"]


def _written_only(engine, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.archive.run.remove_month", lambda *a: "skipped")
    archive_before(engine, CONFIG, NOV, root, now=NOW, say=lambda _: None)
    monkeypatch.undo()


def _set_note(sessions: sessionmaker[Session], reading_id: int, note: str | None) -> None:
    with sessions() as session:
        session.execute(
            update(MeterReading).where(MeterReading.id == reading_id).values(review_note=note)
        )
        session.commit()


def test_archiving_keeps_reconcile_and_totals_exact(sessions, engine, tmp_path: Path) -> None:
    _seed(sessions, engine)
    with sessions() as session:
        expected = _oracle(session)
    root = tmp_path / "archive"
    lines: list[str] = []
    archive_before(engine, CONFIG, NOV, root, now=NOW, say=lines.append)

    _check_files(root, expected)
    _check_totals(sessions, expected)
    with sessions() as session:
        views = _oracle(session)["views"]
        assert views == expected["views"]
        for stats in (views["rollups"][900], views["rollups"][86_400]):  # as the rows said
            assert stats == {
                user: (
                    got.total_readings,
                    got.total_kwh_micro,
                    got.by_status["minted"],
                    got.tokens_minted,
                )
                for user, got in expected["stats"].items()
                if user is not None
            }
        assert views["expected supply"] == BOOTSTRAP_SUPPLY + expected["minted"][1]
        assert views["costs"].last_30_days.readings_minted > 0  # October's minting is in it
        assert views["minted"] == sum(
            1 for m in ARCHIVED for r in expected["rows"][m][0] if r[3] == "minted"
        )
        for month in ARCHIVED:
            left = session.scalar(
                select(func.count()).where(_in(month, MeterReading.reading_timestamp))
            )
            assert left == 0
            assert not session.scalar(select(func.count()).where(_in(month, Event.created_at)))
        assert session.scalar(
            select(func.count()).where(_in(NOV, MeterReading.reading_timestamp))
        )  # November is not closed: kept
        total = session.get(MintTotal, GRX)
        archived = [r for m in ARCHIVED for r in expected["rows"][m][0] if r[3] == "minted"]
        assert (total.archived_readings, total.archived_base_units) == (
            len(archived),
            sum(r[4] for r in archived),
        )
        if engine.dialect.name == "postgresql":
            for table in ("meter_readings", "events"):
                assert not {SEP, OCT} & set(months(session.connection(), table))
    assert any("detached and dropped" in line for line in lines) == (
        engine.dialect.name == "postgresql"
    )

    again: list[str] = []  # a rerun finds nothing left to do
    archive_before(engine, CONFIG, NOV, root, now=NOW, say=again.append)
    assert again == ["nothing to archive before 2026-11"]
    _check_totals(sessions, expected)


def test_stats_are_the_same_after_archiving(sessions, engine, tmp_path: Path) -> None:
    _seed(sessions, engine)
    with sessions() as session:
        expected = _oracle(session)["stats"]
    archive_before(engine, CONFIG, NOV, tmp_path / "archive", now=NOW, say=lambda _: None)
    with sessions() as session:
        for user, stats in expected.items():
            assert reading_stats(session, user) == stats


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_crash_before_removal_then_a_rerun_gives_the_same_files_and_removes(
    sessions, engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(sessions, engine)
    with sessions() as session:
        expected = _oracle(session)
    root = tmp_path / "archive"

    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt("killed after writing")

    monkeypatch.setattr("core.archive.run.remove_month", crash)
    with pytest.raises(KeyboardInterrupt):
        archive_before(engine, CONFIG, NOV, root, now=NOW, say=lambda _: None)
    written = _digests(root)
    assert written  # the first month was written and sealed
    with sessions() as session:  # nothing removed yet
        assert session.scalar(select(func.count()).where(_in(AUG, MeterReading.reading_timestamp)))
    monkeypatch.undo()

    # A second crash, this time in the middle of a chunked removal.
    monkeypatch.setattr(removal_module, "CHUNK", 4)
    calls = {"n": 0}
    real = removal_module.add_archived

    def crash_second_chunk(connection, readings: int, base_units: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed between chunks")
        real(connection, readings, base_units)

    monkeypatch.setattr(removal_module, "add_archived", crash_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        archive_before(engine, CONFIG, NOV, root, now=NOW, say=lambda _: None)
    with sessions() as session:  # August half removed
        left = session.scalar(select(func.count()).where(_in(AUG, MeterReading.reading_timestamp)))
        assert 0 < left < len(expected["rows"][AUG][0])
    _check_totals(sessions, expected)  # exact at every commit
    monkeypatch.undo()

    archive_before(engine, CONFIG, NOV, root, now=NOW, say=lambda _: None)
    assert {k: v for k, v in _digests(root).items() if k in written} == written
    _check_files(root, expected)
    _check_totals(sessions, expected)


def test_months_not_closed_or_not_final_are_refused_and_nothing_is_written(
    sessions, engine, tmp_path: Path
) -> None:
    _seed(sessions, engine)
    with sessions() as session:
        session.execute(
            update(MeterReading)
            .where(_in(SEP, MeterReading.reading_timestamp), MeterReading.status == "minted")
            .where(MeterReading.id % 2 == 0)
            .values(status="failed")
        )
        session.commit()
    root = tmp_path / "archive"
    with pytest.raises(ArchiveRefused) as refused:
        archive_before(engine, CONFIG, date(2026, 12, 1), root, now=NOW, say=lambda _: None)
    problems = refused.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("2026-09 holds ") and "failed" in problems[0]
    assert "Minting page" in problems[0]
    assert problems[1].startswith("2026-11 is not closed") and "2026-12-08" in problems[1]
    assert not root.exists()
    with sessions() as session:
        assert session.scalar(select(func.count()).where(_in(AUG, MeterReading.reading_timestamp)))


def test_minted_readings_awaiting_certificates_are_refused(
    sessions, engine, tmp_path: Path
) -> None:
    _seed(sessions, engine)
    with sessions() as session:
        meter = session.scalars(select(Meter).order_by(Meter.id)).first()
        meter.technology, meter.capacity_kw, meter.country = "solar_pv", Decimal(5), "DE"
        meter.grid_region, meter.commissioning_date = "DE-1", date(2020, 1, 1)
        session.commit()
    with pytest.raises(ArchiveRefused) as refused:
        archive_before(engine, CONFIG, NOV, tmp_path / "a", now=NOW, say=lambda _: None)
    assert all("not yet issued as certificates" in p for p in refused.value.problems)
    assert len(refused.value.problems) == 3


def test_dry_run_changes_nothing(sessions, engine, tmp_path: Path) -> None:
    _seed(sessions, engine)
    with sessions() as session:
        before = _oracle(session)
    lines: list[str] = []
    archive_before(engine, CONFIG, NOV, tmp_path / "a", now=NOW, dry_run=True, say=lines.append)
    assert [line[:7] for line in lines] == ["2026-08", "2026-09", "2026-10"]
    assert all("would write and verify" in line for line in lines)
    assert not (tmp_path / "a").exists()
    with sessions() as session:
        assert _oracle(session)["rows"] == before["rows"]


def test_a_row_that_changed_after_writing_is_never_removed(
    sessions, engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(sessions, engine)
    with sessions() as session:
        expected = _oracle(session)
    root = tmp_path / "archive"
    _written_only(engine, root, monkeypatch)
    changed = expected["rows"][AUG][0][0][0]
    _set_note(sessions, changed, "later")
    with pytest.raises(ArchiveMismatch, match=f"row {changed} differs"):
        archive_before(engine, CONFIG, NOV, root, now=NOW, say=lambda _: None)
    with sessions() as session:
        assert session.get(MeterReading, changed) is not None
    _check_totals(sessions, expected)


def test_an_archive_altered_on_disk_is_refused(
    sessions, engine, tmp_path: Path, monkeypatch
) -> None:
    _seed(sessions, engine)
    root = tmp_path / "archive"
    _written_only(engine, root, monkeypatch)
    path = root / "2026-08" / "events.jsonl.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveRefused, match="does not verify"):
        archive_before(engine, CONFIG, NOV, root, now=NOW, say=lambda _: None)


def test_the_command_archives_refuses_with_the_fix_and_rejects_a_bad_month(
    sqlite_url: str, tmp_path: Path, make_settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m core.archive` in this process (its main), on the real clock."""
    engine = create_db_engine(sqlite_url)
    sessions = session_factory(engine)
    _seed(sessions, engine)
    with sessions() as session:  # one October reading still waits: the run must refuse
        meter = session.scalars(select(Meter).order_by(Meter.id)).first()
        make_reading(session, meter, kwh="0.001", at=datetime(2026, 10, 30, tzinfo=UTC))
    settings = make_settings(DATABASE_URL=sqlite_url)
    data = settings.app.data_dir
    assert archive_main(["--before", "2026-13"]) == 2
    assert "YYYY-MM" in capsys.readouterr().err
    assert archive_main(["--before", "2026-11"]) == 1
    assert "2026-10 holds 1 readings not yet final (pending 1)" in capsys.readouterr().err
    assert not (data / "archive").exists()
    assert archive_main(["--before", "2026-10"]) == 0
    out = capsys.readouterr().out
    assert "archive: 2026-08: wrote and verified" in out
    assert "archive: 2026-09: meter_readings:" in out
    assert (data / "archive" / "2026-09" / "SHA256SUMS").exists()
    with sessions() as session:
        assert not session.scalar(
            select(func.count()).where(_in(SEP, MeterReading.reading_timestamp))
        )
        assert full_sum_audit(session).ok
    engine.dispose()


def test_sqlite_keeps_a_month_holding_the_newest_row(sqlite_url: str, tmp_path: Path) -> None:
    """Deleting the row of the largest id would let SQLite hand that id out again."""
    engine = create_db_engine(sqlite_url)
    sessions = session_factory(engine)
    _seed(sessions, engine)
    with sessions() as session:
        meter = session.scalars(select(Meter).order_by(Meter.id)).first()
        newest = make_reading(
            session,
            meter,
            kwh="0.001",
            at=datetime(2026, 10, 30, tzinfo=UTC),
            submitted_at=datetime(2026, 11, 5, tzinfo=UTC),
            status="rejected",
        ).id
    with pytest.raises(ArchiveRefused) as refused:
        archive_before(engine, CONFIG, NOV, tmp_path / "a", now=NOW, say=lambda _: None)
    assert refused.value.problems == [
        f"2026-10 holds the newest row of meter_readings (id {newest}): on SQLite its id "
        "would be given again to the next row once it is deleted; archive 2026-10 once a "
        "newer row has been written"
    ]
    engine.dispose()


def test_a_resent_archived_reading_is_refused_even_when_the_age_limit_would_take_it(
    sessions, engine, tmp_path: Path
) -> None:
    """Once its twin is archived, UNIQUE(meter, timestamp) can no longer make a resend a
    duplicate; the archive horizon refuses it, also after an admin widens the age limit."""
    august = datetime(2026, 8, 10, 12, tzinfo=UTC)
    november = datetime(2026, 11, 18, 12, tzinfo=UTC)
    with sessions() as session:
        keys = make_meter(session, serial="MTR-ARCHIVED")
        meter = submitting_meter(session, keys.api_key)
        first = accept_reading(session, meter, keys.payload("2.5", at=august), CONFIG, now=august)
        assert first.created
    _seed(sessions, engine)  # mints our August reading with the seeded ones
    with sessions() as session:
        kept = accept_reading(
            session, meter, keys.payload("1.25", at=november), CONFIG, now=november
        )
        assert session.get(MeterReading, first.reading.id).status == "minted"
        assert effective_config(session, CONFIG).archived_before is None
    _mint_all(sessions, november)
    archive_before(engine, CONFIG, NOV, tmp_path / "archive", now=NOW, say=lambda _: None)

    with sessions() as session:
        admin = session.scalars(select(User).where(User.username == "archive-admin")).one()
        update_settings(session, CONFIG, {"reading_max_age_days": 3650}, by=admin)
        config = effective_config(session, CONFIG)
        assert config.reading_max_age_days == 3650
        assert config.archived_before == datetime(2026, 11, 1, tzinfo=UTC)  # October's end
        before = session.scalar(select(func.count()).select_from(MeterReading))
        with pytest.raises(ReadingTooOld, match="archived month") as refused:
            accept_reading(session, meter, keys.payload("2.5", at=august), config, now=NOW)
        assert refused.value.field == "reading_timestamp"
        last_instant = datetime(2026, 10, 31, 23, 59, 59, 999_000, tzinfo=UTC)
        with pytest.raises(ReadingTooOld, match="archived month"):
            accept_reading(session, meter, keys.payload("3", at=last_instant), config, now=NOW)
        # Not archived: a resend is still the duplicate it was, and the month still takes new ones.
        again = accept_reading(session, meter, keys.payload("1.25", at=november), config, now=NOW)
        assert (again.created, again.reading.id) == (False, kept.reading.id)
        first_instant = datetime(2026, 11, 1, tzinfo=UTC)
        assert accept_reading(
            session, meter, keys.payload("1", at=first_instant), config, now=NOW
        ).created
        assert session.scalar(select(func.count()).select_from(MeterReading)) == before + 1


@pytest.fixture
def pg_engine(pg_url: str):
    engine = create_db_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("change", ["update", "insert", "delete", "event"])
def test_a_partition_that_changed_after_writing_is_never_dropped(
    pg_engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The partition path proves the month unchanged by its database fingerprint."""
    sessions = session_factory(pg_engine)
    _seed(sessions, pg_engine)
    with sessions() as session:
        expected = _oracle(session)
    root = tmp_path / "archive"
    _written_only(pg_engine, root, monkeypatch)
    manifest = json.loads((root / "2026-09" / "manifest.json").read_text())
    for table in ("meter_readings", "events"):  # rows:sum, the rows as the file has them
        rows, _, total = manifest["tables"][table]["db_fingerprint"].partition(":")
        assert int(rows) == manifest["tables"][table]["rows"] > 0 and int(total) > 0
    with sessions() as session:
        if change == "update":
            session.execute(
                update(MeterReading)
                .where(MeterReading.id == expected["rows"][SEP][0][3][0])
                .values(review_note="later")
            )
        elif change == "insert":
            meter = session.scalars(select(Meter).order_by(Meter.id)).first()
            make_reading(session, meter, at=datetime(2026, 9, 28, tzinfo=UTC), status="rejected")
        elif change == "delete":
            rejected = next(r[0] for r in expected["rows"][SEP][0] if r[3] == "rejected")
            session.execute(delete(MeterReading).where(MeterReading.id == rejected))
        else:
            session.execute(
                update(Event)
                .where(Event.id == expected["rows"][SEP][1][0][0])
                .values(payload={"edited": True})
            )
        session.commit()
    table = "events" if change == "event" else "meter_readings"
    with pytest.raises(ArchiveMismatch, match=f"{table} rows of 2026-09 differ from the archive"):
        archive_before(pg_engine, CONFIG, NOV, root, now=NOW, say=lambda _: None)
    with sessions() as session:  # August went (default partition, compared row by row)
        assert not session.scalar(
            select(func.count()).where(_in(AUG, MeterReading.reading_timestamp))
        )
        assert SEP in months(session.connection(), table)  # the partition is still there
        total = session.get(MintTotal, GRX)
        august = [r for r in expected["rows"][AUG][0] if r[3] == "minted"]
        if table == "events":  # the readings' partition went before, counted once
            august += [r for r in expected["rows"][SEP][0] if r[3] == "minted"]
        assert (total.archived_readings, total.archived_base_units) == (
            len(august),
            sum(r[4] for r in august),
        )
        assert full_sum_audit(session).ok


@pytest.mark.postgres
def test_an_archive_without_a_fingerprint_is_compared_row_by_row(
    pg_engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archives written before fingerprints existed still remove, by the per-row compare."""
    sessions = session_factory(pg_engine)
    _seed(sessions, pg_engine)
    with sessions() as session:
        expected = _oracle(session)
    root = tmp_path / "archive"
    _written_only(pg_engine, root, monkeypatch)
    for month in ARCHIVED:  # as an older version wrote it: no fingerprint, resealed
        directory = root / f"{month:%Y-%m}"
        manifest = json.loads((directory / "manifest.json").read_text())
        for entry in manifest["tables"].values():
            del entry["db_fingerprint"]
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        names = ("events.jsonl.gz", "manifest.json", "meter_readings.jsonl.gz")
        (directory / "SHA256SUMS").write_text(
            "".join(
                f"{hashlib.sha256((directory / n).read_bytes()).hexdigest()}  {n}\n" for n in names
            )
        )
    changed = expected["rows"][OCT][0][2][0]
    _set_note(sessions, changed, "x")
    with pytest.raises(ArchiveMismatch, match=f"row {changed} differs"):
        archive_before(pg_engine, CONFIG, NOV, root, now=NOW, say=lambda _: None)
    _set_note(sessions, changed, None)
    archive_before(pg_engine, CONFIG, NOV, root, now=NOW, say=lambda _: None)
    _check_totals(sessions, expected)
    with sessions() as session:
        assert not {SEP, OCT} & set(months(session.connection(), "meter_readings"))
