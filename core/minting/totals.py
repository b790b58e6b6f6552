"""Running totals of minted GRX: reconciliation in constant time, audited by a full sum.

Every transaction that marks readings minted adds them to the one `mint_totals` row
(`add_minted`), so `running_minted` is one row read however many readings exist.
The row is updated in place (`SET base_units = base_units + :n`): two schedulers
confirming at once queue on its row lock for the rest of their short transactions,
and neither increment is lost. `audit` is the slower check the scheduler runs now and
then: the running total must equal the full SQL sum of minted readings plus what
`core.archive` moved out. Both are read by one statement, so one snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection, func, literal, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import MeterReading, MintTotal, ReadingStatus
from core.events import EventType, publish

log = logging.getLogger(__name__)
GRX = "grx"


def add_minted(session: Session, readings: int, base_units: int) -> None:
    """Count `readings` newly minted worth `base_units`, in the caller's transaction."""
    if readings == 0 and base_units == 0:
        return
    result = session.execute(
        update(MintTotal)
        .where(MintTotal.name == GRX)
        .values(
            readings=MintTotal.readings + readings,
            base_units=MintTotal.base_units + base_units,
        )
    )
    if result.rowcount == 0:  # a database migrated before any row existed cannot happen
        session.add(MintTotal(name=GRX, readings=readings, base_units=base_units))
        session.flush()


def add_archived(connection: Connection | Session, readings: int, base_units: int) -> None:
    """Count minted readings whose rows `core.archive` removes, in the transaction that
    removes them: the full sum audited below then still includes them."""
    if readings == 0 and base_units == 0:
        return
    connection.execute(
        update(MintTotal)
        .where(MintTotal.name == GRX)
        .values(
            archived_readings=MintTotal.archived_readings + readings,
            archived_base_units=MintTotal.archived_base_units + base_units,
        )
    )


def running_minted(session: Session) -> int:
    """Base units minted so far, from the running total (constant time)."""
    return int(session.scalar(select(MintTotal.base_units).where(MintTotal.name == GRX)) or 0)


@dataclass(frozen=True)
class TotalsAudit:
    running_readings: int
    running_base_units: int
    summed_readings: int  # minted rows in the table + archived ones
    summed_base_units: int

    @property
    def ok(self) -> bool:
        return (self.running_readings, self.running_base_units) == (
            self.summed_readings,
            self.summed_base_units,
        )


def full_sum_audit(session: Session) -> TotalsAudit:
    """The running total against the full sum, in one statement (one snapshot)."""
    minted = (
        select(
            func.count().label("n"),
            func.coalesce(func.sum(MeterReading.token_base_units), 0).label("units"),
        )
        .where(MeterReading.status == ReadingStatus.MINTED.value)
        .subquery()
    )
    total = select(MintTotal).where(MintTotal.name == GRX).subquery()
    row = session.execute(
        select(
            func.coalesce(total.c.readings, 0),
            func.coalesce(total.c.base_units, 0),
            minted.c.n + func.coalesce(total.c.archived_readings, 0),
            minted.c.units + func.coalesce(total.c.archived_base_units, 0),
        ).select_from(minted.outerjoin(total, literal(True)))
    ).one()
    return TotalsAudit(*(int(value) for value in row))


def audit(sessions: sessionmaker[Session]) -> TotalsAudit:
    """Check the running total; a difference is a reconcile_mismatch event, never silent."""
    with sessions() as session:
        result = full_sum_audit(session)
        if result.ok:
            return result
        log.error("RUNNING TOTAL MISMATCH: %s", result)
        publish(
            session,
            EventType.RECONCILE_MISMATCH,
            {
                "check": "running_total",
                "expected_supply": result.summed_base_units,  # minted, by the full sum
                "running_base_units": result.running_base_units,
                "running_readings": result.running_readings,
                "summed_readings": result.summed_readings,
            },
        )
        session.commit()
    return result
