"""Payload models named by role (`ReadingIn`, `ReadingOut`, `MeterCreate`, ...).

The ingest bodies (`ReadingIn`, `BatchIn`) document the schema only: those bodies
are parsed by hand with `parse_float=JsonNumber` so a JSON number like 2.01 never
passes through float (core.readings.rules does the validation).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api import examples as ex
from core.meters import SERIAL_PATTERN
from core.text import text_problem

MAX_ID = 2**63 - 1  # ids are 64-bit on both databases; anything larger cannot exist
SERIAL_REGEX = SERIAL_PATTERN.pattern
# The amount grammar (core.units): ASCII digits, optionally a point and 1-6 decimals.
KWH_REGEX = r"^[0-9]+(\.[0-9]{1,6})?$"


def _clean(max_length: int) -> AfterValidator:
    def check(value: str) -> str:
        problem = text_problem(value, max_length=max_length)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def _text(max_length: int) -> Any:
    """A string of 1 to `max_length` characters, without NUL, controls or lone surrogates."""
    return Annotated[str, Field(min_length=1, max_length=max_length), _clean(max_length)]


Username = _text(64)
Password = _text(256)
ShortText = _text(64)


def _example(value: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [value]})


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    existing_reading_id: int | None = Field(None, description="duplicate_reading only")
    limit: int | None = Field(None, description="rate_limited: tokens regained per minute")
    burst: int | None = Field(None, description="rate_limited: most tokens held at once")
    remaining: int | None = Field(None, description="rate_limited: whole tokens held now")
    retry_after: int | None = Field(
        None, description="rate_limited: seconds until the request fits (as Retry-After)"
    )


class ErrorOut(BaseModel):
    error: ErrorDetail


class LoginIn(BaseModel):
    model_config = _example({"username": "operator", "password": "a-long-password"})
    username: Username
    password: Password


class TokenOut(BaseModel):
    model_config = _example(
        {
            "access_token": "eyJhbGciOi...",
            "token_type": "bearer",
            "role": "admin",
            "expires_in": 28800,
        }
    )
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    role: str
    expires_in: int = Field(
        description="seconds until the session ends (SESSION_MAX_HOURS); it may be ended sooner"
    )


class PasswordChange(BaseModel):
    model_config = _example(
        {"current_password": "a-long-password", "new_password": "another-long-password"}
    )
    current_password: Password
    new_password: Password


class SessionsEnded(BaseModel):
    username: str
    ended: int = Field(description="live sessions that were ended")


class UserCreate(BaseModel):
    model_config = _example(
        {
            "username": "alice",
            "password": "a-long-password",
            "role": "prosumer",
            "wallet_address": ex.EXAMPLE_WALLET,
        }
    )
    username: Username
    password: Password
    role: Literal["admin", "operator", "prosumer"]
    wallet_address: ShortText | None = Field(None, description="required for a prosumer")


class UserOut(BaseModel):
    model_config = _example(
        {"id": 3, "username": "alice", "role": "prosumer", "wallet_address": ex.EXAMPLE_WALLET}
    )
    id: int
    username: str
    role: str
    wallet_address: str | None


class UserListItem(UserOut):
    disabled: bool


DecimalText = Annotated[
    str | int,
    Field(description='an exact decimal as a string ("5.5") or an integer; never a float'),
]


class DeviceFields(BaseModel):
    """The registry fields of a meter (core.device_attributes checks them)."""

    technology: str | None = Field(
        None,
        description="solar_pv, wind, hydro, battery, biomass, geothermal, marine or other",
        max_length=16,
    )
    capacity_kw: DecimalText | None = Field(None, description="rated capacity in kW, to the W")
    country: str | None = Field(None, description="ISO 3166-1 alpha-2, e.g. TH", max_length=8)
    grid_region: str | None = Field(
        None, description="bidding zone code, e.g. TH-PEA, DE-LU, SE3", max_length=64
    )
    latitude: DecimalText | None = Field(None, description="-90..90, up to 6 decimals")
    longitude: DecimalText | None = Field(None, description="-180..180, up to 6 decimals")
    commissioning_date: str | None = Field(None, description="YYYY-MM-DD", max_length=32)


class DeviceUpdate(DeviceFields):
    """Only the fields present change; a null or empty value clears one."""

    model_config = _example({"technology": "solar_pv", "capacity_kw": "5.5", "country": "TH"})


class MeterCreate(DeviceFields):
    model_config = _example(
        {
            "serial": ex.EXAMPLE_SERIAL,
            "owner_username": "alice",
            "public_key": ex.EXAMPLE_PUBLIC_KEY,
        }
    )
    serial: ShortText = Field(
        description="1-64 of A-Z a-z 0-9 . _ - (no ':')", pattern=SERIAL_REGEX
    )
    owner_username: ShortText = Field(description="an enabled prosumer with a wallet")
    public_key: ShortText = Field(
        description="ed25519 public key (32 bytes): base58, or 64 hex characters"
    )
    reporting: Literal["tick_energy", "cumulative_registers"] = Field(
        "tick_energy",
        description=(
            "GridTokenX telemetry: import/export registers hold each tick's own energy "
            "(tick_energy, their simulator) or running counters (cumulative_registers)"
        ),
    )
    aes_key: str | None = Field(
        None,
        min_length=64,
        max_length=64,
        pattern="^[0-9A-Fa-f]{64}$",
        description="its dlms-enc AES-256 key, 64 hex; stored sealed, never shown again",
    )
    encryption_required: bool = Field(
        False, description="refuse its plaintext GridTokenX frames (426); needs aes_key"
    )


class MeterCreated(BaseModel):
    model_config = _example(
        {
            "id": 7,
            "serial": ex.EXAMPLE_SERIAL,
            "owner_username": "alice",
            "api_key": ex.EXAMPLE_API_KEY,
        }
    )
    id: int
    serial: str
    owner_username: str
    api_key: str = Field(description="shown once; only its SHA-256 is stored")


class MeterOut(BaseModel):
    id: int
    serial: str
    owner_username: str
    public_key: str
    status: Literal["active", "suspended"]
    created_at: str
    last_seen_at: str | None
    technology: str | None = None
    capacity_kw: str | None = None
    country: str | None = None
    grid_region: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    commissioning_date: str | None = None
    certificates_blocked: str | None = Field(
        None, description='"cannot issue certificates: missing ..." or null when complete'
    )


class ReadingIn(BaseModel):
    model_config = _example(ex.READING_IN)
    meter_serial: str = Field(max_length=64, pattern=SERIAL_REGEX)
    kwh_amount: (
        Annotated[str, Field(pattern=KWH_REGEX)]
        | Annotated[float, Field(gt=0, multiple_of=0.000001)]
    ) = Field(
        description=(
            "decimal string or JSON number, both written as ASCII digits with optionally a "
            "point and 1-6 decimals (no exponent, sign or spaces); > 0, <= the maximum"
        )
    )
    reading_timestamp: str = Field(
        max_length=40, description="RFC 3339 with an offset, whole milliseconds"
    )
    meter_signature: str = Field(
        max_length=128, description="base58 ed25519 signature of the canonical message"
    )


class BatchIn(BaseModel):
    model_config = _example({"readings": [ex.READING_IN]})
    readings: list[ReadingIn] = Field(max_length=1000)


class ReadingOut(BaseModel):
    model_config = _example(ex.READING_OUT)
    id: int
    meter_serial: str
    user_id: int
    wallet_address: str | None
    kwh_amount: str
    reading_timestamp: str
    submitted_at: str
    status: Literal["pending", "review", "minting", "minted", "failed", "rejected"]
    minted: bool
    token_base_units: int | None
    mint_tx_signature: str | None


class MintStatusOut(ReadingOut):
    mint_batch_id: int | None
    minted_at: str | None
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    review_reason: str | None = Field(
        None, description="(addition) why the reading waits in review, when it does"
    )


class BatchItemOut(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    id: int | None = Field(None, description="the stored reading (accepted or duplicate)")
    error: ErrorDetail | None = None


class BatchOut(BaseModel):
    model_config = _example(
        {
            "accepted": 1,
            "rejected": 1,
            "duplicates": 1,
            "results": [
                {"index": 0, "status": "accepted", "id": 43},
                {"index": 1, "status": "duplicate", "id": 42},
                {
                    "index": 2,
                    "status": "rejected",
                    "error": {
                        "code": "too_many_decimals",
                        "message": ex.ERROR_MESSAGES["too_many_decimals"],
                        "field": "kwh_amount",
                    },
                },
            ],
        }
    )
    accepted: int
    rejected: int
    duplicates: int
    results: list[BatchItemOut]


class ReadingPage(BaseModel):
    readings: list[ReadingOut]
    total: int
    page: int
    page_size: int


class StatsOut(BaseModel):
    model_config = _example(
        {
            "scope": "own",
            "total_readings": 3,
            "total_kwh": "7.250000",
            "minted_kwh": "2.010000",
            "unminted_kwh": "5.240000",
            "tokens_minted": 2010000000,
            "readings_by_status": {"pending": 2, "minted": 1},
        }
    )
    scope: Literal["own", "all"]
    total_readings: int
    total_kwh: str
    minted_kwh: str
    unminted_kwh: str
    tokens_minted: int = Field(description="GRX base units (10^-decimals GRX)")
    readings_by_status: dict[str, int]


class MintFromReadingIn(BaseModel):
    model_config = _example({"reading_id": 42})
    reading_id: int = Field(ge=1, le=MAX_ID)


class MintQueuedOut(BaseModel):
    model_config = _example({"reading_id": 42, "status": "queued", "reading_status": "pending"})
    reading_id: int
    status: Literal["queued"] = "queued"
    reading_status: str


class MqttHealthOut(BaseModel):
    status: Literal["connected", "disconnected", "stopped", "not running"] = Field(
        description="the bridge's last heartbeat: connected to its broker or not; stopped when "
        "it is older than 15 s; not running when no bridge ever reported"
    )
    broker: str | None = None
    messages_per_sec: str | None = Field(None, description="over the last heartbeat interval")
    last_message_at: str | None = None
    heartbeat_at: str | None = None


class HealthOut(BaseModel):
    model_config = _example(
        {
            "status": "ok",
            "database": "ok",
            "chain": "ok",
            "mqtt": {
                "status": "connected",
                "broker": "mqtt://127.0.0.1:1883",
                "messages_per_sec": "12.5",
                "last_message_at": "2026-11-20T11:59:58Z",
                "heartbeat_at": "2026-11-20T11:59:59Z",
            },
        }
    )
    status: Literal["ok", "degraded", "unavailable"]
    database: str
    chain: str
    mqtt: MqttHealthOut | None = Field(
        None, description="(addition) the MQTT ingest bridge; absent when the database is down"
    )


class CostPeriodOut(BaseModel):
    fees_lamports: int = Field(description="paid by landed transactions: signatures and priority")
    rent_lamports: int = Field(description="deposited into new token accounts and lookup tables")
    spent_sol: str = Field(description="fees + rent, in SOL (exact decimal)")
    transactions: int = Field(description="landed transactions whose cost is recorded")
    readings_minted: int
    lamports_per_reading: str | None = Field(description="fees / readings minted; null if none")


class CostPointOut(CostPeriodOut):
    bucket_start: str


class FeePayerOut(BaseModel):
    address: str
    balance_lamports: int
    balance_sol: str
    min_lamports: int = Field(description="TOKENIZATION_FEE_PAYER_MIN_SOL in lamports")
    min_sol: str
    low: bool = Field(description="below the minimum (a fee_payer_low event was sent)")
    read_at: str


class RentLockedOut(BaseModel):
    token_accounts_lamports: int
    lookup_tables_lamports: int
    total_lamports: int
    total_sol: str


class CostsOut(BaseModel):
    model_config = _example(
        {
            "fee_payer": {
                "address": ex.EXAMPLE_WALLET,
                "balance_lamports": 99_412_280_000,
                "balance_sol": "99.41228",
                "min_lamports": 1_000_000_000,
                "min_sol": "1",
                "low": False,
                "read_at": "2026-12-01T10:00:02Z",
            },
            "today": {
                "fees_lamports": 3_100_000,
                "rent_lamports": 0,
                "spent_sol": "0.0031",
                "transactions": 620,
                "readings_minted": 36_050,
                "lamports_per_reading": "85.99",
            },
            "last_30_days": {
                "fees_lamports": 80_500_000,
                "rent_lamports": 5_681_226_240,
                "spent_sol": "5.76172624",
                "transactions": 16_100,
                "readings_minted": 911_000,
                "lamports_per_reading": "88.36",
            },
            "rent_locked": {
                "token_accounts_lamports": 5_098_200_000,
                "lookup_tables_lamports": 583_026_240,
                "total_lamports": 5_681_226_240,
                "total_sol": "5.68122624",
            },
            "spent_last_24h_lamports": 3_850_000,
            "runway_days": "25821.37",
            "mints_per_transaction": "52.80",
            "hourly": [],
            "daily": [],
        }
    )
    fee_payer: FeePayerOut | None = Field(description="as read by the scheduler's last cycle")
    today: CostPeriodOut = Field(description="since 00:00 UTC")
    last_30_days: CostPeriodOut
    rent_locked: RentLockedOut = Field(description="all rent ever deposited (never refunded)")
    spent_last_24h_lamports: int = Field(description="fees + rent recorded in the last 24 h")
    runway_days: str | None = Field(description="balance / spent_last_24h; null if nothing spent")
    mints_per_transaction: str | None = Field(description="MintTo per mint transaction, 30 days")
    hourly: list[CostPointOut] = Field(description="24 hourly buckets, oldest first")
    daily: list[CostPointOut] = Field(description="30 daily buckets (UTC days), oldest first")


class MeterEncryption(BaseModel):
    aes_key: str | None = Field(
        None,
        min_length=64,
        max_length=64,
        pattern="^[0-9A-Fa-f]{64}$",
        description="the meter's new dlms-enc AES-256 key (64 hex); null removes it",
    )
    required: bool = Field(False, description="refuse its plaintext GridTokenX frames (426)")
