"""Benchmark: every dashboard page's render time over 1,000,000 readings.

    .venv/bin/python -m bench.dashboard                 # SQLite, and PostgreSQL if it answers
    .venv/bin/python -m bench.dashboard --backend both  # both, PostgreSQL at TEST_DATABASE_URL
    .venv/bin/python -m bench.dashboard --readings 100000 --runs 3
    .venv/bin/python -m bench.dashboard --meters 100000 --pages overview,fleet,admin --skip-export

Seeds a fresh database (bench/dashboard_seed.py), points the app at it through
the environment as `streamlit run app.py` would be, and renders each page for each
role allowed to see it with streamlit.testing.v1.AppTest: one untimed warm-up run
per page, then `--runs` timed runs; prints page, role, median and worst ms. The
RPC URL names a closed port, so chain reads cost a refused connection, not a timeout.
`--meters N` adds N meters with no readings (bench/dashboard_seed.py `seed_fleet`: their
prosumers, states, flags and gateways), for the pages that list the fleet; `--pages`
keeps the cases of the pages named.
Then it exports every reading as CSV in a process of its own (bench/export_memory.py)
and prints that process's peak resident memory (target: under 200 MB).
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
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.dashboard_seed import seed, seed_fleet
from bench.databases import chosen_backends, fresh_database
from core.db.engine import create_db_engine
from core.db.migrate import upgrade
from core.db.models import SessionKind, User
from core.db.types import utcnow
from core.sessions import SessionPolicy, start_session

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-dashboard-secret-of-32-bytes-or-more"
BUDGET_MS = 1000
EXPORT_BUDGET_MB = 200
ROLES = {  # the user seeded for each role, and the pages that role may open
    "admin": (
        "root",
        ["overview", "fleet", "live", "minting", "events", "control", "review", "admin"],
    ),
    "operator": ("ops", ["overview", "fleet", "live", "minting", "events"]),
    "prosumer": ("p00", ["live", "events", "wallet"]),
}


def cases(meter: str = "MTR-0007") -> list[tuple[str, str, str, dict[str, object]]]:
    """(label, role, page, widget state): every page at its defaults for every role
    that may open it, then the heaviest choices a user can make (`meter`: the one
    meter the drill-downs pick; bench/fleet.py names one of its own)."""
    from core.views import Split
    from core.views.fleet import Health

    cases: list[tuple[str, str, str, dict[str, object]]] = [
        (page, role, page, {}) for role, (_, pages) in ROLES.items() for page in pages
    ]
    cases += [
        ("live 30 d by prosumer", "admin", "live",
         {"live.range": "Last 30 days", "live.split": Split.PROSUMER}),
        ("live 7 d by meter", "operator", "live",
         {"live.range": "Last 7 days", "live.split": Split.METER}),
        ("live 30 d", "prosumer", "live", {"live.range": "Last 30 days"}),
        ("minting 7 d", "admin", "minting", {"minting.range": "Last 7 days"}),
        ("events all + text", "admin", "events", {"events.range": "All time",
                                                  "events.text": "batch_id"}),
        ("events all by meter", "operator", "events", {"events.range": "All time",
                                                       "events.meter": meter}),
        ("live 30 d one meter", "operator", "live", {"live.range": "Last 30 days",
                                                     "live.meter": meter}),
        ("fleet 7 d", "admin", "fleet", {"fleet.range": "Last 7 days"}),
        ("fleet 7 d + meter", "operator", "fleet", {"fleet.range": "Last 7 days",
                                                   "fleet.meter": meter}),
        ("fleet silent", "operator", "fleet", {"fleet.health": [Health.SILENT]}),
        ("fleet search", "operator", "fleet", {"fleet.search": "0123"}),
        ("fleet page 100", "operator", "fleet", {"fleet.page": 100}),
        ("admin search", "admin", "admin", {"admin.meters_search": "0123",
                                            "admin.users_search": "0123"}),
    ]  # fmt: skip
    return cases


def measure(
    url: str, data_dir: Path, runs: int, pages: set[str] | None = None
) -> list[tuple[str, str, float, float]]:
    users = {role: name for role, (name, _) in ROLES.items()}
    chosen = [case for case in cases() if pages is None or case[2] in pages]
    return render_pages(url, data_dir, users, chosen, runs)


def render_pages(
    url: str,
    data_dir: Path,
    users_by_role: dict[str, str],
    cases: list[tuple[str, str, str, dict[str, object]]],
    runs: int,
) -> list[tuple[str, str, float, float]]:
    """Each case's page rendered by AppTest as its role's user: (label, role, median, max)."""
    from streamlit.testing.v1 import AppTest

    os.environ.update(DATABASE_URL=url, DATA_DIR=str(data_dir), API_SECRET_KEY=SECRET,
                      SOLANA_RPC_URL="http://127.0.0.1:9", LOG_LEVEL="WARNING")  # fmt: skip
    engine = create_db_engine(url)
    with Session(engine) as session:
        users = {role: session.scalars(select(User).where(User.username == name)).one()
                 for role, name in users_by_role.items()}  # fmt: skip
        # A day-long idle limit: the benchmark's runs must not be logged out.
        policy = SessionPolicy(max_hours=24, idle_minutes=1440)
        tokens = {role: start_session(session, user, SECRET, kind=SessionKind.DASHBOARD,
                                      policy=policy, now=utcnow()).access_token
                  for role, user in users.items()}  # fmt: skip
    engine.dispose()
    results = []
    for label, role, page, state in cases:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["auth.token"] = tokens[role]
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        # Say why, rather than fail to find the page below: an exception, or the app's
        # own refusal before its navigation (st.error + st.stop: e.g. the database is
        # behind the tree's migrations because a migration arrived while seeding).
        if at.exception or at.error:
            problem = at.exception[0].value if at.exception else at.error[0].value
            raise SystemExit(f"{label} as {role}: the app failed: {problem}")
        at.switch_page(f"pages/screens/{page}.py").run()  # warm-up: imports, plans, caches
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            at.run()
            timings.append((time.perf_counter() - started) * 1000)
            if at.exception or at.error:
                problem = at.exception[0].value if at.exception else at.error[0].value
                raise SystemExit(f"{label} as {role} failed: {problem}")
        results.append((label, role, statistics.median(timings), max(timings)))
    return results


def export_memory(url: str) -> dict[str, float]:
    """Export every reading as an admin in a fresh process; its figures as a dict."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.export_memory", url, "readings", "root"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument(
        "--backend",
        choices=["auto", "sqlite", "postgresql", "both"],
        default="auto",
        help="auto: SQLite, and PostgreSQL too when --pg-url answers",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-pages", action="store_true", help="only the export's memory")
    parser.add_argument("--skip-export", action="store_true", help="only the pages")
    parser.add_argument("--meters", type=int, default=0, help="meters with no readings to add")
    parser.add_argument("--pages", help="comma separated pages to time (default: every page)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    backends = chosen_backends(args.backend, args.pg_url)
    if args.backend == "auto" and "postgresql" not in backends:
        print(f"(PostgreSQL at {args.pg_url} does not answer: SQLite only)")
    worst = worst_rss = 0.0
    for backend in backends:
        with (
            tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp,
            fresh_database(backend, tmp, args.pg_url) as url,
        ):
            upgrade(url)
            engine = create_db_engine(url)
            started = time.perf_counter()
            info = seed(engine, args.readings)
            engine.dispose()
            print(f"\n{backend}: seeded {info.readings:,} readings, {info.batches:,} batches "
                  f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
            if args.meters:
                started = time.perf_counter()
                engine = create_db_engine(url)
                held = seed_fleet(engine, args.meters)
                engine.dispose()
                print(f"{backend}: {held:,} meters after seeding {args.meters:,} "
                      f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
            pages = set(args.pages.split(",")) if args.pages else None
            results = [] if args.skip_pages else measure(url, Path(tmp) / "data", args.runs, pages)
            export = None if args.skip_export else export_memory(url)
        print("load {:.1f} / {:.1f} / {:.1f} after the renders".format(*os.getloadavg()))
        print(f"{'page':<22} {'role':<9} {'median ms':>10} {'worst ms':>9}")
        for page, role, median, high in results:
            flag = "" if median < BUDGET_MS else f"  over {BUDGET_MS} ms"
            print(f"{page:<22} {role:<9} {median:>10.0f} {high:>9.0f}{flag}")
            worst = max(worst, median)
        if export is None:
            continue
        flag = "" if export["peak_rss_mb"] < EXPORT_BUDGET_MB else f"  over {EXPORT_BUDGET_MB} MB"
        size_mb = export["bytes"] / 1e6
        print(f"CSV export of {export['rows']:,} readings ({size_mb:.0f} MB) in "
              f"{export['seconds']} s: peak RSS {export['peak_rss_mb']} MB "
              f"(before the export {export['rss_before_mb']} MB; at the end heap "
              f"{export['rss_anon_mb']} MB, files {export['rss_file_mb']} MB){flag}")  # fmt: skip
        worst_rss = max(worst_rss, export["peak_rss_mb"])
    return 0 if worst < BUDGET_MS and worst_rss < EXPORT_BUDGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
