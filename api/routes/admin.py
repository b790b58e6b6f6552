"""Admin: users and meters. Creating and changing needs an admin; listing meters, staff."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.csv_response import CSV_RESPONSE, csv_response, wants_csv
from api.deps import AdminUser, SessionDep, StaffUser, StateDep
from api.openapi import error_responses
from api.schemas import (
    SERIAL_REGEX,
    DeviceFields,
    DeviceUpdate,
    MeterCreate,
    MeterCreated,
    MeterEncryption,
    MeterOut,
    SessionsEnded,
    UserCreate,
    UserListItem,
    UserOut,
)
from api.serialize import rfc3339
from core.db.models import Meter, User
from core.device_attributes import FIELD_NAMES, certificate_blocker, shown
from core.device_keys import sealed_device_key, set_device_key
from core.meters import (
    RegisteredMeter,
    register_meter,
    rotate_meter_key,
    set_meter_status,
    update_device_attributes,
)
from core.sessions import end_user_sessions
from core.text import text_problem
from core.users import create_user, get_user, set_user_disabled
from core.views.filters import TableFilter

router = APIRouter(tags=["admin"])

_AUTH = ("unauthenticated", "forbidden")
FormatQuery = Annotated[
    Literal["json", "csv"] | None,
    Query(description="csv streams the list as CSV (as Accept: text/csv does)"),
]


def _clean_username(value: str) -> str:
    problem = text_problem(value, max_length=64)
    if problem:
        raise ValueError(problem)
    return value


UsernamePath = Annotated[
    str, Path(max_length=64, description="a username"), AfterValidator(_clean_username)
]
SerialPath = Annotated[str, Path(max_length=64, pattern=SERIAL_REGEX, description="a serial")]


def _user_item(user: User) -> UserListItem:
    return UserListItem(
        id=user.id,
        username=user.username,
        role=user.role,
        wallet_address=user.wallet_address,
        disabled=user.disabled,
    )


def _meter_out(meter: Meter, owner_username: str) -> MeterOut:
    return MeterOut(
        id=meter.id,
        serial=meter.serial,
        owner_username=owner_username,
        public_key=meter.public_key,
        status=meter.status,  # type: ignore[arg-type]
        created_at=rfc3339(meter.created_at) or "",
        last_seen_at=rfc3339(meter.last_seen_at),
        certificates_blocked=certificate_blocker(meter),
        **{name: shown(getattr(meter, name)) for name in FIELD_NAMES},
    )


def _device_values(body: DeviceFields, *, only_given: bool) -> dict[str, Any]:
    given = body.model_fields_set if only_given else set(FIELD_NAMES)
    return {name: getattr(body, name) for name in FIELD_NAMES if name in given}


@router.get(
    "/api/admin/config",
    summary="The effective tokenization rules: environment + overrides (beyond the contract)",
    description="Decimals are exact strings. Meters and the simulator read limits from here.",
    responses=error_responses(*_AUTH),
)
def effective_config(_staff: StaffUser, state: StateDep) -> dict[str, Any]:
    return state.core.config().model_dump(mode="json")


@router.post(
    "/api/admin/users",
    status_code=201,
    response_model=UserOut,
    summary="Create a user (a prosumer needs a base58 32-byte wallet address)",
    responses=error_responses(*_AUTH, "username_taken", "invalid_wallet", "invalid_format"),
)
def create_user_route(body: UserCreate, admin: AdminUser, session: SessionDep) -> UserOut:
    user = create_user(
        session, body.username, body.password, body.role, body.wallet_address, by=admin.username
    )
    return UserOut(
        id=user.id, username=user.username, role=user.role, wallet_address=user.wallet_address
    )


@router.get(
    "/api/admin/users",
    response_model=list[UserListItem],
    summary="List users (beyond the contract)",
    responses={**error_responses(*_AUTH), **CSV_RESPONSE},
)
async def list_users(
    request: Request, admin: AdminUser, state: StateDep, format: FormatQuery = None
) -> Any:
    if wants_csv(request, format):
        return await csv_response(state.core, "users", admin, TableFilter())
    return await run_in_threadpool(_users, state)


def _users(state: StateDep) -> list[UserListItem]:
    with state.read_session() as session:
        return [_user_item(user) for user in session.scalars(select(User).order_by(User.id))]


@router.post(
    "/api/admin/users/{username}/disable",
    response_model=UserListItem,
    summary="Disable a login; its sessions end at once (beyond the contract)",
    description="409 last_admin: the last enabled admin cannot be disabled.",
    responses=error_responses(*_AUTH, "not_found", "last_admin"),
)
def disable_user(
    username: UsernamePath, admin: AdminUser, session: SessionDep, state: StateDep
) -> UserListItem:
    user = set_user_disabled(session, username, True, by=admin.username, now=state.now())
    return _user_item(user)


@router.post(
    "/api/admin/users/{username}/enable",
    response_model=UserListItem,
    summary="Enable a disabled login; its old sessions stay ended (beyond the contract)",
    responses=error_responses(*_AUTH, "not_found"),
)
def enable_user(
    username: UsernamePath, admin: AdminUser, session: SessionDep, state: StateDep
) -> UserListItem:
    user = set_user_disabled(session, username, False, by=admin.username, now=state.now())
    return _user_item(user)


@router.post(
    "/api/admin/users/{username}/end-sessions",
    response_model=SessionsEnded,
    summary="End every session of a user: their tokens stop working (beyond the contract)",
    responses=error_responses(*_AUTH, "not_found"),
)
def end_sessions(
    username: UsernamePath, admin: AdminUser, session: SessionDep, state: StateDep
) -> SessionsEnded:
    user = get_user(session, username)
    ended = end_user_sessions(session, user, now=state.now(), by=admin.username)
    return SessionsEnded(username=user.username, ended=ended)


@router.post(
    "/api/admin/meters",
    status_code=201,
    response_model=MeterCreated,
    summary="Register a meter; its API key is in this answer only",
    responses=error_responses(
        *_AUTH, "not_found", "invalid_owner", "serial_taken", "invalid_format"
    ),
)
def create_meter(
    body: MeterCreate, admin: AdminUser, session: SessionDep, state: StateDep
) -> MeterCreated:
    registered = register_meter(
        session,
        body.serial,
        body.owner_username,
        body.public_key,
        by=admin.username,
        device=_device_values(body, only_given=False),
        reporting=body.reporting,
        enc_key=(
            sealed_device_key(state.core.device_key_wrap(), body.serial, body.aes_key)
            if body.aes_key
            else None
        ),
        encryption_required=body.encryption_required,
    )
    return _key_answer(registered, body.owner_username.strip())


@router.get(
    "/api/admin/meters",
    response_model=list[MeterOut],
    summary="List meters with status and last contact (beyond the contract)",
    responses={**error_responses(*_AUTH), **CSV_RESPONSE},
)
async def list_meters(
    request: Request, staff: StaffUser, state: StateDep, format: FormatQuery = None
) -> Any:
    if wants_csv(request, format):
        return await csv_response(state.core, "meters", staff, TableFilter())
    return await run_in_threadpool(_meters, state)


def _meters(state: StateDep) -> list[MeterOut]:
    with state.read_session() as session:
        rows = session.execute(
            select(Meter, User.username).join(User, User.id == Meter.owner_id).order_by(Meter.id)
        )
        return [_meter_out(meter, owner) for meter, owner in rows]


def _key_answer(registered: RegisteredMeter, owner_username: str) -> MeterCreated:
    """The one answer that carries a meter's API key (registering or rotating)."""
    meter = registered.meter
    return MeterCreated(
        id=meter.id, serial=meter.serial, owner_username=owner_username, api_key=registered.api_key
    )


