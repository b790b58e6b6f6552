"""Staff: a meter's settlement intervals (net ≤ 0 included) and its data-quality flags."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import ReadSessionDep, StaffUser, StateDep
from api.openapi import error_responses
from api.schemas import SERIAL_REGEX
from api.serialize import rfc3339
from core.meter_health import meter_health
from core.settlement.queries import recent_intervals
from core.units import format_kwh

router = APIRouter(tags=["admin"])

SerialPath = Annotated[str, Path(max_length=64, pattern=SERIAL_REGEX)]


def _kwh(micro: int) -> str:
    return format_kwh(micro, micro=True)


@router.get(
    "/api/admin/meters/{serial}/intervals",
    summary="A meter's settlement intervals, newest first (net ≤ 0 shown, never minted)",
    responses=error_responses("unauthenticated", "forbidden", "not_found"),
)
def intervals(
    serial: SerialPath,
    _staff: StaffUser,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 96,
) -> list[dict[str, Any]]:
    return [
        {
            "interval_start": rfc3339(v.interval_start),
            "interval_end": rfc3339(v.interval_end),
            "status": v.status,
            "samples": v.sample_count,
            "net_kwh": _kwh(v.net_micro),
            "generated_kwh": _kwh(v.generated_micro),
            "consumed_kwh": _kwh(v.consumed_micro),
            "settled_kwh": _kwh(v.settled_micro),
            "closed_by": v.closed_by,
            "closed_at": rfc3339(v.closed_at),
        }
        for v in recent_intervals(session, serial, limit)
    ]


@router.get(
    "/api/admin/meters/{serial}/health",
    summary="A meter's data quality: flags with their evidence (docs/API.md)",
    description=(
        "Flags: missing_intervals, register_reset, clock_ahead, bad_signatures, each with "
        "the evidence that raised it, over the last `hours` (default 24). healthy: no flag."
    ),
    responses=error_responses("unauthenticated", "forbidden", "not_found"),
)
def health(
    serial: SerialPath,
    _staff: StaffUser,
    session: ReadSessionDep,
    state: StateDep,
    hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24,
) -> dict[str, Any]:
    report = meter_health(session, serial, state.config(), state.now(), hours)
    return {
        "meter_serial": report.serial,
        "healthy": report.healthy,
        "window_from": rfc3339(report.window_from),
        "window_to": rfc3339(report.window_to),
        "flags": [{"flag": f.name, "evidence": f.evidence} for f in report.flags],
    }
