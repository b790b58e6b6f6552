"""Certificates: list and filter, one with its history and signatures, transfer, retire,
cancel, approve, a faulty meter's period, the claims report, exports and the retirement
statement. A prosumer sees and acts on the certificates they hold only. Thin over core."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select

from api.csv_response import csv_stream_response, wants_csv
from api.deps import AdminUser, CurrentUser, ReadSessionDep, SessionDep, StateDep
from api.openapi import error_responses
from api.schemas import MAX_ID
from core.certificates.export import energytag_bundle
from core.certificates.lifecycle import (
    approve_certificate,
    cancel_certificate,
    cancel_meter_period,
    parse_claim,
    retire_certificate,
    transfer_certificate,
)
from core.certificates.statement import retirement_statement_html
from core.db.models import CertificateMint, CertificateStatus
from core.errors import NotFound
from core.views.certificates import (
    CertificateFilter,
    CertificateRow,
    certificate_history,
    certificates,
    claims_report,
)
from core.views.filters import TableFilter

router = APIRouter(tags=["certificates"])
_AUTH = ("unauthenticated", "forbidden")
CertificateId = Annotated[int, Path(ge=1, le=MAX_ID, description="a certificate id")]
EXPORT_LIMIT = 10_000


class TransferIn(BaseModel):
    to_username: str = Field(min_length=1, max_length=64)
    first_id: int | None = Field(None, ge=1, le=MAX_ID, description="split: first Wh id")
    last_id: int | None = Field(None, ge=1, le=MAX_ID, description="split: last Wh id")


class RetireIn(BaseModel):
    beneficiary: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=200)
    period_start: str = Field(description="consumption period, YYYY-MM-DD", max_length=10)
    period_end: str = Field(description="YYYY-MM-DD, inclusive", max_length=10)
    country: str = Field(description="ISO 3166-1 alpha-2 of the consumption", max_length=8)
    first_id: int | None = Field(None, ge=1, le=MAX_ID)
    last_id: int | None = Field(None, ge=1, le=MAX_ID)


class CancelIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class PeriodCancelIn(BaseModel):
    meter_serial: str = Field(min_length=1, max_length=64)
    start: AwareDatetime
    end: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


def _time(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else str(value)


def certificate_out(row: CertificateRow) -> dict[str, Any]:
    return {
        "id": row.id, "bundle_id": row.bundle_id, "status": row.status, "wh": row.wh,
        "first_id": row.first_id, "last_id": row.last_id, "holder": row.holder,
        "holder_wallet": row.holder_wallet, "meter_serial": row.meter_serial,
        "hour_start": _time(row.hour_start), "technology": row.technology,
        "capacity_kw": format(row.capacity_kw, "f"), "country": row.country,
        "grid_region": row.grid_region, "issue_signature": row.issue_signature,
        "beneficiary": row.beneficiary, "purpose": row.purpose,
        "period_start": _time(row.period_start), "period_end": _time(row.period_end),
        "claim_country": row.claim_country, "cancel_reason": row.cancel_reason,
        "created_at": _time(row.created_at), "finished_at": _time(row.finished_at),
    }  # fmt: skip


def _filter(
    meter_serial: str | None,
    hour_from: datetime | None,
    hour_to: datetime | None,
    technology: str | None,
    grid_region: str | None,
    status: CertificateStatus | None,
    holder: str | None,
) -> CertificateFilter:
    return CertificateFilter(
        meter_serial, hour_from, hour_to, technology, grid_region,
        status.value if status else None, holder,
    )  # fmt: skip


Serial = Annotated[str | None, Query(max_length=64)]
Text = Annotated[str | None, Query(max_length=64)]


@router.get(
    "/api/certificates",
    summary="List certificates (a prosumer: their own), newest first",
    description="format=json (default, paged), energytag (EnergyTag-style bundles) or csv.",
    responses={
        **error_responses(*_AUTH, "invalid_format"),
        200: {
            "description": "the page as JSON, the EnergyTag bundles, or CSV (format=csv)",
            "content": {
                "application/json": {},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
    },
)
def list_certificates(
    request: Request,
    viewer: CurrentUser,
    session: ReadSessionDep,
    state: StateDep,
    meter_serial: Serial = None,
    hour_from: AwareDatetime | None = None,
    hour_to: AwareDatetime | None = None,
    technology: Text = None,
    grid_region: Text = None,
    status: CertificateStatus | None = None,
    holder: Text = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    format: Annotated[str | None, Query(pattern="^(json|energytag|csv)$")] = None,
) -> Response:
    if wants_csv(request, format):  # streamed in pages, like every table's export
        session.close()
        flt = TableFilter(
            since=hour_from, until=hour_to, meter=meter_serial or "", user=holder or "",
            status=status.value if status else "", technology=technology or "",
            region=grid_region or "",
        )  # fmt: skip
        return csv_stream_response(state.core, "certificates", viewer, flt)
    format = format or "json"
    wanted = _filter(meter_serial, hour_from, hour_to, technology, grid_region, status, holder)
    if format == "json":
        rows, total = certificates(
            session, viewer, wanted, limit=page_size, offset=(page - 1) * page_size
        )
        body = {
            "certificates": [certificate_out(row) for row in rows],
            "total": total,
            "page": page,
            "page_size": page_size,
        }
        return JSONResponse(body)
    rows, _ = certificates(session, viewer, wanted, limit=EXPORT_LIMIT)
    mint = session.scalar(
        select(CertificateMint.address).order_by(CertificateMint.created_at.desc()).limit(1)
    )
    return JSONResponse([energytag_bundle(row, mint=mint) for row in rows])


@router.get(
    "/api/certificates/claims-report",
    summary="Retired Wh by beneficiary, purpose, country and consumption period",
    responses=error_responses(*_AUTH),
)
def claims(
    viewer: CurrentUser, session: ReadSessionDep, since: AwareDatetime | None = None
) -> dict:
    rows = claims_report(session, viewer, since=since)
    return {
        "claims": [
            {
                "beneficiary": r.beneficiary,
                "purpose": r.purpose,
                "country": r.country,
                "period_start": r.period_start.isoformat(),
                "period_end": r.period_end.isoformat(),
                "certificates": r.certificates,
                "wh": r.wh,
            }
            for r in rows
        ],
        "total_wh": sum(r.wh for r in rows),
    }


@router.get(
    "/api/certificates/{certificate_id}",
    summary="One certificate with the certificates it was split from and its chain operations",
    responses=error_responses(*_AUTH, "not_found"),
)
def one_certificate(
    certificate_id: CertificateId, viewer: CurrentUser, session: ReadSessionDep
) -> dict:
    history = certificate_history(session, viewer, certificate_id)
    if history is None:
        raise NotFound(f"no certificate {certificate_id}", field="certificate_id")
    return {
        **certificate_out(history.certificate),
        "split_from": history.ancestors,
        "history": [
            {
                "operation_id": op.operation_id,
                "action": op.action,
                "status": op.status,
                "signature": op.signature,
                "slot": op.slot,
                "error": op.error,
                "created_at": _time(op.created_at),
                "finished_at": _time(op.finished_at),
            }
            for op in history.operations
        ],
    }


def _accepted(session: SessionDep, viewer: CurrentUser, certificate_id: int) -> JSONResponse:
    history = certificate_history(session, viewer, certificate_id)
    assert history is not None
    return JSONResponse(certificate_out(history.certificate), status_code=202)


_MOVE_ERRORS = error_responses(*_AUTH, "not_found", "invalid_format", "certificate_not_active")


@router.post(
    "/api/certificates/{certificate_id}/transfer",
    status_code=202,
    summary="Transfer a certificate (or the Wh range first_id..last_id of it) to a prosumer",
    responses=_MOVE_ERRORS,
)
def transfer(
    certificate_id: CertificateId,
    body: TransferIn,
    viewer: CurrentUser,
    session: SessionDep,
    state: StateDep,
) -> JSONResponse:
    moved = transfer_certificate(
        session, certificate_id, body.to_username, viewer,
        now=state.now(), first_id=body.first_id, last_id=body.last_id,
    )  # fmt: skip
    return _accepted(session, viewer, moved.id)


@router.post(
    "/api/certificates/{certificate_id}/retire",
    status_code=202,
    summary="Retire (claim) a certificate or a Wh range of it; burned on chain",
    responses=_MOVE_ERRORS,
)
def retire(
    certificate_id: CertificateId,
    body: RetireIn,
    viewer: CurrentUser,
    session: SessionDep,
    state: StateDep,
) -> JSONResponse:
    claim = parse_claim(body.model_dump())
    moved = retire_certificate(
        session, certificate_id, claim, viewer,
        now=state.now(), first_id=body.first_id, last_id=body.last_id,
    )  # fmt: skip
    return _accepted(session, viewer, moved.id)


@router.post(
    "/api/certificates/{certificate_id}/cancel",
    status_code=202,
    summary="Cancel an active certificate (burned) or reject one in review (admin)",
    responses=_MOVE_ERRORS,
)
def cancel(
    certificate_id: CertificateId,
    body: CancelIn,
    admin: AdminUser,
    session: SessionDep,
    state: StateDep,
) -> JSONResponse:
    moved = cancel_certificate(session, certificate_id, body.reason, admin, now=state.now())
    return _accepted(session, admin, moved.id)


@router.post(
    "/api/certificates/{certificate_id}/approve",
    status_code=202,
    summary="Approve a certificate waiting in review: it is minted next cycle (admin)",
    responses=_MOVE_ERRORS,
)
def approve(
    certificate_id: CertificateId, admin: AdminUser, session: SessionDep, state: StateDep
) -> JSONResponse:
    moved = approve_certificate(session, certificate_id, admin, now=state.now())
    return _accepted(session, admin, moved.id)


@router.post(
    "/api/admin/certificates/cancel-period",
    summary="A faulty meter: cancel its unretired certificates of [start, end) (admin)",
    responses=error_responses(*_AUTH, "not_found", "invalid_format"),
)
def cancel_period(
    body: PeriodCancelIn, admin: AdminUser, session: SessionDep, state: StateDep
) -> dict:
    result = cancel_meter_period(
        session, body.meter_serial, body.start, body.end, body.reason, admin, now=state.now()
    )
    return {
        "cancelled": result.cancelled,
        "rejected": result.rejected,
        "retired_for_follow_up": result.retired,
        "in_flight": result.in_flight,
    }


@router.get(
    "/api/certificates/{certificate_id}/statement",
    summary="The retirement statement of a retired certificate, as a printable HTML page",
    response_class=HTMLResponse,
    responses=error_responses(*_AUTH, "not_found"),
)
def statement(
    certificate_id: CertificateId, viewer: CurrentUser, session: ReadSessionDep
) -> HTMLResponse:
    return HTMLResponse(retirement_statement_html(session, viewer, certificate_id))
