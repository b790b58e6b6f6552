"""Admin: gateways (head-end keys for a set of meters), like meter keys (beyond the contract).

Created with the meters they may submit for; their key is in the creating (or
rotating) answer only. Revoking stops the key for good.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.deps import AdminUser, ReadSessionDep, SessionDep, StaffUser
from api.openapi import error_responses
from api.schemas import SERIAL_REGEX
from api.serialize import rfc3339
from core.gateways import (
    GatewayView,
    IssuedGateway,
    assign_meters,
    create_gateway,
    list_gateways,
    revoke_gateway,
    rotate_gateway_key,
)

router = APIRouter(tags=["admin"])

_AUTH = ("unauthenticated", "forbidden")
NamePath = Annotated[str, Path(max_length=64, pattern=SERIAL_REGEX)]
Serials = Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=100_000)]


class GatewayCreate(BaseModel):
    name: str = Field(max_length=64, description="1-64 of A-Z a-z 0-9 . _ -")
    meters: Serials = Field(description="serials of the meters it may submit for")


class GatewayMeters(BaseModel):
    meters: Serials = Field(description="the gateway's meters from now on (replaces the set)")


class GatewayOut(BaseModel):
    name: str
    status: str
    meters: list[str]
    created_by: str
    created_at: str
    last_seen_at: str | None


class GatewayKey(BaseModel):
    name: str
    meters: list[str]
    api_key: str = Field(description="shown once; only its SHA-256 is stored")


def _out(view: GatewayView) -> GatewayOut:
    return GatewayOut(
        name=view.name,
        status=view.status,
        meters=list(view.meters),
        created_by=view.created_by,
        created_at=rfc3339(view.created_at) or "",
        last_seen_at=rfc3339(view.last_seen_at),
    )


def _view(session: SessionDep, name: str) -> GatewayView:
    return next(v for v in list_gateways(session) if v.name == name)


def _key_answer(session: SessionDep, issued: IssuedGateway) -> GatewayKey:
    """The one answer that carries a gateway's key (creating or rotating)."""
    view = _view(session, issued.gateway.name)
    return GatewayKey(name=view.name, meters=list(view.meters), api_key=issued.api_key)


@router.post(
    "/api/admin/gateways",
    status_code=201,
    response_model=GatewayKey,
    summary="Create a gateway for a set of meters; its API key is in this answer only",
    responses=error_responses(*_AUTH, "not_found", "conflict", "invalid_format"),
)
def create(body: GatewayCreate, admin: AdminUser, session: SessionDep) -> GatewayKey:
    return _key_answer(session, create_gateway(session, body.name, body.meters, by=admin.username))


@router.get(
    "/api/admin/gateways",
    response_model=list[GatewayOut],
    summary="List gateways with their meters, status and last contact",
    responses=error_responses(*_AUTH),
)
def listing(_staff: StaffUser, session: ReadSessionDep) -> list[GatewayOut]:
    return [_out(view) for view in list_gateways(session)]


@router.put(
    "/api/admin/gateways/{name}/meters",
    response_model=GatewayOut,
    summary="Assign the gateway's meters (replaces the set)",
    responses=error_responses(*_AUTH, "not_found", "invalid_format"),
)
def assign(name: NamePath, body: GatewayMeters, admin: AdminUser, session: SessionDep):
    gateway = assign_meters(session, name, body.meters, by=admin.username)
    return _out(_view(session, gateway.name))


@router.post(
    "/api/admin/gateways/{name}/rotate-key",
    response_model=GatewayKey,
    summary="Issue a new gateway key; the old one stops working at once",
    responses=error_responses(*_AUTH, "not_found", "conflict"),
)
def rotate(name: NamePath, admin: AdminUser, session: SessionDep) -> GatewayKey:
    return _key_answer(session, rotate_gateway_key(session, name, by=admin.username))


@router.post(
    "/api/admin/gateways/{name}/revoke",
    response_model=GatewayOut,
    summary="Revoke a gateway: its key stops working for good",
    responses=error_responses(*_AUTH, "not_found"),
)
def revoke(name: NamePath, admin: AdminUser, session: SessionDep) -> GatewayOut:
    gateway = revoke_gateway(session, name, by=admin.username)
    return _out(_view(session, gateway.name))
