"""A rollup (and the fleet's flow) never disagrees with its rows: random interleavings
of accept, review, claim, sign, confirm, fail, expire, release, hold, retry, fold and
writes outside the use cases, each followed by the
rollups (both levels, folded rows plus pending deltas) compared with an oracle that
sums the raw rows in Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.config import TokenizationConfig
from core.db.models import (
    ROLLUP_MEASURES,
    Meter,
    MeterReading,
    MintBatch,
    MintedLatency,
    ReadingFlow,
    ReadingFlowDelta,
    ReadingStatus,
    User,
)
from core.minting import states
from core.minting.claim import claim_pending
from core.minting.requests import retry_failed_readings
from core.readings.writes import insert_many
from core.review import approve_reading, reject_reading
from core.rollups import DAY, FIFTEEN_MINUTES, Level, fold_deltas, rollup_rows
from core.rollups.rebuild import rebuild_rollups
from core.rollups.since import per_meter_since
from core.views import Split
from core.views._sql import Window
from core.views.readings import energy_series
from tests.support.seed import T0, seed_producers

NOW = T0 + timedelta(days=3)
CFG = TokenizationConfig.model_validate(
    {**TokenizationConfig().model_dump(), "max_retries": 1, "retry_base_secs": 1, "batch_size": 5}
)
OPS = ["accept", "accept", "claim", "settle", "settle", "retry", "review", "fold", "rewrite"]


def oracle(session: Session, level: Level) -> dict[tuple, tuple[int, ...]]:
    """Sums of the raw rows per key, computed here, not by the database's rollup code."""
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(ROLLUP_MEASURES))
    statuses = list(ReadingStatus)
    for row in session.execute(
        select(
            MeterReading.reading_timestamp,
            MeterReading.meter_id,
            MeterReading.user_id,
            MeterReading.wallet_address,
            MeterReading.status,
            MeterReading.kwh_micro,
            MeterReading.token_base_units,
        )
    ):
        at, meter, user, wallet, status, kwh, units = row
        epoch = int((at - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
        bucket = epoch - epoch % level.bucket_secs
        sums = totals[(bucket, meter, user, wallet or "")]
        index = statuses.index(ReadingStatus(status))
        sums[index] += 1
        sums[len(statuses) + index] += kwh
        if status == ReadingStatus.MINTED:
            sums[-1] += units or 0
    return {key: tuple(sums) for key, sums in totals.items()}


def rolled_up(session: Session, level: Level) -> dict[tuple, tuple[int, ...]]:
    rows = rollup_rows(level)
    key = (rows.c.bucket, rows.c.meter_id, rows.c.user_id, rows.c.wallet)
    found = session.execute(
        select(*key, *(func.sum(rows.c[name]) for name in ROLLUP_MEASURES)).group_by(*key)
    )
    result = {}
    for bucket, meter, user, wallet, *sums in found:
        if any(sums):  # a key whose readings all moved away sums to zero
            result[(int(bucket), meter, user, wallet)] = tuple(int(value) for value in sums)
    return result


def flow_oracle(session: Session) -> dict[tuple, tuple[int, int, int]]:
    """The fleet's flow (core.rollups.flow) summed from the rows here: per axis and 15
    minutes, readings, rejected and micro-kWh; and the minted latency histogram."""
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for row in session.execute(
        select(
            MeterReading.reading_timestamp,
            MeterReading.submitted_at,
            MeterReading.minted_at,
            MeterReading.status,
            MeterReading.kwh_micro,
        )
    ):
        *stamps, status, kwh = row
        seconds = [
            None if at is None else int((at - epoch) // timedelta(seconds=1)) for at in stamps
        ]
        for axis, at in zip(("reading", "submitted", "minted"), seconds, strict=True):
            if at is not None:
                sums = totals[(axis, at - at % 900)]
                sums[0] += 1
                sums[1] += status == ReadingStatus.REJECTED
                sums[2] += kwh
        if seconds[2] is not None:
            totals[("latency", seconds[2] - seconds[2] % 900, seconds[2] - seconds[1])][0] += 1
    return {key: tuple(sums) for key, sums in totals.items() if any(sums)}


def flow_kept(session: Session) -> dict[tuple, tuple[int, int, int]]:
    result: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for table in (ReadingFlow, ReadingFlowDelta):
        for axis, bucket, n, rejected, kwh in session.execute(
            select(table.axis, table.bucket, table.readings, table.rejected, table.kwh_micro)
        ):
            sums = result[(axis, int(bucket))]
            sums[0] += n
            sums[1] += rejected
            sums[2] += kwh
    for bucket, latency, n in session.execute(
        select(MintedLatency.bucket, MintedLatency.latency_secs, MintedLatency.readings)
    ):
        result[("latency", int(bucket), int(latency))][0] += n
    return {key: tuple(sums) for key, sums in result.items() if any(sums)}


class World:
    """The database, the clock and what the operations need to find their next target."""

    def __init__(self, sessions, engine) -> None:
        self.sessions, self.engine = sessions, engine
        self.now = NOW
        self.instants = count()
        with sessions() as session:
            self.producers = seed_producers(session, 4)
            session.add(User(username="root", role="admin", password_hash="-"))
            session.commit()

    def admin(self, session: Session) -> User:
        return session.scalars(select(User).where(User.username == "root")).one()

    def apply(self, op: str, choice: int) -> None:
        self.now += timedelta(seconds=7)
        with self.sessions() as session:
            getattr(self, op)(session, choice)

    def accept(self, session: Session, choice: int) -> None:
        rows = []
        for index, producer in enumerate(self.producers[: 1 + choice % 4]):
            step = next(self.instants)
            rows.append(
                {
                    "meter_id": producer.meter_id,
                    "user_id": producer.user_id,
                    # every other reading without a wallet key field: None is keyed as ''
                    "wallet_address": producer.wallet if (step + index) % 5 else None,
                    "kwh_micro": 1 + (step * 7_919 + choice) % 3_000_000,
                    "reading_timestamp": T0 + timedelta(minutes=5 * step),
                    "submitted_at": self.now,
                    "status": "review" if (step + choice) % 4 == 0 else "pending",
                    "meter_signature": "-",
                    "attempts": 0,
                    "review_reason": None,
                }
            )
        insert_many(session, rows)
        session.commit()

    def claim(self, session: Session, choice: int) -> None:
        claim_pending(session, CFG, now=self.now, wallets_per_transaction=1 + choice % 3)

    def settle(self, session: Session, choice: int) -> None:
        planned = session.scalars(
            select(MintBatch.id).where(MintBatch.status == "planned").order_by(MintBatch.id)
        ).all()
        signed = session.scalars(
            select(MintBatch.id).where(MintBatch.status == "signed").order_by(MintBatch.id)
        ).all()
        if planned and choice % 4 == 0:
            states.release_planned(session, planned[0], reason="test", now=self.now)
        elif planned and choice % 4 == 1:
            batch = session.get(MintBatch, planned[0])
            wallet = session.scalars(
                select(MeterReading.wallet_address).where(MeterReading.mint_batch_id == batch.id)
            ).first()
            states.hold_wallets(
                session, batch.id, [wallet], reason="no account", until=self.now, now=self.now
            )
        elif planned:
            signature = f"sig-{planned[0]}-{choice}"
            states.mark_signed_many(
                session, [states.SignedBatch(planned[0], signature, b"r", "h", 9)], now=self.now
            )
        elif signed:
            outcome = choice % 3
            if outcome == 0:
                states.mark_confirmed(session, signed[0], slot=1, now=self.now)
            elif outcome == 1:
                states.mark_failed(session, signed[0], error="Custom(1)", config=CFG, now=self.now)
            else:
                states.mark_expired(session, signed[0], now=self.now)

    def retry(self, session: Session, choice: int) -> None:
        retry_failed_readings(session, self.admin(session))

    def review(self, session: Session, choice: int) -> None:
        waiting = session.scalars(
            select(MeterReading.id).where(MeterReading.status == "review").order_by(MeterReading.id)
        ).first()
        if waiting is None:
            return
        if choice % 2:
            approve_reading(session, waiting, self.admin(session))
        else:
            reject_reading(session, waiting, self.admin(session), "implausible")

    def rewrite(self, session: Session, choice: int) -> None:
        """A write outside the use cases (a data fix): the triggers must see it too."""
        session.execute(
            update(MeterReading)
            .where(MeterReading.id % 6 == choice % 6)
            .values(
                kwh_micro=MeterReading.kwh_micro + 1 + choice,
                token_base_units=func.coalesce(MeterReading.token_base_units, 0) + choice,
            )
        )
        moved = session.scalars(select(MeterReading).order_by(MeterReading.id.desc())).first()
        if moved is not None and choice % 3 == 0:  # into another bucket, one ORM flush
            moved.reading_timestamp = T0 - timedelta(days=2, minutes=5 * next(self.instants))
        session.commit()

    def fold(self, session: Session, choice: int) -> None:
        fold_deltas(self.engine, chunk=1 + choice % 7)  # small chunks: a fold may stop midway

    def check(self) -> None:
        with self.sessions() as session:
            for level in (FIFTEEN_MINUTES, DAY):
                expected = {k: v for k, v in oracle(session, level).items() if any(v)}
                assert rolled_up(session, level) == expected, level.table.name
            assert flow_kept(session) == flow_oracle(session)


@pytest.fixture
def world(sessions, engine) -> World:
    return World(sessions, engine)


@settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 11)), min_size=1, max_size=10))
def test_a_rollup_never_disagrees_with_its_rows(world: World, steps) -> None:
    # One database across examples: the invariant holds in every state, and each example
    # goes on from where the last left it, so late examples see long histories.
    for op, choice in steps:
        world.apply(op, choice)
        world.check()


