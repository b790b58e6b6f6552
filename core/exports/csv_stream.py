"""Any exportable table as CSV, read in keyset pages so memory stays one page deep.

Each page is its own short read-only transaction (`id < last id of the previous
page`, newest first), so an export of a million rows holds neither a million rows
nor a long transaction: on SQLite the scheduler and the API keep writing meanwhile.
Rows written after the export started have higher ids than its first page and are
left out; rows are never repeated or skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.db.models import User
from core.errors import Forbidden
from core.exports.tables import ExportTable
from core.views import read_session
from core.views.filters import TableFilter

PAGE_SIZE = 5_000


def check_access(engine: Engine, table: ExportTable, user_id: int, flt: TableFilter) -> None:
    """Raise (Forbidden, InvalidFilter) before a response starts, not in its middle."""
    with read_session(engine) as session:
        table.statement(_viewer(session, user_id), flt)


def _viewer(session: Session, user_id: int) -> User:
    """Re-read per page: a user disabled mid-export stops getting rows."""
    user = session.get(User, user_id)
    if user is None or user.disabled:
        raise Forbidden("this account is disabled or no longer exists")
    return user


# A cell starting with one of these is a formula to a spreadsheet: a username or an error
# text a client chose must not run when an operator opens the file (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(cell: str) -> str:
    if cell.startswith(_FORMULA_START) and not _is_number(cell):
        return "'" + cell
    return cell


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([safe_cell(cell) for cell in cells])
    return buffer.getvalue()


def stream_csv(
    engine: Engine,
    table: ExportTable,
    user_id: int,
    flt: TableFilter,
    *,
    page_size: int = PAGE_SIZE,
) -> Iterator[bytes]:
    """The header, then one chunk of CSV bytes per page of rows, newest first."""
    yield _line(list(table.header)).encode()
    last: int | None = None
    while True:
        with read_session(engine) as session:
            statement = table.statement(_viewer(session, user_id), flt)
            if last is not None:
                statement = statement.where(table.key < last)
            rows = session.execute(statement.order_by(table.key.desc()).limit(page_size)).all()
        if not rows:
            return
        yield "".join(_line(table.cells(row)) for row in rows).encode()
        if len(rows) < page_size:
            return
        last = rows[-1][0]
