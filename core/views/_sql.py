"""SQL building blocks shared by the read models: time buckets, scoping by viewer.

Time buckets are integer seconds since the Unix epoch, floored to the bucket size,
so the same GROUP BY works on SQLite (timestamps stored as UTC text) and PostgreSQL
(timestamptz) and the grouping happens in the database, never in Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from core.db.models import Meter, ReadingStatus, Role, User
from core.errors import Forbidden

S = TypeVar("S", bound=Select[Any])


class epoch_seconds(FunctionElement[int]):
    """Whole seconds since 1970-01-01 UTC of a UtcDateTime column, on either database."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as naive UTC text ("2026-11-20 05:59:59.999999"), which both functions read
    # as UTC. They round fractions to milliseconds (05:59:59.9996 would become 06:00:00),
    # so the text is cut to whole seconds first. unixepoch() (SQLite 3.38+) costs half of
    # strftime('%s') per row, and charts aggregate many rows.
    column = f"substr({compiler.process(element.clauses, **kw)}, 1, 19)"
    version = getattr(compiler.dialect.dbapi, "sqlite_version_info", (0,))
    if version >= (3, 38):
        return f"unixepoch({column})"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # date_part() is double precision; EXTRACT() is numeric, measurably slower per row.
    column = compiler.process(element.clauses, **kw)
    return f"CAST(floor(date_part('epoch', {column})) AS BIGINT)"


def time_bucket(column: Any, bucket_secs: int) -> ColumnElement[int]:
    """The start of the `bucket_secs` bucket holding `column`, as epoch seconds."""
    # Integer division of integers truncates on both databases (epochs are positive).
    # The size is inlined, not bound: PostgreSQL matches a GROUP BY expression to the
    # selected one only when they are textually equal, and each bound value is a new $n.
    size = literal_column(str(int(bucket_secs)), BigInteger())
    return (
        epoch_seconds(column)
        .op("/", return_type=BigInteger())(size)
        .op("*", return_type=BigInteger())(size)
    )


def status_is(column: Any, status: ReadingStatus) -> ColumnElement[bool]:
    """`status = 'x'` written so SQLite can use the partial indexes on status.

    SQLite uses a partial index only when the query repeats the index's condition
    with the constant in sight (never behind a bound parameter), and it cannot infer
    `status <> 'minted'` from `status = 'review'`: that term is added explicitly.
    """
    equal = column == literal_column(f"'{status.value}'")
    if status == ReadingStatus.MINTED:
        return equal
    return and_(equal, status_is_not(column, ReadingStatus.MINTED))


def status_is_not(column: Any, status: ReadingStatus) -> ColumnElement[bool]:
    return column != literal_column(f"'{status.value}'")


def contains(column: Any, needle: str) -> ColumnElement[bool]:
    """`column` holds `needle`, any case, LIKE's wildcards taken as text; "" holds all."""
    text = needle.strip().lower()
    if not text:
        return true()
    return func.lower(column).contains(text, autoescape=True)


def serial_or_owner(needle: str) -> ColumnElement[bool]:
    """A meter whose serial or owner's username holds `needle` (the pages' search box).
    The owner by id, not a join: a count over the meters needs no users row."""
    if not needle.strip():
        return true()
    owners = select(User.id).where(contains(User.username, needle))
    return or_(contains(Meter.serial, needle), Meter.owner_id.in_(owners))


COUNT_CAP = 10_000  # a list's row count: exact up to here, "10,000+" beyond


def count_capped(session: Session, ids: Select[Any], cap: int = COUNT_CAP) -> int:
    """How many rows `ids` selects, counted up to `cap` + 1 (more than `cap`: "cap+").
    An exact count of a search over 100,000 meters reads all of them on every run."""
    bounded = ids.limit(cap + 1).subquery()
    return int(session.scalar(select(func.count()).select_from(bounded)) or 0)


def usernames(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """user id -> username for a page's owners: by primary key, after the page is
    chosen. Joining users first made PostgreSQL hash 100,000 of them per page."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows}


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def epoch_of(moment: datetime) -> int:
    """Whole seconds since the epoch, floored, by integer arithmetic (rollup buckets)."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Window:
    """A chart range: `buckets` buckets of `bucket_secs`, the last one holding `now`."""

    since: datetime
    until: datetime
    bucket_secs: int

    @classmethod
    def ending_at(cls, now: datetime, span_secs: int, bucket_secs: int) -> Window:
        last = int(now.timestamp()) // bucket_secs * bucket_secs
        count = max(1, span_secs // bucket_secs)
        since = from_epoch(last - (count - 1) * bucket_secs)
        return cls(since=since, until=from_epoch(last + bucket_secs), bucket_secs=bucket_secs)

    def starts(self) -> list[int]:
        """Every bucket start in the window, so empty buckets plot as zero, not as a gap."""
        first, end = int(self.since.timestamp()), int(self.until.timestamp())
        return list(range(first, end, self.bucket_secs))


def day_start(now: datetime) -> datetime:
    """Midnight UTC of `now`'s day: "today" on the dashboard is the UTC day."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def ago(now: datetime, seconds: int) -> datetime:
    return now - timedelta(seconds=seconds)


# --- who may see what -------------------------------------------------------------------


def is_staff(viewer: User) -> bool:
    return viewer.role in (Role.ADMIN, Role.OPERATOR)


def require_staff(viewer: User) -> None:
    """Operators and admins only; a prosumer asking is refused, not shown an empty page."""
    if not is_staff(viewer):
        raise Forbidden("operators and admins only")


def require_admin(viewer: User) -> None:
    if viewer.role != Role.ADMIN:
        raise Forbidden("admins only")


def scoped(statement: S, viewer: User, user_column: Any) -> S:
    """A prosumer sees only rows about them; staff see everything."""
    if is_staff(viewer):
        return statement
    return statement.where(user_column == viewer.id)
