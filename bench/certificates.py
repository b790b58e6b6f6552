"""Benchmark: certificate issuance throughput, and the Certificates page at scale.

    .venv/bin/python -m bench.certificates          # SQLite, and PostgreSQL if it answers
    .venv/bin/python -m bench.certificates --backend postgresql --readings 1000000 --meters 1000
    .venv/bin/python -m bench.certificates --backend both --skip-issuance --certificates 1000000

Each part runs on a fresh database per backend (SQLite in a temp dir; PostgreSQL a
database of its own at --pg-url, dropped afterwards).

Issuance: `--readings` minted readings (every 15 minutes, spread over `--meters`
devices with complete registry fields) are bulk-inserted, then
core.certificates.issuance.issue_due runs until nothing is due, exactly as the
scheduler's cycle calls it. Prints readings and bundles per second and checks
every device's certified Wh against floor(its mWh / 1000), computed here; then
times a run with nothing new (the steady state: the watermark keeps it from
rescanning the million minted readings).

Page: `--certificates` certificate rows (one bundle each, 30 days of hours; 100
devices of 10 prosumers, so each prosumer holds a tenth) are bulk-inserted (with
their per-day totals, as issuance keeps them), then the queries the Certificates
page makes are timed as staff and as a prosumer: the per-day totals, and one page
of the registry with its count as the page shows it (median of 5 runs each). Then
the page itself is rendered with streamlit.testing.v1.AppTest for each role, as
bench/dashboard.py renders every page (a warm-up, then `--runs` timed runs;
median and worst; budget 1,000 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Select, create_engine, func, make_url, select, text
from sqlalchemy.orm import Session

from bench import certificates_seed as seed
from bench.dashboard import BUDGET_MS, render_pages
from bench.databases import chosen_backends, fresh_database
from core.certificates.issuance import issue_due
from core.db.engine import create_db_engine, session_factory
from core.db.migrate import upgrade
from core.db.models import Certificate, CertificateBundle, User
from core.db.types import utcnow
from core.views.certificates import (
    CertificateFilter,
    certificates,
    count_statement,
    daily_totals,
    page_statement,
)

PAGE_COUNT_CAP = 10_000  # the page's COUNT_CAP (pages/screens/certificates.py)
# Every staff status x holder combination: the seed gives holders bench0000-0006 only
# active certificates, bench0007-0008 only retired, bench0009 only cancelled, so
# each status meets a holder with some and one with none.
STAFF_FILTERS = [
    (status, holder)
    for status in (None, "active", "retired", "cancelled")
    for holder in (None, "bench0003", "bench0007", "bench0009")
] + [(None, "root"), ("retired", "root")]  # root, an admin, holds none at all


def bench_issuance(sessions: Callable[[], Session], readings: int, meters: int) -> None:
    with sessions() as session:
        owners, meter_ids = seed.users_and_meters(session, meters)
        owner_of = {m: owners[i % len(owners)] for i, m in enumerate(meter_ids)}
        per_meter = readings // meters
        expected: dict[int, int] = {}
        began = time.perf_counter()
        rows = seed.minted_readings(owner_of, per_meter, expected)
        seed.bulk_insert(session, "meter_readings", seed.READING_COLUMNS, rows)
        session.commit()
        seeded = time.perf_counter() - began
        analyse(session, "meter_readings", "meters")
    total = per_meter * meters
    print(f"issuance: {total:,} minted readings on {meters} devices (seeded in {seeded:.1f} s)")
    began = time.perf_counter()
    bundles = wh = 0
    with sessions() as session:
        while True:
            report = issue_due(session, now=seed.NOW, auto_issue=True)
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
        analyse(session, "meter_readings", "certificate_readings", "certificate_bundles")
        runs = []
        for _ in range(5):
            began = time.perf_counter()
            later = seed.NOW + timedelta(minutes=5)
            assert issue_due(session, now=later, auto_issue=True).bundles == 0
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


def seed_page(sessions: Callable[[], Session], count: int) -> int:
    """The page's data; the id of the prosumer whose certificates are timed.

    A database already seeded with `count` certificates (`--pg-database`, kept from an
    earlier run) is used as it is: seeding a million takes minutes, a query change none.
    """
    with sessions() as session:
        if session.scalar(select(func.count()).select_from(Certificate)) == count:
            analyse(session, "certificates", "certificate_bundles", "users", "meters")
            print(f"page: {count:,} certificates (kept from an earlier run)")
            return int(session.scalar(select(User.id).where(User.username == "bench0000")))
        owners, meter_ids = seed.users_and_meters(session, 100)
        for name, role in (("ops", "operator"), ("root", "admin")):
            session.add(User(username=name, role=role, password_hash="x"))
        session.commit()
        began = time.perf_counter()
        seed.bulk_insert(
            session, "certificate_bundles", seed.BUNDLE_COLUMNS,
            seed.bundles(count, meter_ids, owners),
        )  # fmt: skip
        seed.bulk_insert(
            session, "certificates", seed.CERTIFICATE_COLUMNS, seed.certificates(count, owners)
        )
        seed.bulk_insert(
            session, "certificate_daily", ("day", "technology", "grid_region", "status", "wh"),
            seed.daily_rows(count),
        )  # fmt: skip
        session.commit()
        analyse(session, "certificates", "certificate_bundles", "users", "meters")
        print(f"page: {count:,} certificates (seeded in {time.perf_counter() - began:.1f} s)")
        return owners[0]


def analyse(session: Session, *tables: str) -> None:
    """Fresh statistics, as autovacuum / `ANALYZE` would have them after a bulk load.

    Without them PostgreSQL plans the issuance read over a million freshly loaded
    readings as a scan of them all (2.5 s per run instead of 30 ms).
    """
    session.commit()
    engine = session.get_bind()
    command = "ANALYZE"
    if engine.dialect.name == "postgresql":  # VACUUM also sets the visibility map
        command = f"VACUUM ANALYZE {', '.join(tables)}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(command)


def bench_queries(sessions: Callable[[], Session], prosumer_id: int) -> None:
    with sessions() as session:
        staff = User(id=0, username="ops", role="operator")
        prosumer = session.get(User, prosumer_id)
        assert prosumer is not None

        def timed(label: str, run: Callable[[], object]) -> None:
            runs = []
            for _ in range(5):
                began = time.perf_counter()
                run()
                runs.append(time.perf_counter() - began)
                session.rollback()
            print(f"  {label}: {statistics.median(runs) * 1000:,.0f} ms (median of 5)")

        def page(viewer: User, wanted: CertificateFilter | None = None) -> Callable[[], object]:
            return lambda: certificates(
                session, viewer, wanted, limit=200, count_cap=PAGE_COUNT_CAP
            )

        since = utcnow() - timedelta(days=30)
        timed("staff daily totals (30 days)", lambda: daily_totals(session, staff, since=since))
        timed("staff registry page + capped count", page(staff))
        timed(
            "staff registry filtered (status=retired)",
            page(staff, CertificateFilter(status="retired")),
        )
        timed(
            "staff registry filtered (holder)", page(staff, CertificateFilter(holder="bench0003"))
        )
        timed(
            "staff registry filtered (retired + holder)",
            page(staff, CertificateFilter(status="retired", holder="bench0003")),
        )
        for status, holder in STAFF_FILTERS:
            label = f"staff filter status={status or '-'} holder={holder or '-'}"
            timed(label, page(staff, CertificateFilter(status=status, holder=holder)))
        timed("prosumer own page + capped count", page(prosumer))
        timed(
            "prosumer own page + exact count (the API's total)",
            lambda: certificates(session, prosumer, limit=50),
        )


def explain(session: Session, statement: Select) -> list[str]:
    """The plan the database runs `statement` with (PostgreSQL: with actual times)."""
    dialect = session.get_bind().dialect
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name == "postgresql":
        prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
        return [row[0] for row in session.connection().exec_driver_sql(prefix + sql)]
    rows = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
    return [f"{row[1]:>3} {row[3]}" for row in rows]


def print_plans(sessions: Callable[[], Session], prosumer_id: int) -> None:
    with sessions() as session:
        staff = User(id=0, username="ops", role="operator")
        prosumer = session.get(User, prosumer_id)
        assert prosumer is not None
        everything = CertificateFilter()
        holder_ids = {name: uid for name, uid in session.execute(select(User.username, User.id))}

        def resolved(status: str | None, holder: str | None) -> CertificateFilter:
            """As certificates() runs it: the holder by id."""
            return CertificateFilter(status=status, holder_id=holder_ids.get(holder or ""))

        retired_of = resolved("retired", "bench0003")
        cases = [
            (
                f"staff page status={status or '-'} holder={holder or '-'}",
                page_statement(staff, resolved(status, holder), 200, 0),
            )
            for status, holder in STAFF_FILTERS
        ] + [
            ("prosumer capped count", count_statement(prosumer, everything, PAGE_COUNT_CAP)),
            ("prosumer exact count", count_statement(prosumer, everything)),
            ("prosumer page", page_statement(prosumer, everything, 200, 0)),
            ("staff capped count", count_statement(staff, everything, PAGE_COUNT_CAP)),
            ("staff page", page_statement(staff, everything, 200, 0)),
            ("staff page retired + holder", page_statement(staff, retired_of, 200, 0)),
            (
                "staff capped count retired + holder",
                count_statement(staff, retired_of, PAGE_COUNT_CAP),
            ),
        ]
        for label, statement in cases:
            print(f"  plan: {label}")
            for line in explain(session, statement):
                print(f"    {line}")
            session.rollback()


def bench_render(url: str, data_dir: Path, runs: int) -> None:
    cases: list[tuple[str, str, str, dict[str, object]]] = [
        ("certificates", "admin", "certificates", {}),
        ("certificates", "operator", "certificates", {}),
        ("certificates", "prosumer", "certificates", {}),
        ("certificates retired + holder", "operator", "certificates",
         {"certs.status": "retired", "certs.holder": "bench0003"}),
        ("certificates holder with none", "operator", "certificates", {"certs.holder": "root"}),
        ("certificates retired (all)", "operator", "certificates", {"certs.status": "retired"}),
        ("certificates by region", "admin", "certificates", {"certs.chart_by": "grid_region"}),
    ]  # fmt: skip
    users = {"admin": "root", "operator": "ops", "prosumer": "bench0000"}
    print(f"page render (AppTest, median of {runs}; budget {BUDGET_MS} ms):")
    for label, role, median, worst in render_pages(url, data_dir, users, cases, runs):
        flag = "ok" if worst < BUDGET_MS else "OVER BUDGET"
        print(f"  {label:34} {role:9} {median:7,.0f} ms  worst {worst:7,.0f} ms  {flag}")


def bench_export(url: str) -> None:
    """The CSV export of the registry, as an admin and as a prosumer, each in a process
    of its own (bench/export_memory.py: the dashboard route's and the API's stream)."""
    print("CSV export (core.exports, keyset pages of 5,000):")
    for username in ("root", "bench0000"):
        done = subprocess.run(
            [sys.executable, "-m", "bench.export_memory", url, "certificates", username],
            cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  as {username:9} {figures['rows']:>9,} rows in {figures['seconds']:>6} s, "
              f"peak RSS {figures['peak_rss_mb']} MB")  # fmt: skip


def run_part(part: str, url: str, tmp: Path, args: argparse.Namespace) -> None:
    upgrade(url)
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    try:
        if part == "issuance":
            bench_issuance(sessions, args.readings, args.meters)
            return
        prosumer_id = seed_page(sessions, args.certificates)
        bench_queries(sessions, prosumer_id)
        if args.explain:
            print_plans(sessions, prosumer_id)
    finally:
        engine.dispose()
    if not args.skip_render:
        bench_render(url, tmp / "data", args.runs)
    if not args.skip_export:
        bench_export(url)


def _kept_pg_database(admin_url: str, name: str) -> str:
    """The URL of database `name` beside `admin_url`'s, created if it does not exist."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        known = text("SELECT 1 FROM pg_database WHERE datname = :n")
        if not connection.scalar(known, {"n": name}):
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        choices=["auto", "sqlite", "postgresql", "both"],
        default="auto",
        help="auto: SQLite, and PostgreSQL too when it answers",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--pg-database",
        help="page part: use (create if missing) and keep this PostgreSQL database; "
        "one already holding --certificates certificates is not seeded again",
    )
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--certificates", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed page renders per case")
    parser.add_argument("--explain", action="store_true", help="print the page queries' plans")
    parser.add_argument("--skip-issuance", action="store_true")
    parser.add_argument("--skip-page", action="store_true")
    parser.add_argument("--skip-render", action="store_true", help="no AppTest renders")
    parser.add_argument("--skip-export", action="store_true", help="no CSV exports")
    args = parser.parse_args()
    backends = chosen_backends(args.backend, args.pg_url)
    parts = [p for p in ("issuance", "page") if not getattr(args, f"skip_{p}")]
    for backend in backends:
        for part in parts:
            print(f"\n[{backend}] ", end="", flush=True)
            with tempfile.TemporaryDirectory(prefix="bench-certificates-") as directory:
                if backend == "postgresql" and args.pg_database and part == "page":
                    database = nullcontext(_kept_pg_database(args.pg_url, args.pg_database))
                else:
                    database = fresh_database(backend, directory, args.pg_url)
                with database as url:
                    run_part(part, url, Path(directory), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
