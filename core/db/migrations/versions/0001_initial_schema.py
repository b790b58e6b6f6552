"""Initial schema: users, meters, readings, mint batches, mint requests, events, settings, mints.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 03:32:36.197675
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "token_mints",
        sa.Column("address", sa.String(length=44), nullable=False),
        sa.Column("rpc_url", sa.String(length=255), nullable=False),
        sa.Column("token_program", sa.String(length=16), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("bootstrap_supply", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_token_mints")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("wallet_address", sa.String(length=44), nullable=True),
        sa.Column("disabled", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'operator', 'prosumer')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_events_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_events_type_id", ["type", "id"], unique=False)
        batch_op.create_index("ix_events_user_id_id", ["user_id", "id"], unique=False)

    op.create_table(
        "meters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=44), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_meters_status")),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_meters_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meters")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_meters_api_key_hash")),
        sa.UniqueConstraint("serial", name=op.f("uq_meters_serial")),
    )
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meters_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "mint_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=88), nullable=True),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=True),
        sa.Column("blockhash", sa.String(length=44), nullable=True),
        sa.Column("last_valid_block_height", sa.BigInteger(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("total_readings", sa.Integer(), nullable=False),
        sa.Column("total_base_units", sa.BigInteger(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("slot", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('planned', 'signed', 'confirmed', 'failed', 'expired')",
            name=op.f("ck_mint_batches_status"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_mint_batches_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mint_batches")),
        sa.UniqueConstraint("signature", name=op.f("uq_mint_batches_signature")),
    )
    with op.batch_alter_table("mint_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mint_batches_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            "ix_mint_batches_open",
            ["status", "id"],
            unique=False,
            sqlite_where=sa.text("status IN ('planned', 'signed')"),
            postgresql_where=sa.text("status IN ('planned', 'signed')"),
        )

    op.create_table(
        "mint_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("upto_reading_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_mint_requests_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mint_requests")),
    )
    op.create_table(
        "meter_readings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("wallet_address", sa.String(length=44), nullable=True),
        sa.Column("kwh_micro", sa.BigInteger(), nullable=False),
        sa.Column("reading_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("meter_signature", sa.String(length=88), nullable=False),
        sa.Column(
            "mint_batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("token_base_units", sa.BigInteger(), nullable=True),
        sa.Column("ratio_applied", sa.String(length=40), nullable=True),
        sa.Column("mint_tx_signature", sa.String(length=88), nullable=True),
        sa.Column("minted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("mint_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mint_requested_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'review', 'minting', 'minted', 'failed', 'rejected')",
            name=op.f("ck_meter_readings_status"),
        ),
        sa.CheckConstraint("kwh_micro > 0", name=op.f("ck_meter_readings_kwh_positive")),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_meter_readings_meter_id_meters")
        ),
        sa.ForeignKeyConstraint(
            ["mint_batch_id"],
            ["mint_batches.id"],
            name=op.f("fk_meter_readings_mint_batch_id_mint_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["mint_requested_by"],
            ["users.id"],
            name=op.f("fk_meter_readings_mint_requested_by_users"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["users.id"], name=op.f("fk_meter_readings_reviewed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_meter_readings_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_readings")),
        sa.UniqueConstraint(
            "meter_id",
            "reading_timestamp",
            name=op.f("uq_meter_readings_meter_id_reading_timestamp"),
        ),
    )
    with op.batch_alter_table("meter_readings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_meter_readings_claim",
            ["id", "next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index("ix_meter_readings_mint_batch_id", ["mint_batch_id"], unique=False)
        batch_op.create_index("ix_meter_readings_minted_at", ["minted_at"], unique=False)
        batch_op.create_index(
            "ix_meter_readings_open",
            ["status", "id"],
            unique=False,
            sqlite_where=sa.text("status <> 'minted'"),
            postgresql_where=sa.text("status <> 'minted'"),
        )
        batch_op.create_index(
            "ix_meter_readings_reading_timestamp", ["reading_timestamp"], unique=False
        )
        batch_op.create_index("ix_meter_readings_submitted_at", ["submitted_at"], unique=False)
        batch_op.create_index(
            "ix_meter_readings_user_time", ["user_id", "reading_timestamp"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("meter_readings", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_readings_user_time")
        batch_op.drop_index("ix_meter_readings_submitted_at")
        batch_op.drop_index("ix_meter_readings_reading_timestamp")
        batch_op.drop_index(
            "ix_meter_readings_open",
            sqlite_where=sa.text("status <> 'minted'"),
            postgresql_where=sa.text("status <> 'minted'"),
        )
        batch_op.drop_index("ix_meter_readings_minted_at")
        batch_op.drop_index("ix_meter_readings_mint_batch_id")
        batch_op.drop_index(
            "ix_meter_readings_claim",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )

    op.drop_table("meter_readings")
    op.drop_table("mint_requests")
    with op.batch_alter_table("mint_batches", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_mint_batches_open",
            sqlite_where=sa.text("status IN ('planned', 'signed')"),
            postgresql_where=sa.text("status IN ('planned', 'signed')"),
        )
        batch_op.drop_index(batch_op.f("ix_mint_batches_created_at"))

    op.drop_table("mint_batches")
    with op.batch_alter_table("meters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meters_owner_id"))

    op.drop_table("meters")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_user_id_id")
        batch_op.drop_index("ix_events_type_id")
        batch_op.drop_index("ix_events_created_at")

    op.drop_table("events")
    op.drop_table("users")
    op.drop_table("token_mints")
    op.drop_table("settings")
