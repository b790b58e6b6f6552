"""`python -m api`: the ingest service on API_HOST:API_PORT (uvicorn).

Before serving it checks the database is migrated (else exits 1 saying how to
migrate) and creates the first admin; a generated admin password is printed
here, once, and never again (it stays in DATA_DIR/secrets/admin_password, 0600).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace

from core.bootstrap import bootstrap
from core.config import ConfigError, load_settings
from core.db.migrate import DatabaseNotMigrated
from core.users import ensure_first_admin
from serving.protocol import connection_limits, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=None,
        help="seconds an idle keep-alive connection stays open (default HTTP_KEEP_ALIVE_SECS)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        for variable, value, allowed in exc.problems:
            print(f"invalid configuration: {variable}={value!r}: {allowed}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.app.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # A line per chain health check or per migration check says nothing an operator needs.
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
    try:
        core = bootstrap(settings)
    except DatabaseNotMigrated as exc:
        print(f"api: {exc}", file=sys.stderr)
        return 1
    try:
        with core.sessions() as session:
            first = ensure_first_admin(session, settings.app)
    finally:
        core.close()
    if first is not None and first.generated_password:
        print(
            f"api: created the first admin {first.user.username!r} with password "
            f"{first.generated_password} (saved 0600 in {first.password_file}; shown only now)",
            flush=True,
        )
    elif first is not None:
        print(f"api: created the first admin {first.user.username!r} (ADMIN_PASSWORD)", flush=True)
    limits = connection_limits(settings.app)
    if args.timeout_keep_alive is not None:
        limits = replace(limits, keep_alive_secs=args.timeout_keep_alive)
    started = serve(
        "api.app:create_app",
        limits,
        factory=True,
        host=settings.app.api_host,
        port=settings.app.api_port,
        workers=args.workers,
        log_level=settings.app.log_level.lower(),
        access_log=args.access_log,
        # Events are small JSON; compressing each one once per client cost more CPU
        # than fanning out to 500 clients (docs/EVENTS.md, bench/ws_latency.py).
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
    )
    return 0 if started else 3  # uvicorn's exit status for a failed startup


if __name__ == "__main__":
    sys.exit(main())
