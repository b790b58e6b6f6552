"""Benchmark: certificate issuance throughput, and the Certificates page at scale.

    .venv/bin/python -m bench.certificates                       # SQLite in a temp dir
    .venv/bin/python -m bench.certificates --readings 1000000 --certificates 1000000
    .venv/bin/python -m bench.certificates --database-url postgresql+psycopg://...

Issuance: `--readings` minted readings (every 15 minutes, spread over `--meters`
devices with complete registry fields) are bulk-inserted, then
core.certificates.issuance.issue_due runs until nothing is due, exactly as the
scheduler's cycle calls it. Prints readings and bundles per second and checks
every device's certified Wh against floor(its mWh / 1000), computed here; then
times a run with nothing new (the steady state: the watermark keeps it from
rescanning the million minted readings).

Page: `--certificates` certificate rows (one bundle each, 30 days of hours) are
bulk-inserted (with their per-day totals, as issuance keeps them), then the
queries the Certificates page makes are timed as staff and as a prosumer: the
per-day totals by technology and region, and one page of the registry with its
total count (the median of 5 runs each). Then the page itself is rendered with
streamlit.testing.v1.AppTest for each role, as bench/dashboard.py renders every
page (a warm-up, then `--runs` timed runs; median and worst; budget 1,000 ms).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from bench.dashboard import BUDGET_MS, render_pages
from core.certificates.issuance import issue_due
from core.db.engine import create_db_engine, session_factory
from core.db.migrate import upgrade
from core.db.models import (
    Certificate,
    CertificateBundle,
    CertificateDaily,
    Meter,
    MeterReading,
    User,
)
from core.db.types import utcnow
from core.views.certificates import CertificateFilter, certificates, daily_totals

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DEVICE = {
    "technology": "solar_pv",
    "capacity_kw": "100",
    "country": "TH",
    "grid_region": "TH-PEA",
    "commissioning_date": date(2024, 1, 1),
}
CHUNK = 20_000


def _users_and_meters(session: Session, meters: int) -> tuple[list[int], list[int]]:
    owners = []
    for index in range(max(1, meters // 10)):
        user = User(
            username=f"bench{index:04d}",
            role="prosumer",
            password_hash="x",
            wallet_address=f"{index:032d}"[:32] + "1" * 12,
        )
        session.add(user)
        owners.append(user)
    session.flush()
    rows = []
    for index in range(meters):
        meter = Meter(
            serial=f"BENCH-{index:05d}",
            owner_id=owners[index % len(owners)].id,
            public_key="1" * 32,
            api_key_hash=f"{index:064d}",
            status="active",
            **DEVICE,
        )
        session.add(meter)
        rows.append(meter)
    session.commit()
    return [o.id for o in owners], [m.id for m in rows]


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bench_issuance(sessions: Callable[[], Session], readings: int, meters: int) -> None:
    with sessions() as session:
        owners, meter_ids = _users_and_meters(session, meters)
        owner_of = {m: owners[i % len(owners)] for i, m in enumerate(meter_ids)}
        per_meter = readings // meters
        start = NOW - timedelta(minutes=15 * (per_meter + 4))
        expected: dict[int, int] = {}

        def rows() -> Iterator[dict[str, Any]]:
            for meter_id in meter_ids:
                for n in range(per_meter):
                    micro = 250_000 + (meter_id * 7919 + n * 104_729) % 200_000
                    expected[meter_id] = expected.get(meter_id, 0) + micro
                    yield {
                        "meter_id": meter_id, "user_id": owner_of[meter_id],
                        "wallet_address": "w", "kwh_micro": micro,
                        "reading_timestamp": start + timedelta(minutes=15 * n),
                        "submitted_at": NOW, "status": "minted", "meter_signature": "s",
                        "minted_at": NOW - timedelta(minutes=30),
                        "attempts": 0,
                    }  # fmt: skip

        began = time.perf_counter()
        for chunk in _chunks(rows()):
            session.execute(insert(MeterReading), chunk)
        session.commit()
        seeded = time.perf_counter() - began
    total = per_meter * meters
    print(f"issuance: {total:,} minted readings on {meters} devices (seeded in {seeded:.1f} s)")
    began = time.perf_counter()
    bundles = wh = 0
    with sessions() as session:
        while True:
            report = issue_due(session, now=NOW, auto_issue=True)
            if not report.bundles:
                break
            bundles += report.bundles
            wh += report.wh
    took = time.perf_counter() - began
    print(
        f"  issued {bundles:,} bundles ({wh:,} Wh) in {took:.1f} s: "
        f"{total / took:,.0f} readings/s, {bundles / took:,.0f} certificates/s"
    )
    with sessions() as session:
        runs = []
        for _ in range(5):
            began = time.perf_counter()
            assert issue_due(session, now=NOW + timedelta(minutes=5), auto_issue=True).bundles == 0
            runs.append(time.perf_counter() - began)
    print(f"  a run with nothing new: {statistics.median(runs) * 1000:,.0f} ms (median of 5)")
    with sessions() as session:
        certified = dict(
            session.execute(
                select(CertificateBundle.meter_id, func.sum(CertificateBundle.wh)).group_by(
                    CertificateBundle.meter_id
                )
            ).all()
        )
    wrong = [m for m, mwh in expected.items() if int(certified.get(m, 0)) != mwh // 1000]
    print(f"  exact: {'yes' if not wrong else f'NO ({len(wrong)} devices differ)'}")


def bench_page(sessions: Callable[[], Session], count: int) -> None:
    with sessions() as session:
        owners, meter_ids = _users_and_meters(session, 100)
        for name, role in (("ops", "operator"), ("root", "admin")):
            session.add(User(username=name, role=role, password_hash="x"))
        session.commit()
        hours = 30 * 24

        def bundles() -> Iterator[dict[str, Any]]:
            for index in range(count):
                yield {
                    "id": index + 1, "meter_id": meter_ids[index % len(meter_ids)],
                    "producer_id": owners[index % len(owners)],
                    "hour_start": NOW - timedelta(hours=1 + index % hours), "readings": 4,
                    "energy_mwh": 1_000_000, "carried_in_mwh": 0, "wh": 1000,
                    "remainder_mwh": 0, "first_id": index * 1000 + 1,
                    "last_id": index * 1000 + 1000, "capacity_kw": "100",
                    "created_at": NOW, **{k: v for k, v in DEVICE.items() if k != "capacity_kw"},
                }  # fmt: skip

        def certs() -> Iterator[dict[str, Any]]:
            statuses = ("active",) * 7 + ("retired", "retired", "cancelled")
            for index in range(count):
                status = statuses[index % len(statuses)]
                ended = None if status == "active" else NOW - timedelta(hours=index % hours)
                yield {
                    "id": index + 1, "bundle_id": index + 1, "first_id": index * 1000 + 1,
                    "last_id": index * 1000 + 1000, "wh": 1000,
                    "holder_id": owners[index % len(owners)], "holder_wallet": "w" * 32,
                    "status": status, "attempts": 0, "created_at": NOW, "updated_at": NOW,
                    "finished_at": ended,
                }  # fmt: skip

        began = time.perf_counter()
        for chunk in _chunks(bundles()):
            session.execute(insert(CertificateBundle), chunk)
        for chunk in _chunks(certs()):
            session.execute(insert(Certificate), chunk)
        daily: dict[tuple[date, str], int] = {}
        for index in range(count):
            day = (NOW - timedelta(hours=1 + index % hours)).date()
            daily[(day, "issued")] = daily.get((day, "issued"), 0) + 1000
        session.execute(
            insert(CertificateDaily),
            [
                {"day": day, "technology": "solar_pv", "grid_region": "TH-PEA",
                 "status": status, "wh": wh}
                for (day, status), wh in daily.items()
            ],
        )  # fmt: skip
        session.commit()
        print(f"page: {count:,} certificates (seeded in {time.perf_counter() - began:.1f} s)")
        staff = User(id=0, username="ops", role="operator")
        prosumer = session.get(User, owners[0])
        assert prosumer is not None

        def timed(label: str, run: Callable[[], object]) -> None:
            runs = []
            for _ in range(5):
                began = time.perf_counter()
                run()
                runs.append(time.perf_counter() - began)
                session.rollback()
            print(f"  {label}: {statistics.median(runs) * 1000:,.0f} ms (median of 5)")

        since = utcnow() - timedelta(days=30)
        timed("staff daily totals (30 days)", lambda: daily_totals(session, staff, since=since))
        timed("staff registry page + count", lambda: certificates(session, staff, limit=200))
        timed(
            "staff registry filtered (status=retired)",
            lambda: certificates(session, staff, CertificateFilter(status="retired"), limit=200),
        )
        timed("prosumer own page + count", lambda: certificates(session, prosumer, limit=200))


def bench_render(url: str, data_dir: Path, runs: int) -> None:
    cases: list[tuple[str, str, str, dict[str, object]]] = [
        ("certificates", "admin", "certificates", {}),
        ("certificates", "operator", "certificates", {}),
        ("certificates", "prosumer", "certificates", {}),
        ("certificates retired + holder", "operator", "certificates",
         {"certs.status": "retired", "certs.holder": "bench0003"}),
        ("certificates by region", "admin", "certificates", {"certs.chart_by": "grid_region"}),
    ]  # fmt: skip
    users = {"admin": "root", "operator": "ops", "prosumer": "bench0000"}
    print(f"page render (AppTest, median of {runs}; budget {BUDGET_MS} ms):")
    for label, role, median, worst in render_pages(url, data_dir, users, cases, runs):
        flag = "ok" if worst < BUDGET_MS else "OVER BUDGET"
        print(f"  {label:34} {role:9} {median:7,.0f} ms  worst {worst:7,.0f} ms  {flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--certificates", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed page renders per case")
    parser.add_argument("--skip-issuance", action="store_true")
    parser.add_argument("--skip-page", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        parts = [p for p in ("issuance", "page") if not getattr(args, f"skip_{p}")]
        for part in parts:
            url = args.database_url or f"sqlite:///{Path(directory) / f'{part}.db'}"
            upgrade(url)
            engine = create_db_engine(url)

            sessions = session_factory(engine)
            if part == "issuance":
                bench_issuance(sessions, args.readings, args.meters)
            else:
                bench_page(sessions, args.certificates)
            engine.dispose()
            if part == "page":
                bench_render(url, Path(directory) / "data", args.runs)
            if args.database_url:
                break  # one database: run the page part on a fresh one yourself


if __name__ == "__main__":
    main()
