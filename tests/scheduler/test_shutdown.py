"""Stopping the scheduler while a mint cycle is rescheduling itself.

APScheduler's shutdown(wait=True) waits for running jobs while holding the job-store
lock a running job needs to move its own next run: the stop must not depend on it.
The pipeline here is a stand-in whose cycle blocks until the stop has begun; the
scheduler, its locks and the database are the real ones.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from apscheduler.schedulers.base import STATE_STOPPED

from core.minting.pipeline import CycleReport
from scheduler.jobs import MintScheduler
from tests.support.localnet import wait_for


class _CycleThatOutlivesTheStop:
    """A cycle still running when SIGTERM arrives, which then asks for its next run."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.jobs: MintScheduler | None = None

    def recover(self, _report: CycleReport, *, release_all_planned: bool) -> None:
        assert release_all_planned

    def run_cycle(self) -> CycleReport:
        self.entered.set()
        assert self.jobs is not None
        wait_for(lambda: self.jobs.scheduler.state == STATE_STOPPED, timeout=10, what="stop")
        return CycleReport(next_due_at=datetime.now(UTC) + timedelta(seconds=30))


def test_a_stop_during_a_cycle_that_reschedules_itself_finishes(app) -> None:
    pipeline = _CycleThatOutlivesTheStop()
    jobs = MintScheduler(SimpleNamespace(app=app, pipeline=pipeline), threading.Event())
    pipeline.jobs = jobs
    running = threading.Thread(target=jobs.start, name="scheduler", daemon=True)
    running.start()
    assert pipeline.entered.wait(10), "the first mint cycle never ran"
    stopping = threading.Thread(target=jobs.shutdown, name="shutdown", daemon=True)
    stopping.start()
    stopping.join(15)
    running.join(15)
    assert not stopping.is_alive(), "shutdown is waiting on a job that waits on shutdown"
    assert not running.is_alive()
    assert jobs._in_flight == 0
