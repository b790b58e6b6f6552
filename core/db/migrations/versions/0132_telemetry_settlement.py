"""Telemetry samples, settlement intervals and the amounts intervals make mintable.

A GridTokenX meter's samples (any cadence) settle into epoch-aligned intervals;
a closed interval's net surplus becomes one reading (seq 0), a late sample's
difference another (seq 1, 2, ...), UNIQUE(interval_id, seq) making each once.
meters.reporting says whether a meter's registers are per-tick energy or running
counters; meters.enc_key holds its dlms-enc key sealed with DATA_DIR's wrapping
key, meters.encryption_required refuses its plaintext frames.

Revision ID: 0132
Revises: 0151
Create Date: 2026-12-02 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db.types import BigIntPK, UtcDateTime

revision: str = "0132"
down_revision: str | None = "0151"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meters") as batch:
        batch.add_column(
            sa.Column("reporting", sa.String(24), nullable=False, server_default="tick_energy")
        )
        batch.add_column(sa.Column("enc_key", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "encryption_required", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "telemetry_samples",
        sa.Column("id", BigIntPK, nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("sample_timestamp", UtcDateTime(), nullable=False),
        sa.Column("interval_start", UtcDateTime(), nullable=False),
        sa.Column("submitted_at", UtcDateTime(), nullable=False),
        sa.Column("net_micro", sa.BigInteger(), nullable=False),
        sa.Column("energy_micro", sa.BigInteger(), nullable=False),
        sa.Column("generated_micro", sa.BigInteger(), nullable=True),
        sa.Column("consumed_micro", sa.BigInteger(), nullable=True),
        sa.Column("import_micro", sa.BigInteger(), nullable=True),
        sa.Column("export_micro", sa.BigInteger(), nullable=True),
        sa.Column("registers", sa.JSON(), nullable=True),
        sa.Column("signature", sa.String(88), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_telemetry_samples_meter_id_meters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_samples")),
        sa.UniqueConstraint(
            "meter_id",
            "sample_timestamp",
            name=op.f("uq_telemetry_samples_meter_id_sample_timestamp"),
        ),
    )
    op.create_index(
        "ix_telemetry_samples_meter_interval",
        "telemetry_samples",
        ["meter_id", "interval_start"],
    )
    op.create_index(
        "ix_telemetry_samples_meter_counter", "telemetry_samples", ["meter_id", "counter"]
    )
    op.create_table(
        "settlement_intervals",
        sa.Column("id", BigIntPK, nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("interval_start", UtcDateTime(), nullable=False),
        sa.Column("interval_end", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("net_micro", sa.BigInteger(), nullable=False),
        sa.Column("generated_micro", sa.BigInteger(), nullable=False),
        sa.Column("consumed_micro", sa.BigInteger(), nullable=False),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        sa.Column("settled_micro", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(8), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'closed')", name=op.f("ck_settlement_intervals_status")
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_settlement_intervals_meter_id_meters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_intervals")),
        sa.UniqueConstraint(
            "meter_id",
            "interval_start",
            name=op.f("uq_settlement_intervals_meter_id_interval_start"),
        ),
    )
    op.create_index(
        "ix_settlement_intervals_due",
        "settlement_intervals",
        ["interval_end"],
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "interval_amounts",
        sa.Column("id", BigIntPK, nullable=False),
        sa.Column("interval_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("reading_id", sa.BigInteger(), nullable=False),
        sa.Column("kwh_micro", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["interval_id"],
            ["settlement_intervals.id"],
            name=op.f("fk_interval_amounts_interval_id_settlement_intervals"),
        ),
        sa.ForeignKeyConstraint(
            ["reading_id"],
            ["meter_readings.id"],
            name=op.f("fk_interval_amounts_reading_id_meter_readings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interval_amounts")),
        sa.UniqueConstraint("interval_id", "seq", name=op.f("uq_interval_amounts_interval_id_seq")),
        sa.UniqueConstraint("reading_id", name=op.f("uq_interval_amounts_reading_id")),
    )


def downgrade() -> None:
    op.drop_table("interval_amounts")
    op.drop_index("ix_settlement_intervals_due", table_name="settlement_intervals")
    op.drop_table("settlement_intervals")
    op.drop_index("ix_telemetry_samples_meter_counter", table_name="telemetry_samples")
    op.drop_index("ix_telemetry_samples_meter_interval", table_name="telemetry_samples")
    op.drop_table("telemetry_samples")
    with op.batch_alter_table("meters") as batch:
        batch.drop_column("encryption_required")
        batch.drop_column("enc_key")
        batch.drop_column("reporting")
