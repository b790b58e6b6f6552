"""`python -m scheduler`: recover, then mint on an interval and as readings arrive."""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
import threading
from types import FrameType

from core.bootstrap import bootstrap
from core.config import ConfigError
from core.db.migrate import DatabaseNotMigrated
from core.errors import DomainError
from scheduler.jobs import MintScheduler
from scheduler.service import build_minter

log = logging.getLogger("scheduler")


def main() -> int:
    try:
        app = bootstrap()
    except ConfigError as exc:
        print(f"scheduler: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except DatabaseNotMigrated as exc:
        print(f"scheduler: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=app.settings.app.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stop = threading.Event()
    try:
        minter = build_minter(app, stop)
    except DomainError as exc:
        log.error("cannot start minting: %s", exc)
        return 1
    jobs = MintScheduler(minter, stop)

    def shutdown(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the step in flight, then stopping", signal.Signals(signum).name)
        threading.Thread(target=jobs.shutdown, name="shutdown").start()

    signal.signal(signal.SIGTERM, shutdown)
    # `kill -USR1 <pid>` prints every thread's stack: what a stop that hangs is waiting on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGINT, shutdown)
    log.info("scheduler started")
    jobs.start()
    log.info("scheduler stopped")
    minter.chain.close()
    if minter.pipeline.target.watch is not None:
        minter.pipeline.target.watch.close()
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