def _owner_name(session: SessionDep, meter: Meter) -> str:
    return session.scalar(select(User.username).where(User.id == meter.owner_id)) or ""


@router.post(
    "/api/admin/meters/{serial}/suspend",
    response_model=MeterOut,
    summary="Suspend a meter: its submissions get 403 meter_suspended (beyond the contract)",
    responses=error_responses(*_AUTH, "not_found"),
)
def suspend(serial: SerialPath, admin: AdminUser, session: SessionDep) -> MeterOut:
    meter = set_meter_status(session, serial, "suspended", by=admin.username)
    return _meter_out(meter, _owner_name(session, meter))


@router.post(
    "/api/admin/meters/{serial}/resume",
    response_model=MeterOut,
    summary="Resume a suspended meter (beyond the contract)",
    responses=error_responses(*_AUTH, "not_found"),
)
def resume(serial: SerialPath, admin: AdminUser, session: SessionDep) -> MeterOut:
    meter = set_meter_status(session, serial, "active", by=admin.username)
    return _meter_out(meter, _owner_name(session, meter))


@router.patch(
    "/api/admin/meters/{serial}/device",
    response_model=MeterOut,
    summary="Set or clear registry fields, audited as meter_changed (beyond the contract)",
    description="Only the fields in the body change; null or empty clears one.",
    responses=error_responses(*_AUTH, "not_found", "invalid_format"),
)
def update_device(
    serial: SerialPath, body: DeviceUpdate, admin: AdminUser, session: SessionDep
) -> MeterOut:
    meter = update_device_attributes(
        session, serial, _device_values(body, only_given=True), by=admin.username
    )
    return _meter_out(meter, _owner_name(session, meter))


@router.post(
    "/api/admin/meters/{serial}/rotate-key",
    response_model=MeterCreated,
    summary="Issue a new API key; the old one stops working at once (beyond the contract)",
    responses=error_responses(*_AUTH, "not_found"),
)
def rotate_key(serial: SerialPath, admin: AdminUser, session: SessionDep) -> MeterCreated:
    registered = rotate_meter_key(session, serial, by=admin.username)
    return _key_answer(registered, _owner_name(session, registered.meter))


@router.put(
    "/api/admin/meters/{serial}/encryption",
    status_code=204,
    summary="Set (or remove) a meter's dlms-enc AES key and whether plaintext is refused",
    description="The key is stored sealed with DATA_DIR's wrapping key and never shown again.",
    responses=error_responses(*_AUTH, "not_found", "invalid_format"),
)
def set_encryption(
    serial: SerialPath,
    body: MeterEncryption,
    admin: AdminUser,
    session: SessionDep,
    state: StateDep,
) -> None:
    set_device_key(
        session,
        serial,
        body.aes_key,
        state.core.device_key_wrap(),
        required=body.required,
        by=admin.username,
    )
