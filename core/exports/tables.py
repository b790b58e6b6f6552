"""The exportable tables: columns, access and the filtered statement for each.

A statement's first selected column is the table's id, which the CSV stream pages
on (keyset, newest first). Access is the viewer's, in SQL, as on screen: a prosumer
exports only their own readings, events and the certificates they hold; mints and
meters are for staff, users for admins.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from core.certificates.export import CSV_COLUMNS, csv_cells
from core.db.models import (
    CERTIFICATE_KINDS,
    Certificate,
    CertificateStatus,
    Event,
    Meter,
    MeterReading,
    MintBatch,
    User,
)
from core.device_attributes import Technology
from core.errors import NotFound
from core.units import format_kwh
from core.views._sql import require_admin, require_staff
from core.views.certificates import CertificateFilter, CertificateRow, certificates_statement
from core.views.events import events_statement
from core.views.filters import InvalidFilter, TableFilter
from core.views.readings import readings_statement


def _time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ExportTable:
    name: str
    header: tuple[str, ...]
    key: Any  # the id column the stream pages on
    statement: Callable[[User, TableFilter], Select[Any]]
    cells: Callable[[Sequence[Any]], list[str]]


def _readings(viewer: User, flt: TableFilter) -> Select[Any]:
    return readings_statement(viewer, flt)


def _reading_cells(row: Sequence[Any]) -> list[str]:
    return [
        str(row[0]), row[1], row[2], format_kwh(row[3], micro=True), _time(row[4]),
        _time(row[5]), row[6], _text(row[7]), _text(row[8]), _text(row[9]), _text(row[10]),
    ]  # fmt: skip


def _mints(viewer: User, flt: TableFilter) -> Select[Any]:
    require_staff(viewer)
    statement = select(
        MintBatch.id, MintBatch.kind, MintBatch.status, MintBatch.signature,
        MintBatch.total_readings, MintBatch.total_base_units, MintBatch.created_at,
        MintBatch.finished_at, MintBatch.error,
    ).where(MintBatch.kind.not_in(CERTIFICATE_KINDS))  # fmt: skip
    if flt.status:
        statement = statement.where(MintBatch.status == flt.status)
    if flt.since is not None:
        statement = statement.where(MintBatch.created_at >= flt.since)
    if flt.until is not None:
        statement = statement.where(MintBatch.created_at < flt.until)
    return statement


def _mint_cells(row: Sequence[Any]) -> list[str]:
    return [
        str(row[0]), row[1], row[2], _text(row[3]), str(row[4]), str(row[5]), _time(row[6]),
        _time(row[7]), _text(row[8]),
    ]  # fmt: skip


def _events(viewer: User, flt: TableFilter) -> Select[Any]:
    return events_statement(viewer, flt)


def _event_cells(row: Sequence[Any]) -> list[str]:

    payload = json.dumps(row[4], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return [str(row[0]), row[1], _time(row[2]), _text(row[3]), payload]


def _meters(viewer: User, flt: TableFilter) -> Select[Any]:
    require_staff(viewer)
    owner = aliased(User)
    statement = select(
        Meter.id, Meter.serial, owner.username, Meter.status, Meter.public_key,
        Meter.created_at, Meter.last_seen_at, Meter.technology, Meter.capacity_kw,
        Meter.country, Meter.grid_region, Meter.latitude, Meter.longitude,
        Meter.commissioning_date,
    ).join(owner, owner.id == Meter.owner_id)  # fmt: skip
    if flt.status:
        statement = statement.where(Meter.status == flt.status)
    if flt.user:
        statement = statement.where(owner.username == flt.user)
    if flt.meter:
        statement = statement.where(Meter.serial == flt.meter)
    return statement


def _meter_cells(row: Sequence[Any]) -> list[str]:
    return [str(row[0]), row[1], row[2], row[3], row[4], _time(row[5]), _time(row[6]),
            *(_text(value) for value in row[7:])]  # fmt: skip


def _users(viewer: User, flt: TableFilter) -> Select[Any]:
    require_admin(viewer)
    statement = select(
        User.id, User.username, User.role, User.wallet_address, User.disabled, User.created_at
    )
    if flt.role:
        statement = statement.where(User.role == flt.role)
    return statement


def _user_cells(row: Sequence[Any]) -> list[str]:
    return [str(row[0]), row[1], row[2], _text(row[3]), "true" if row[4] else "false",
            _time(row[5])]  # fmt: skip


def _one_of(name: str, value: str, allowed: type[Technology] | type[CertificateStatus]) -> str:
    if value and value not in {item.value for item in allowed}:
        raise InvalidFilter(f"{name}: {value!r} is not one of {', '.join(allowed)}", field=name)
    return value


def _certificates(viewer: User, flt: TableFilter) -> Select[Any]:
    """The Certificates page's registry: since/until bound the production hour, meter is
    the device, user the holder; a prosumer gets the certificates they hold."""
    return certificates_statement(
        viewer,
        CertificateFilter(
            meter_serial=flt.meter or None,
            hour_from=flt.since,
            hour_to=flt.until,
            technology=_one_of("technology", flt.technology, Technology) or None,
            grid_region=flt.region or None,
            status=_one_of("status", flt.status, CertificateStatus) or None,
            holder=flt.user or None,
        ),
    )


def _certificate_cells(row: Sequence[Any]) -> list[str]:
    return csv_cells(CertificateRow(*row))


TABLES: dict[str, ExportTable] = {
    table.name: table
    for table in (
        ExportTable(
            "readings",
            (
                "id",
                "meter_serial",
                "username",
                "kwh",
                "reading_timestamp",
                "submitted_at",
                "status",
                "token_base_units",
                "mint_tx_signature",
                "last_error",
                "review_reason",
            ),
            MeterReading.id,
            _readings,
            _reading_cells,
        ),
        ExportTable(
            "mints",
            (
                "batch_id",
                "kind",
                "status",
                "signature",
                "total_readings",
                "total_base_units",
                "created_at",
                "finished_at",
                "error",
            ),
            MintBatch.id,
            _mints,
            _mint_cells,
        ),
        ExportTable(
            "events",
            ("id", "type", "created_at", "user_id", "payload"),
            Event.id,
            _events,
            _event_cells,
        ),
        ExportTable(
            "meters",
            (
                "id",
                "serial",
                "owner",
                "status",
                "public_key",
                "created_at",
                "last_seen_at",
                "technology",
                "capacity_kw",
                "country",
                "grid_region",
                "latitude",
                "longitude",
                "commissioning_date",
            ),
            Meter.id,
            _meters,
            _meter_cells,
        ),
        ExportTable(
            "users",
            ("id", "username", "role", "wallet_address", "disabled", "created_at"),
            User.id,
            _users,
            _user_cells,
        ),
        ExportTable("certificates", CSV_COLUMNS, Certificate.id, _certificates, _certificate_cells),
    )
}


def export_table(name: str) -> ExportTable:
    table = TABLES.get(name)
    if table is None:
        raise NotFound(f"no table {name!r}; one of {', '.join(TABLES)}", field="table")
    return table
