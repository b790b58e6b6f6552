"""A column matching any of a list of values, as one parameter where the database allows.

On PostgreSQL `column = ANY(:values)` binds the list as one array: the statement's text
is the same for any number of values, so psycopg caches and prepares it. An expanded
`IN (:v1, ..., :v100)` is new text and a hundred parameters, which psycopg re-splits in
Python on every execution (more than 50 parameters are never cached): about three
times the CPU for a group's 100 meters (measured on the DLMS door). SQLite has no
arrays and keeps the IN list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine


def any_of(
    column: ColumnElement[Any], name: str, element_type: TypeEngine[Any], dialect: str
) -> ColumnElement[bool]:
    """`column` equals one of the values bound as `name` (a list), for `dialect`."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(element_type)))
    return column.in_(bindparam(name, expanding=True))
