"""Moving the mint job from two threads at once never pushes a cycle back.

The event watcher brings the job forward on arrivals while the running cycle
brings it forward or reschedules it (scheduler.jobs). Each move reads the job and
then writes it; the test forces the worst interleaving: the first mover is held
after its read, as it starts to write, while a second mover tries to bring the
job earlier. With the lock the second waits and its earlier time wins; without
it the first writes what it decided from its stale read and the earlier run is
lost.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.jobs import MINT_JOB, MintScheduler

HELD = 0.5  # how long the first mover waits for a second that, with the lock, cannot finish


@pytest.fixture
def jobs(make_minter) -> MintScheduler:
    """The scheduler of a real minter, its mint job added as start() adds it (not started)."""
    scheduling = MintScheduler(make_minter(), threading.Event())
    scheduling.scheduler.add_job(
        scheduling.mint_job,
        IntervalTrigger(seconds=scheduling.interval),
        id=MINT_JOB,
        next_run_time=datetime.now(UTC) + timedelta(hours=1),
    )
    return scheduling


def hold_first_writer(jobs: MintScheduler, *, mover: str):
    """Make `mover`'s first write to the job wait for the second mover (at most HELD)."""
    read = threading.Event()
    second_done = threading.Event()
    real_modify_job = jobs.scheduler.modify_job
    held = []

    def modify_job(job_id, *args, **changes):
        if threading.current_thread().name == mover and not held:
            held.append(job_id)
            read.set()
            second_done.wait(HELD)
        return real_modify_job(job_id, *args, **changes)

    jobs.scheduler.modify_job = modify_job
    return read, second_done


def next_run(jobs: MintScheduler) -> datetime:
    return jobs.scheduler.get_job(MINT_JOB).next_run_time


@pytest.mark.parametrize("first_move", ["bring_forward", "new_interval"])
def test_a_concurrent_move_never_pushes_the_cycle_back(jobs, first_move: str) -> None:
    now = datetime.now(UTC)
    earliest = now + timedelta(seconds=2)  # the arrival's time: the one that must win
    read, second_done = hold_first_writer(jobs, mover="first")
    if first_move == "bring_forward":
        first = threading.Thread(
            target=jobs._run_mint_job_at, args=(now + timedelta(minutes=10),), name="first"
        )
    else:  # the running cycle sees a new polling interval (an admin changed it)
        first = threading.Thread(
            target=jobs._follow_interval, args=(jobs.interval + 600,), name="first"
        )
    first.start()
    assert read.wait(10), "the first mover never wrote the job"

    def second() -> None:
        jobs._run_mint_job_at(earliest)
        second_done.set()

    arrival = threading.Thread(target=second, name="second")
    arrival.start()
    first.join(10)
    arrival.join(10)
    assert not first.is_alive() and not arrival.is_alive()
    assert next_run(jobs) == earliest  # the earliest move is the one that stands
    # And the first mover's own change took effect too.
    if first_move == "new_interval":
        job = jobs.scheduler.get_job(MINT_JOB)
        assert job.trigger.interval == timedelta(seconds=jobs.interval)
        assert job.misfire_grace_time == jobs.interval


def test_a_new_interval_keeps_an_earlier_run_and_takes_a_later_one_back(jobs) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=3)
    jobs._run_mint_job_at(soon)
    jobs._follow_interval(jobs.interval + 600)
    assert next_run(jobs) == soon  # brought forward before: kept
    jobs._run_mint_job_at(soon + timedelta(days=1))  # later: never pushes back
    assert next_run(jobs) == soon
