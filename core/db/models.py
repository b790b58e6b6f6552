"""SQLAlchemy 2 models. The Alembic migrations are the truth about the schema.

Energy is stored as integer micro-kWh (`kwh_micro`) and tokens as integer base
units, so sums in SQL are exact on SQLite and PostgreSQL alike; `kwh_amount`
gives the exact Decimal back.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.types import BigIntPK, DecimalText, UtcDateTime, utcnow
from core.device_attributes import Technology
from core.units import KWH_SCALE

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    PROSUMER = "prosumer"


class MeterStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class ReadingStatus(StrEnum):
    PENDING = "pending"
    REVIEW = "review"
    MINTING = "minting"
    MINTED = "minted"
    FAILED = "failed"
    REJECTED = "rejected"


class BatchStatus(StrEnum):
    PLANNED = "planned"
    SIGNED = "signed"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    EXPIRED = "expired"


class OperationKind(StrEnum):
    """What a mint_batches row's transaction does: every chain write goes through the outbox."""

    MINT = "mint"
    TOKEN_ACCOUNTS = "token_accounts"  # create wallets' associated token accounts
    LOOKUP_TABLE = "lookup_table"  # create and/or extend an address lookup table
    SET_AUTHORITY = "set_authority"  # move the GRX mint authority (core.minting.authority)
    # Certificate mint operations (core.certificates); total_base_units is the Wh they move.
    CERTIFICATE_ISSUE = "certificate_issue"  # MintTo the holder
    CERTIFICATE_TRANSFER = "certificate_transfer"  # burn from one holder, mint to another
    CERTIFICATE_RETIRE = "certificate_retire"  # burn: claimed
    CERTIFICATE_CANCEL = "certificate_cancel"  # burn: withdrawn by an admin


CERTIFICATE_KINDS = frozenset(
    kind.value for kind in OperationKind if kind.value.startswith("certificate_")
)


class CertificateStatus(StrEnum):
    """A certificate's range of Wh ids; docs/CERTIFICATES.md draws the moves."""

    REVIEW = "review"  # waits for an admin's approval before it is minted
    ISSUING = "issuing"  # its MintTo is planned or in flight
    ACTIVE = "active"  # on chain in its holder's account
    TRANSFERRING = "transferring"  # its burn-and-mint to pending_holder is in flight
    RETIRING = "retiring"
    RETIRED = "retired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    SPLIT = "split"  # replaced by its children (parent_id), which hold every id it held
    REJECTED = "rejected"  # an admin declined it in review: never minted


class CostKind(StrEnum):
    FEE = "fee"  # paid: signatures and priority fee
    RENT = "rent"  # deposited into an account (token account, lookup table), locked


class LookupTableStatus(StrEnum):
    CREATING = "creating"  # its creating transaction is not settled yet
    READY = "ready"
    ABANDONED = "abandoned"  # the creating transaction never landed


def _one_of(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(member.value) for member in enum)})"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_one_of("role", Role), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    wallet_address: Mapped[str | None] = mapped_column(String(44))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SessionKind(StrEnum):
    API = "api"  # POST /api/auth/login
    DASHBOARD = "dashboard"  # the dashboard's login or SSO


