"""What a table on screen is filtered by, as one value the page, its CSV export and the
API share, so a download holds exactly the rows the screen was filtered to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from core.errors import DomainError


class InvalidFilter(DomainError):
    code = "invalid_filter"  # 422, as every input the client can fix


@dataclass(frozen=True, slots=True)
class TableFilter:
    """Each table uses the fields that apply to it (docs/DASHBOARD.md "Exports")."""

    since: datetime | None = None
    until: datetime | None = None
    meter: str = ""  # a serial
    user: str = ""  # a username: the prosumer the rows are about
    status: str = ""
    types: tuple[str, ...] = field(default_factory=tuple)
    text: str = ""
    role: str = ""
    technology: str = ""  # a device technology (certificates)
    region: str = ""  # a grid region / bidding zone (certificates)

    def as_query(self) -> dict[str, str]:
        """The filter as query parameters (empty fields left out); parse_filter reads it back."""
        query: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, datetime):
                query[item.name] = value.astimezone(UTC).isoformat()
            elif isinstance(value, tuple):
                if value:
                    query[item.name] = ",".join(value)
            elif value:
                query[item.name] = str(value)
        return query


def _moment(name: str, text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidFilter(f"{name}: {text!r} is not an ISO 8601 time", field=name) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_filter(raw: Mapping[str, Any]) -> TableFilter:
    """A TableFilter from query parameters; an unknown or malformed one names its field."""
    known = {item.name for item in fields(TableFilter)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidFilter(f"unknown filter {unknown[0]!r}", field=unknown[0])
    text = {name: str(raw.get(name) or "").strip() for name in known}
    for name, value in text.items():
        if len(value) > 500:
            raise InvalidFilter(f"{name}: longer than 500 characters", field=name)
    return TableFilter(
        since=_moment("since", text["since"]),
        until=_moment("until", text["until"]),
        meter=text["meter"],
        user=text["user"],
        status=text["status"],
        types=tuple(part.strip() for part in text["types"].split(",") if part.strip()),
        text=text["text"],
        role=text["role"],
        technology=text["technology"],
        region=text["region"],
    )