def test_the_interleavings_reach_every_status(world: World) -> None:
    """The property above is only as good as the states its operations reach."""
    for round_ in range(6):
        for op in ("accept", "review", "claim", "settle", "settle", "settle", "retry", "review"):
            world.apply(op, round_ + 1)
        world.apply("rewrite", round_)  # minted readings rewritten too, once some exist
        world.check()
        world.apply("fold", 6)
        world.check()
    with world.sessions() as session:
        seen = set(session.scalars(select(MeterReading.status).distinct()))
    assert {"pending", "minted", "rejected"} <= seen
    world.check()
    with world.sessions() as session:  # per meter from any instant, against the rows
        stamps = session.execute(
            select(MeterReading.meter_id, MeterReading.reading_timestamp, MeterReading.kwh_micro)
        ).all()
        for minutes in (-3_000, 0, 7, 15, 61, 1_447, 2_881):
            since = T0 + timedelta(minutes=minutes, microseconds=minutes % 2)
            expected: dict[int, list[int]] = defaultdict(lambda: [0, 0])
            for meter, at, kwh in stamps:
                if at >= since:
                    expected[meter][0] += 1
                    expected[meter][1] += kwh
            assert per_meter_since(session, since) == {m: tuple(v) for m, v in expected.items()}
    with world.sessions() as session:  # the live chart's daily series, against the rows
        window = Window(
            since=T0 - timedelta(days=3), until=T0 + timedelta(days=2), bucket_secs=86_400
        )
        points = energy_series(session, world.admin(session), window, Split.METER)
        got = {(p.series, p.bucket_start): (p.kwh_micro, p.readings) for p in points if p.readings}
        serials = dict(session.execute(select(Meter.id, Meter.serial)).all())
        expected_days: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for meter, at, kwh in stamps:
            if window.since <= at < window.until:
                day = at.replace(hour=0, minute=0, second=0, microsecond=0)
                expected_days[(serials[meter], day)][0] += kwh
                expected_days[(serials[meter], day)][1] += 1
        assert got == {key: tuple(value) for key, value in expected_days.items()} != {}
    with world.sessions() as session:  # a rebuild from the rows gives what triggers kept
        kept = {level: rolled_up(session, level) for level in (FIFTEEN_MINUTES, DAY)}
        flow = flow_kept(session)
        rebuild_rollups(session.connection())
        session.commit()
        assert {level: rolled_up(session, level) for level in kept} == kept
        assert flow_kept(session) == flow != {}