class LoginSession(Base):
    """One login: its id is the token's `jti`; a token is honoured only while its row is live."""

    __tablename__ = "login_sessions"
    __table_args__ = (CheckConstraint(_one_of("kind", SessionKind), name="kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # NULL: no idle limit (API tokens); the dashboard's sessions end after this much quiet.
    idle_timeout_secs: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class Meter(Base):
    __tablename__ = "meters"
    __table_args__ = (
        CheckConstraint(_one_of("status", MeterStatus), name="status"),
        CheckConstraint(
            "technology IS NULL OR " + _one_of("technology", Technology), name="technology"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    public_key: Mapped[str] = mapped_column(String(44))
    # SHA-256 of a 256-bit random key: a slow hash adds nothing to a key no one can guess,
    # and ingest looks the key up on every request.
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=MeterStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Indexed worst first with status, by expression (migration 0207, core.views.fleet).
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # GridTokenX telemetry: what its import/export registers hold (Reporting).
    reporting: Mapped[str] = mapped_column(
        String(24), default="tick_energy", server_default="tick_energy"
    )
    # Its dlms-enc AES key, sealed with DATA_DIR's wrapping key (core.readings.encryption).
    enc_key: Mapped[str | None] = mapped_column(Text)
    encryption_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # The device as a certificate registry knows it (core.device_attributes checks them);
    # NULL until an admin sets them, and a meter lacking one cannot issue certificates.
    technology: Mapped[str | None] = mapped_column(String(16))
    capacity_kw: Mapped[Decimal | None] = mapped_column(DecimalText)
    country: Mapped[str | None] = mapped_column(String(2))
    grid_region: Mapped[str | None] = mapped_column(String(32))
    latitude: Mapped[Decimal | None] = mapped_column(DecimalText)
    longitude: Mapped[Decimal | None] = mapped_column(DecimalText)
    commissioning_date: Mapped[date | None] = mapped_column(Date)


class MintBatch(Base):
    """One Solana transaction carrying MintTo instructions for a group of readings."""

    __tablename__ = "mint_batches"
    __table_args__ = (
        CheckConstraint(_one_of("status", BatchStatus), name="status"),
        Index(
            "ix_mint_batches_open",
            "status",
            "id",
            sqlite_where=text("status IN ('planned', 'signed')"),
            postgresql_where=text("status IN ('planned', 'signed')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=BatchStatus.PLANNED.value)
    # mint, or another chain operation of the same outbox (payload says what it does).
    kind: Mapped[str] = mapped_column(
        String(24), default=OperationKind.MINT.value, server_default=OperationKind.MINT.value
    )
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    signature: Mapped[str | None] = mapped_column(String(88), unique=True)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    blockhash: Mapped[str | None] = mapped_column(String(44))
    last_valid_block_height: Mapped[int | None] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    total_readings: Mapped[int] = mapped_column(Integer, default=0)
    total_base_units: Mapped[int] = mapped_column(BigInteger, default=0)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    slot: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    signed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[str | None] = mapped_column(String(8))  # legacy | v0
    mint_count: Mapped[int | None] = mapped_column(Integer)  # MintTo instructions carried
    # From the landed transaction's meta (NULL until recorded; an expired one never pays).
    fee_lamports: Mapped[int | None] = mapped_column(BigInteger)
    rent_lamports: Mapped[int | None] = mapped_column(BigInteger)
    compute_units: Mapped[int | None] = mapped_column(Integer)
    # Who signed as the authority ("file", "vault-transit:<mount>/<key>") and its key version.
    signer: Mapped[str | None] = mapped_column(String(200))
    signer_key_version: Mapped[int | None] = mapped_column(Integer)


class MeterReading(Base):
    __tablename__ = "meter_readings"
    __table_args__ = (
        UniqueConstraint("meter_id", "reading_timestamp"),
        CheckConstraint(_one_of("status", ReadingStatus), name="status"),
        CheckConstraint("kwh_micro > 0", name="kwh_positive"),
        # The claim query: pending readings oldest first, backoff checked from the index.
        Index(
            "ix_meter_readings_claim",
            "id",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # Everything not yet minted is small; counting it must not scan history.
        Index(
            "ix_meter_readings_open",
            "status",
            "id",
            sqlite_where=text("status <> 'minted'"),
            postgresql_where=text("status <> 'minted'"),
        ),
        Index("ix_meter_readings_user_time", "user_id", "reading_timestamp"),
        Index("ix_meter_readings_reading_timestamp", "reading_timestamp"),
        Index("ix_meter_readings_submitted_at", "submitted_at"),
        Index("ix_meter_readings_minted_at", "minted_at"),
        Index("ix_meter_readings_mint_batch_id", "mint_batch_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    wallet_address: Mapped[str | None] = mapped_column(String(44))
    kwh_micro: Mapped[int] = mapped_column(BigInteger)
    reading_timestamp: Mapped[datetime] = mapped_column(UtcDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=ReadingStatus.PENDING.value)
    meter_signature: Mapped[str] = mapped_column(String(88))
    mint_batch_id: Mapped[int | None] = mapped_column(ForeignKey("mint_batches.id"))
    token_base_units: Mapped[int | None] = mapped_column(BigInteger)
    ratio_applied: Mapped[Decimal | None] = mapped_column(DecimalText)
    mint_tx_signature: Mapped[str | None] = mapped_column(String(88))
    minted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # An admin's mint-from-reading or force-mint: minted even while auto-mint is off.
    mint_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    mint_requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    review_note: Mapped[str | None] = mapped_column(Text)
    # Why the reading waits in review (threshold, back-fill horizon, implausible energy).
    review_reason: Mapped[str | None] = mapped_column(Text)

    @property
    def kwh_amount(self) -> Decimal:
        return Decimal(self.kwh_micro).scaleb(-KWH_SCALE)


class Reporting(StrEnum):
    """What a meter's telemetry registers hold (GridTokenX form)."""

    TICK_ENERGY = "tick_energy"  # each sample's own energy (their simulator)
    CUMULATIVE = "cumulative_registers"  # running import/export counters


class IntervalStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TelemetrySample(Base):
    """One accepted telemetry sample, whatever its cadence: it settles into an interval.

    `energy_micro` is what it adds to its interval's net: the signed net kWh of the
    tick, or for a cumulative-register meter the register difference since the
    meter's previous sample (0 for the first, for a reset and out of order).
    """

    __tablename__ = "telemetry_samples"
    __table_args__ = (
        UniqueConstraint("meter_id", "sample_timestamp"),
        Index("ix_telemetry_samples_meter_interval", "meter_id", "interval_start"),
        Index("ix_telemetry_samples_meter_counter", "meter_id", "counter"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    sample_timestamp: Mapped[datetime] = mapped_column(UtcDateTime)
    interval_start: Mapped[datetime] = mapped_column(UtcDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    net_micro: Mapped[int] = mapped_column(BigInteger)  # the signed kwh, micro-kWh
    energy_micro: Mapped[int] = mapped_column(BigInteger)
    generated_micro: Mapped[int | None] = mapped_column(BigInteger)
    consumed_micro: Mapped[int | None] = mapped_column(BigInteger)
    import_micro: Mapped[int | None] = mapped_column(BigInteger)  # OBIS 1.1.1.8.0.255
    export_micro: Mapped[int | None] = mapped_column(BigInteger)  # OBIS 1.1.2.8.0.255
    registers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(String(88))
    counter: Mapped[int | None] = mapped_column(BigInteger)  # dlms-enc invocation counter
    late: Mapped[bool] = mapped_column(Boolean, default=False)  # its interval was closed
    note: Mapped[str | None] = mapped_column(String(32))  # register_reset, out_of_order


class SettlementInterval(Base):
    """A meter's epoch-aligned interval; closed once, its net surplus minted once."""

    __tablename__ = "settlement_intervals"
    __table_args__ = (
        UniqueConstraint("meter_id", "interval_start"),
        CheckConstraint(_one_of("status", IntervalStatus), name="status"),
        Index(
            "ix_settlement_intervals_due",
            "interval_end",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    interval_start: Mapped[datetime] = mapped_column(UtcDateTime)
    interval_end: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(8), default=IntervalStatus.OPEN.value)
    net_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    generated_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    consumed_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    sample_count: Mapped[int] = mapped_column(Integer, default=0)
    settled_micro: Mapped[int] = mapped_column(BigInteger, default=0)  # made mintable so far
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(8))  # sample | grace


class IntervalAmount(Base):
    """A mintable amount an interval produced: its surplus (seq 0), then adjustments.

    UNIQUE(interval_id, seq) is the exactly-once: an interval's surplus and each of
    its adjustments become one reading each, never two.
    """

    __tablename__ = "interval_amounts"
    __table_args__ = (UniqueConstraint("interval_id", "seq"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    interval_id: Mapped[int] = mapped_column(ForeignKey("settlement_intervals.id"))
    seq: Mapped[int] = mapped_column(Integer)
    reading_id: Mapped[int] = mapped_column(ForeignKey("meter_readings.id"), unique=True)
    kwh_micro: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class GatewayStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class Gateway(Base):
    """A head-end system: one API key that submits for the meters an admin assigned to it.

    Each reading it forwards is still verified against its own meter's public key.
    """

    __tablename__ = "gateways"
    __table_args__ = (CheckConstraint(_one_of("status", GatewayStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=GatewayStatus.ACTIVE.value)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class GatewayMeter(Base):
    """A meter a gateway may submit for."""

    __tablename__ = "gateway_meters"

    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), primary_key=True, index=True)


class MintRequest(Base):
    """An admin's "mint now": every reading pending up to `upto_reading_id` is minted."""

    __tablename__ = "mint_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    upto_reading_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Event(Base):
    """Append-only log; `user_id` is the prosumer who may see it (NULL: staff only)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_user_id_id", "user_id", "id"),
        Index("ix_events_type_id", "type", "id"),
        Index("ix_events_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    type: Mapped[str] = mapped_column(String(48))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Setting(Base):
    """A runtime override of one TokenizationConfig field, written by an admin."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class MintTotal(Base):
    """Running totals of minted GRX (core.minting.totals): reconciliation reads this row.

    readings/base_units count every reading ever minted; archived_* the part of them
    whose rows `python -m core.archive` moved out, so the full sum stays checkable.
    """

    __tablename__ = "mint_totals"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)  # "grx"
    readings: Mapped[int] = mapped_column(BigInteger, default=0)
    base_units: Mapped[int] = mapped_column(BigInteger, default=0)
    archived_readings: Mapped[int] = mapped_column(BigInteger, default=0)
    archived_base_units: Mapped[int] = mapped_column(BigInteger, default=0)


class MintedBucket(Base):
    """Readings minted per 15 minutes of `minted_at` (core.minting.minted_buckets): what
    the costs panel counts, kept beside `mint_totals` by the transaction that mints."""

    __tablename__ = "minted_buckets"

    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    readings: Mapped[int] = mapped_column(BigInteger, default=0)
    base_units: Mapped[int] = mapped_column(BigInteger, default=0)


# Rollups of meter_readings (core.rollups, migration 0204): per bucket of reading_timestamp,
# meter, owner and wallet ('' for none), each status's count and micro-kWh, and the base
# units minted. Kept by database triggers; see docs/ARCHITECTURE.md "Rollups".
ROLLUP_MEASURES = (
    [f"n_{status}" for status in ReadingStatus]
    + [f"kwh_{status}" for status in ReadingStatus]
    + ["minted_units"]
)


def _rollup_table(name: str) -> Table:
    return Table(
        name,
        Base.metadata,
        Column("bucket", BigInteger, primary_key=True, autoincrement=False),
        Column("meter_id", Integer, primary_key=True, autoincrement=False),
        Column("user_id", Integer, primary_key=True, autoincrement=False),
        Column("wallet", String(44), primary_key=True),
        *(Column(measure, BigInteger, nullable=False) for measure in ROLLUP_MEASURES),
        Index(f"ix_{name}_user_id", "user_id", "bucket"),
        Index(f"ix_{name}_meter_id", "meter_id", "bucket"),
    )


READING_ROLLUPS = _rollup_table("reading_rollups")  # 15-minute buckets
READING_ROLLUPS_DAILY = _rollup_table("reading_rollups_daily")  # UTC days


class ReadingRollupDelta(Base):
    """A statement's net change to the rollups (PostgreSQL), folded in by the scheduler."""

    __tablename__ = "reading_rollup_deltas"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger)  # 15 minutes
    meter_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer)
    wallet: Mapped[str] = mapped_column(String(44))
    status: Mapped[str] = mapped_column(String(16))
    readings: Mapped[int] = mapped_column(BigInteger)
    kwh_micro: Mapped[int] = mapped_column(BigInteger)
    base_units: Mapped[int] = mapped_column(BigInteger)


class ReadingFlow(Base):
    """Fleet-wide readings and micro-kWh per 15 minutes of one time axis (migration 0205,
    core.rollups.flow): 'reading' (reading_timestamp), 'submitted', 'minted'."""

    __tablename__ = "reading_flow"

    axis: Mapped[str] = mapped_column(String(10), primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    readings: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(BigInteger)
    kwh_micro: Mapped[int] = mapped_column(BigInteger)


class ReadingFlowDelta(Base):
    """A statement's net change to `reading_flow` (PostgreSQL), folded in by the scheduler."""

    __tablename__ = "reading_flow_deltas"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    axis: Mapped[str] = mapped_column(String(10))
    bucket: Mapped[int] = mapped_column(BigInteger)
    readings: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(BigInteger)
    kwh_micro: Mapped[int] = mapped_column(BigInteger)


class MintedLatency(Base):
    """Readings minted per 15 minutes of minted_at by whole seconds from acceptance."""

    __tablename__ = "minted_latency"

    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    latency_secs: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    readings: Mapped[int] = mapped_column(BigInteger)


class TokenMint(Base):
    """The GRX mint this deployment mints to, recorded at bootstrap for reconciliation."""

    __tablename__ = "token_mints"

    address: Mapped[str] = mapped_column(String(44), primary_key=True)
    rpc_url: Mapped[str] = mapped_column(String(255))
    token_program: Mapped[str] = mapped_column(String(16))
    decimals: Mapped[int] = mapped_column(Integer)
    bootstrap_supply: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ChainCost(Base):
    """The cost ledger: every lamport an operation's landed transaction took, from its meta."""

    __tablename__ = "chain_costs"
    __table_args__ = (
        CheckConstraint(_one_of("kind", CostKind), name="kind"),
        UniqueConstraint("operation_id", "kind", "account"),
        Index("ix_chain_costs_recorded_at", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("mint_batches.id"))
    operation_kind: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(8))
    account: Mapped[str] = mapped_column(String(44))  # the fee payer, or the rent's account
    lamports: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(88))
    slot: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LookupTable(Base):
    """An address lookup table the scheduler created for the token accounts it mints to."""

    __tablename__ = "lookup_tables"
    __table_args__ = (CheckConstraint(_one_of("status", LookupTableStatus), name="status"),)

    address: Mapped[str] = mapped_column(String(44), primary_key=True)
    authority: Mapped[str] = mapped_column(String(44))
    mint: Mapped[str] = mapped_column(String(44))  # always its first entry
    status: Mapped[str] = mapped_column(String(16), default=LookupTableStatus.CREATING.value)
    entries: Mapped[int] = mapped_column(Integer, default=0)  # planned, including in flight
    operation_id: Mapped[int] = mapped_column(ForeignKey("mint_batches.id"))  # its creation
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LookupTableEntry(Base):
    """A token account in a lookup table; usable once its extension is past warm-up."""

    __tablename__ = "lookup_table_entries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    table_address: Mapped[str] = mapped_column(ForeignKey("lookup_tables.address"), index=True)
    account: Mapped[str] = mapped_column(String(44), unique=True)
    wallet: Mapped[str] = mapped_column(String(44), index=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("mint_batches.id"))
    confirmed_slot: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __table_args__ = (
        # Entries not yet usable: few, and looked at every cycle.
        Index(
            "ix_lookup_table_entries_inactive",
            "table_address",
            sqlite_where=text("active = false"),
            postgresql_where=text("active = false"),
        ),
    )


class FeePayer(Base):
    """The fee payer's SOL balance as last read, and whether it is below the minimum."""

    __tablename__ = "fee_payers"

    address: Mapped[str] = mapped_column(String(44), primary_key=True)
    lamports: Mapped[int] = mapped_column(BigInteger)
    min_lamports: Mapped[int] = mapped_column(BigInteger)
    low: Mapped[bool] = mapped_column(Boolean, default=False)  # an alert fired, not yet cleared
    read_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CertificateMint(Base):
    """The certificate mint of this deployment (Token-2022, 6 decimals), like token_mints."""

    __tablename__ = "certificate_mints"

    address: Mapped[str] = mapped_column(String(44), primary_key=True)
    rpc_url: Mapped[str] = mapped_column(String(255))
    authority: Mapped[str] = mapped_column(String(44))  # mint authority and permanent delegate
    bootstrap_supply: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CertificateBundle(Base):
    """One device's minted energy of one hour, in whole Wh, with its range of Wh ids.

    energy_mwh + carried_in_mwh == wh * 1000 + remainder_mwh: the sub-Wh rest is
    carried to the device's next bundle, so nothing is certified twice or lost.
    """

    __tablename__ = "certificate_bundles"
    __table_args__ = (
        CheckConstraint(
            "energy_mwh + carried_in_mwh = wh * 1000 + remainder_mwh", name="energy_balance"
        ),
        CheckConstraint("remainder_mwh >= 0 AND remainder_mwh < 1000", name="remainder"),
        CheckConstraint(
            "(wh = 0 AND first_id IS NULL) OR (wh > 0 AND last_id - first_id + 1 = wh)",
            name="range",
        ),
        Index("ix_certificate_bundles_meter_hour", "meter_id", "hour_start"),
        Index("ix_certificate_bundles_hour_start", "hour_start"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    producer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    hour_start: Mapped[datetime] = mapped_column(UtcDateTime)
    readings: Mapped[int] = mapped_column(Integer)
    energy_mwh: Mapped[int] = mapped_column(BigInteger)  # the readings' kwh_micro: mWh
    carried_in_mwh: Mapped[int] = mapped_column(BigInteger, default=0)
    wh: Mapped[int] = mapped_column(BigInteger)
    remainder_mwh: Mapped[int] = mapped_column(BigInteger)
    first_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    last_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    # The device as it was at issuance: a later edit does not rewrite a certificate.
    technology: Mapped[str] = mapped_column(String(16))
    capacity_kw: Mapped[Decimal] = mapped_column(DecimalText)
    country: Mapped[str] = mapped_column(String(2))
    grid_region: Mapped[str] = mapped_column(String(32))
    commissioning_date: Mapped[date] = mapped_column(Date)
    review_reason: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CertificateReading(Base):
    """A reading's energy backs one bundle: the primary key makes a second link impossible."""

    __tablename__ = "certificate_readings"

    reading_id: Mapped[int] = mapped_column(ForeignKey("meter_readings.id"), primary_key=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("certificate_bundles.id"), index=True)


class CertificateCarry(Base):
    """The sub-Wh rest a device carries to its next bundle; `bundle_id` guards the update."""

    __tablename__ = "certificate_carry"

    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), primary_key=True)
    remainder_mwh: Mapped[int] = mapped_column(BigInteger, default=0)
    bundle_id: Mapped[int | None] = mapped_column(BigInteger)


class CertificateSequence(Base):
    """The next free Wh id (one row): ranges are taken from it by a guarded UPDATE."""

    __tablename__ = "certificate_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_id: Mapped[int] = mapped_column(BigInteger)


class CertificateWatermark(Base):
    """Issuance looks again only from `since` (one row; NULL: from the first reading)."""

    __tablename__ = "certificate_watermark"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    since: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Certificate(Base):
    """A holder's contiguous range of a bundle's Wh ids; splitting replaces it by children."""

    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint(_one_of("status", CertificateStatus), name="status"),
        CheckConstraint("wh > 0 AND last_id - first_id + 1 = wh", name="range"),
        Index("ix_certificates_holder_status", "holder_id", "status", "id"),
        Index("ix_certificates_holder_id", "holder_id", "id"),
        Index("ix_certificates_bundle_id", "bundle_id"),
        Index("ix_certificates_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("certificate_bundles.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    wh: Mapped[int] = mapped_column(BigInteger)
    holder_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    holder_wallet: Mapped[str] = mapped_column(String(44))
    status: Mapped[str] = mapped_column(String(16))
    # The chain operation carrying its current move (issue, transfer, retire, cancel).
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("mint_batches.id"))
    issue_signature: Mapped[str | None] = mapped_column(String(88))
    pending_holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    pending_wallet: Mapped[str | None] = mapped_column(String(44))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # A retirement (claim): who benefits, what for, which consumption it covers.
    beneficiary: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(200))
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    claim_country: Mapped[str | None] = mapped_column(String(2))
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # who asked the move


class CertificateOperation(Base):
    """Which chain operations carried a certificate's moves: its history with signatures."""

    __tablename__ = "certificate_operations"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("mint_batches.id"), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))  # issue, transfer, retire, cancel


class IngestBridge(Base):
    """An ingest bridge's heartbeat (the MQTT bridge): written every few seconds, one row
    per bridge client id, so /health and the dashboard read its state without asking it."""

    __tablename__ = "ingest_bridges"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    broker: Mapped[str] = mapped_column(String(255))  # the URL without its password
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    messages_per_sec: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal(0))
    # Messages by outcome since the bridge started: accepted, duplicate, rejected:<code>.
    counters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_message_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CertificateDaily(Base):
    """Wh issued, retired and cancelled per UTC day, technology and grid region: the
    Certificates page's chart, kept in the transactions that issue and settle."""

    __tablename__ = "certificate_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    technology: Mapped[str] = mapped_column(String(16), primary_key=True)
    grid_region: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)  # issued|retired|cancelled
    wh: Mapped[int] = mapped_column(BigInteger, default=0)


class MeterBudget(Base):
    """A meter's reading budget shared by the api processes (PostgreSQL; see
    core/readings/shared_budget.py): micro-tokens left at `refilled_us`, the database
    clock in microseconds, and whether the last spend was granted."""

    __tablename__ = "meter_budgets"

    meter_id: Mapped[int] = mapped_column(
        ForeignKey("meters.id", ondelete="CASCADE"), primary_key=True
    )
    micro_tokens: Mapped[int] = mapped_column(BigInteger)
    refilled_us: Mapped[int] = mapped_column(BigInteger)
    granted: Mapped[bool] = mapped_column(Boolean)
