"""APScheduler jobs: the mint cycle (on an interval and on arrival), the certificate
cycle (every few seconds), reconciliation of both mints (from running totals, with a
slower audit of those totals against the full sum), the settlement grace
(telemetry intervals no later sample closed), and folding PostgreSQL's rollup deltas
(every 5 s).

Job settings are deliberate: fixed ids with replace_existing (a restart never
doubles a job), coalesce (a backlog of missed runs is one run), max_instances=1
(cycles never overlap in one process) and misfire_grace_time of one interval (a
late cycle still runs; a later one is due anyway). Readings arriving while a cycle
runs set `wake`, and the running cycle goes round again instead of being skipped.
Readings left waiting to fill a transaction (TOKENIZATION_MAX_MINT_WAIT_SECS) bring
the next cycle forward to the moment the oldest of them becomes due.

The mint job is moved from two threads at once: the event watcher brings it
forward on arrivals while the running cycle brings it forward to the next due
reading or reschedules it for a new polling interval. Each move reads the job and
then writes it, so all of them hold one lock: otherwise a move computed from a
stale read could push the cycle back past the earlier time another just set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import wraps

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.certificates.reconcile import reconcile_certificates
from core.db.partitions import ensure_ahead
from core.event_watch import EventWatcher
from core.events import EventType, publish
from core.minting.pipeline import CycleReport
from core.minting.reconcile import reconcile
from core.minting.totals import audit as audit_totals
from core.rollups import fold_deltas
from core.settlement import close_due_intervals
from scheduler.service import Minter

log = logging.getLogger(__name__)

MINT_JOB = "mint-cycle"
RECONCILE_JOB = "reconcile"
CERTIFICATE_JOB = "certificates"
RECONCILE_SECS = 30
AUDIT_JOB = "audit-totals"
PARTITION_JOB = "partitions"
PARTITION_SECS = 3600  # months are created three ahead: an hourly look is plenty
AUDIT_SECS = 600  # the full sum reads every minted reading: rarely, reconcile reads the total
# Hours close once an hour, but transfers and retirements are asked for at any time.
CERTIFICATE_SECS = 5
ROLLUP_JOB = "fold-rollups"
ROLLUP_SECS = 5  # readers add the deltas not folded yet: fold often so they stay few
SETTLE_JOB = "settle-intervals"
SETTLE_SECS = 5  # an interval closes at most this long after its grace ends
GATHER_SECS = 0.3  # after the first new reading, wait this long so a batch can fill
DUE_MARGIN = timedelta(milliseconds=50)  # wake just after a waiting reading is due
WAKING_EVENTS = {
    EventType.METER_READING_RECEIVED.value,
    EventType.MINT_REQUESTED.value,
    EventType.SETTINGS_CHANGED.value,
    EventType.READING_REVIEWED.value,
}


class MintScheduler:
    def __init__(self, minter: Minter, stop: threading.Event) -> None:
        self.minter = minter
        self.stop = stop
        self.wake = threading.Event()
        self.scheduler = BlockingScheduler(timezone=UTC)
        self.interval = minter.app.config().polling_interval_secs
        self.failures = 0  # consecutive aborted cycles
        self._idle = threading.Condition()
        self._in_flight = 0  # periodic jobs running now
        self._moving = threading.Lock()  # held while the mint job is read and moved

    def start(self) -> None:
        """Recover, schedule, listen for arrivals; blocks until shutdown()."""
        report = CycleReport()
        self.minter.pipeline.recover(report, release_all_planned=True)
        if report.released or report.confirmed or report.failed or report.expired:
            log.info("recovery: %s", report)
        now = datetime.now(UTC)
        self._every(self.mint_job, self.interval, MINT_JOB, now)
        self._every(self.reconcile_job, RECONCILE_SECS, RECONCILE_JOB, now + timedelta(seconds=5))
        self._every(
            self.certificate_job, CERTIFICATE_SECS, CERTIFICATE_JOB, now + timedelta(seconds=1)
        )
        self._every(self.settle_job, SETTLE_SECS, SETTLE_JOB, now)
        self._every(self.rollup_job, ROLLUP_SECS, ROLLUP_JOB, now)
        self._every(self.audit_job, AUDIT_SECS, AUDIT_JOB, now + timedelta(seconds=60))
        self._every(self.partition_job, PARTITION_SECS, PARTITION_JOB, now)
        self.scheduler.add_listener(self._job_went_wrong, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        if self.stop.is_set():  # SIGTERM during recovery: shutdown() found nothing running
            return
        # A SIGTERM that lands between the check above and start() finds the scheduler not
        # yet running; this job ends it from inside once it runs.
        self.scheduler.add_job(
            self._stop_when_asked,
            IntervalTrigger(seconds=0.5),
            id="stop-watch",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        watcher = EventWatcher(self.minter.app.engine, stop=self.stop)
        threading.Thread(
            target=watcher.watch, args=(self._on_events,), name="event-watch", daemon=True
        ).start()
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop after the step in flight; whatever is unfinished is recovered on next start.

        APScheduler's shutdown(wait=True) waits for running jobs while holding its job-store
        lock, and a running mint job takes that lock to bring its next run forward: the two
        would wait for each other for ever. So the scheduler stops without waiting and the
        jobs in flight are awaited here, with no scheduler lock held.
        """
        self.stop.set()
        self.wake.set()
        self._stop_scheduler()
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0)

    def _every(
        self, job: Callable[[], None], seconds: int, job_id: str, first_run: datetime
    ) -> None:
        """A periodic job with the settings of the module docstring, awaited by shutdown()."""

        @wraps(job)
        def tracked() -> None:
            with self._tracked():
                job()

        self.scheduler.add_job(
            tracked,
            IntervalTrigger(seconds=seconds),
            id=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=seconds,
            next_run_time=first_run,
        )

    @contextmanager
    def _tracked(self) -> Iterator[None]:
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    # --- jobs --------------------------------------------------------------------------

    def _stop_scheduler(self) -> None:
        # Not started yet, or the other stop path came first: either way it is stopping.
        with suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)

    def _stop_when_asked(self) -> None:
        if self.stop.is_set():
            self._stop_scheduler()

    def mint_job(self) -> None:
        """Cycles until nothing woke us meanwhile; an aborted cycle is retried soon.

        A cycle aborts when the node or the database is unreachable; what it persisted
        stays and the next cycle resumes it. The retry comes after 1, 2, 4 ... seconds
        (at most one polling interval), not a whole interval later. The exception is
        re-raised so APScheduler's listener records it as a scheduler_job_error event.
        """
        while not self.stop.is_set():
            self.wake.clear()
            try:
                config = self.minter.app.config()
                self._follow_interval(config.polling_interval_secs)
                report = self.minter.pipeline.run_cycle()
            except Exception:
                self.failures += 1
                delay = min(2 ** (self.failures - 1), self.interval)
                self._run_mint_job_at(datetime.now(UTC) + timedelta(seconds=delay))
                raise
            self.failures = 0
            if report.next_due_at is not None:
                self._run_mint_job_at(max(report.next_due_at, datetime.now(UTC)) + DUE_MARGIN)
            if report.claimed_readings or report.batches_sent or report.unresolved:
                log.info(
                    "cycle: %d readings claimed, %d batches sent, %d confirmed, %d failed, "
                    "%d expired, %d unresolved",
                    report.claimed_readings,
                    report.batches_sent,
                    report.confirmed,
                    report.failed,
                    report.expired,
                    report.unresolved,
                )
            if not self.wake.is_set():
                return

    def certificate_job(self) -> None:
        """Issue closed hours' bundles and move certificates on chain (core.certificates)."""
        if self.stop.is_set():
            return
        report = self.minter.certificates.run_cycle()
        if report.issued.bundles or report.planned or report.applied:
            log.info(
                "certificates: %d bundles (%d Wh, %d in review), %d moves planned, %d applied",
                report.issued.bundles,
                report.issued.wh,
                report.issued.in_review,
                report.planned,
                report.applied,
            )

    def reconcile_job(self) -> None:
        grx = self.minter.grx
        reconcile(
            self.minter.app.sessions,
            self.minter.app.settings.tokenization,
            str(grx.address),
            lambda: self.minter.chain.token_supply(grx.address),
        )
        certificates = self.minter.certificate_mint.address
        reconcile_certificates(
            self.minter.app.sessions,
            str(certificates),
            lambda: self.minter.chain.token_supply(certificates),
        )

    def partition_job(self) -> None:
        """Monthly partitions of readings and events, created ahead (PostgreSQL)."""
        if self.stop.is_set():
            return
        created = ensure_ahead(self.minter.app.engine, datetime.now(UTC))
        if created:
            log.info("partitions created: %s", ", ".join(created))

    def rollup_job(self) -> None:
        """Fold the rollup deltas PostgreSQL's triggers appended (core.rollups.fold)."""
        if self.stop.is_set():
            return
        fold_deltas(self.minter.app.engine)

    def audit_job(self) -> None:
        """The slow check of the running total reconcile reads: against the full sum."""
        if self.stop.is_set():
            return
        audit_totals(self.minter.app.sessions)

    def settle_job(self) -> None:
        """Close the telemetry intervals whose grace passed; their surplus is then minted.

        Their readings' meter_reading_received events wake the mint cycle like any other.
        """
        if self.stop.is_set():
            return
        app = self.minter.app
        closed = close_due_intervals(app.sessions, app.config(), datetime.now(UTC))
        if closed:
            log.info("settlement: %d intervals closed by their grace", closed)

    # --- triggers and listeners --------------------------------------------------------

    def _on_events(self, _max_id: int, types: set[str]) -> None:
        if not types & WAKING_EVENTS or self.stop.is_set():
            return
        self.wake.set()
        self._run_mint_job_at(datetime.now(UTC) + timedelta(seconds=GATHER_SECS))

    def _run_mint_job_at(self, when: datetime) -> None:
        """Bring the next mint cycle forward to `when` (never push it back)."""
        if self.stop.is_set():
            return
        with self._moving:
            job = self.scheduler.get_job(MINT_JOB)
            if job is not None and (job.next_run_time is None or job.next_run_time > when):
                job.modify(next_run_time=when)

    def _follow_interval(self, seconds: int) -> None:
        """An admin changed the polling interval: reschedule, no restart needed.

        Rescheduling sets the next run one new interval from now; a run brought
        forward earlier than that (an arrival, a due reading) is kept.
        """
        with self._moving:
            if seconds == self.interval or self.stop.is_set():
                return
            job = self.scheduler.get_job(MINT_JOB)
            if job is None:
                return
            log.info("polling interval %ss -> %ss", self.interval, seconds)
            self.interval = seconds
            earlier = job.next_run_time
            self.scheduler.reschedule_job(MINT_JOB, trigger=IntervalTrigger(seconds=seconds))
            changes: dict[str, object] = {"misfire_grace_time": seconds}
            job = self.scheduler.get_job(MINT_JOB)
            if earlier is not None and job is not None and job.next_run_time > earlier:
                changes["next_run_time"] = earlier
            self.scheduler.modify_job(MINT_JOB, **changes)

    def _job_went_wrong(self, event: JobExecutionEvent) -> None:
        missed = event.code == EVENT_JOB_MISSED
        if not missed:
            log.error("job %s failed: %r", event.job_id, event.exception)
        payload = {
            "job_id": event.job_id,
            "scheduled_run_time": event.scheduled_run_time,
            "error": None if missed else f"{type(event.exception).__name__}: {event.exception}",
        }
        kind = EventType.SCHEDULER_JOB_MISSED if missed else EventType.SCHEDULER_JOB_ERROR
        try:
            with self.minter.app.sessions() as session:
                publish(session, kind, payload)
                session.commit()
        except Exception:  # the database may be what failed
            log.exception("could not record the job %s as an event", event.job_id)
