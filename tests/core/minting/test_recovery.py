"""Recovery after a crash between planning and signing, fast and without a chain.

A scheduler that died after claiming leaves planned batches whose readings are
`minting`. The next pipeline must release the stale ones (older than
STALE_PLANNED) and leave a young one alone: it may belong to a live scheduler.
Nothing planned was ever signed, so no chain is needed; the client points at a
closed port and would fail the test if recovery tried to use it.
"""

from __future__ import annotations

from datetime import timedelta

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.chain.client import ChainClient
from core.chain.factories import SplMintTo
from core.chain.instructions import TOKEN_PROGRAM_ID
from core.config import TokenizationConfig
from core.db.models import MeterReading, MintBatch
from core.minting.claim import claim_pending
from core.minting.pipeline import STALE_PLANNED, CycleReport, MintPipeline, MintTarget
from tests.support.seed import T0, seed_producers, seed_readings

CRASH = T0 + timedelta(days=2)


def restarted(sessions: sessionmaker[Session], *, after: timedelta) -> MintPipeline:
    authority = Keypair.from_seed(b"\x03" * 32)
    factory = SplMintTo(Pubkey.from_bytes(b"\x04" * 32), authority.pubkey(), TOKEN_PROGRAM_ID, 9)
    target = MintTarget(ChainClient("http://127.0.0.1:9", timeout=0.5), authority, factory)
    return MintPipeline(sessions, lambda: TokenizationConfig(), target, clock=lambda: CRASH + after)


def crash_after_planning(session: Session) -> list[int]:
    producers = seed_producers(session, 3)
    seed_readings(session, producers, 2)
    batches = claim_pending(session, TokenizationConfig(), now=CRASH, wallets_per_transaction=2)
    return [batch.id for batch in batches]


def state(session: Session) -> tuple[dict[str, int], dict[str, int], int]:
    session.expire_all()
    readings = dict(
        session.execute(
            select(MeterReading.status, func.count()).group_by(MeterReading.status)
        ).all()
    )
    batches = dict(
        session.execute(select(MintBatch.status, func.count()).group_by(MintBatch.status)).all()
    )
    tied = session.scalar(select(func.count()).where(MeterReading.mint_batch_id.is_not(None)))
    return readings, batches, int(tied or 0)


def test_stale_planned_batches_are_released_on_restart(sessions) -> None:
    assert timedelta(seconds=30) == STALE_PLANNED
    with sessions() as session:
        ids = crash_after_planning(session)
        assert len(ids) == 2 and state(session) == ({"minting": 6}, {"planned": 2}, 6)
    report = CycleReport()
    restarted(sessions, after=STALE_PLANNED + timedelta(seconds=1)).recover(
        report, release_all_planned=False
    )
    assert (report.released, report.errors, report.unresolved) == (2, [], 0)
    with sessions() as session:
        assert state(session) == ({"pending": 6}, {"expired": 2}, 0)
        for batch_id in ids:
            batch = session.get(MintBatch, batch_id)
            assert (batch.error, batch.finished_at) == (
                "released: never signed",
                CRASH + STALE_PLANNED + timedelta(seconds=1),
            )
        # Released readings are due again at once: the next claim takes all six.
        again = claim_pending(session, TokenizationConfig(), now=CRASH, wallets_per_transaction=2)
        assert sum(len(batch.reading_ids) for batch in again) == 6


def test_a_young_planned_batch_is_left_to_its_scheduler(sessions) -> None:
    with sessions() as session:
        crash_after_planning(session)
    report = CycleReport()
    restarted(sessions, after=STALE_PLANNED).recover(report, release_all_planned=False)
    assert report.released == 0
    with sessions() as session:
        assert state(session) == ({"minting": 6}, {"planned": 2}, 6)
    # At startup nothing can be in progress elsewhere in this process: release everything.
    restarted(sessions, after=timedelta(seconds=1)).recover(report, release_all_planned=True)
    assert report.released == 2
    with sessions() as session:
        assert state(session) == ({"pending": 6}, {"expired": 2}, 0)
