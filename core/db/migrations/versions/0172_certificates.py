"""Renewable energy certificates: the certificate mint, hourly bundles of whole Wh with
their Wh id ranges, the reading -> bundle link (a reading backs one bundle: its
primary key), the carried sub-Wh rest per device, the id sequence, certificates
(ranges held, split, retired, cancelled) and the chain operations that moved them.

Revision ID: 0172
Revises: 0131
Create Date: 2026-12-02 06:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0172"
down_revision: str | None = "0131"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = (
    "review",
    "issuing",
    "active",
    "transferring",
    "retiring",
    "retired",
    "cancelling",
    "cancelled",
    "split",
    "rejected",
)


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "certificate_mints",
        sa.Column("address", sa.String(44), nullable=False),
        sa.Column("rpc_url", sa.String(255), nullable=False),
        sa.Column("authority", sa.String(44), nullable=False),
        sa.Column("bootstrap_supply", sa.BigInteger(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_certificate_mints")),
    )
    op.create_table(
        "certificate_bundles",
        _id(),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("producer_id", sa.Integer(), nullable=False),
        _when("hour_start"),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("energy_mwh", sa.BigInteger(), nullable=False),
        sa.Column("carried_in_mwh", sa.BigInteger(), nullable=False),
        sa.Column("wh", sa.BigInteger(), nullable=False),
        sa.Column("remainder_mwh", sa.BigInteger(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=True),
        sa.Column("last_id", sa.BigInteger(), nullable=True),
        sa.Column("technology", sa.String(16), nullable=False),
        sa.Column("capacity_kw", sa.String(40), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("grid_region", sa.String(32), nullable=False),
        sa.Column("commissioning_date", sa.Date(), nullable=False),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("approved_by", sa.Integer(), nullable=True),
        _when("created_at"),
        sa.CheckConstraint(
            "energy_mwh + carried_in_mwh = wh * 1000 + remainder_mwh",
            name=op.f("ck_certificate_bundles_energy_balance"),
        ),
        sa.CheckConstraint(
            "remainder_mwh >= 0 AND remainder_mwh < 1000",
            name=op.f("ck_certificate_bundles_remainder"),
        ),
        sa.CheckConstraint(
            "(wh = 0 AND first_id IS NULL) OR (wh > 0 AND last_id - first_id + 1 = wh)",
            name=op.f("ck_certificate_bundles_range"),
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_certificate_bundles_meter_id_meters")
        ),
        sa.ForeignKeyConstraint(
            ["producer_id"], ["users.id"], name=op.f("fk_certificate_bundles_producer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["approved_by"], ["users.id"], name=op.f("fk_certificate_bundles_approved_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_bundles")),
        sa.UniqueConstraint("first_id", name=op.f("uq_certificate_bundles_first_id")),
        sa.UniqueConstraint("last_id", name=op.f("uq_certificate_bundles_last_id")),
    )
    op.create_index(
        "ix_certificate_bundles_meter_hour", "certificate_bundles", ["meter_id", "hour_start"]
    )
    op.create_index("ix_certificate_bundles_hour_start", "certificate_bundles", ["hour_start"])
    op.create_table(
        "certificate_readings",
        sa.Column(
            "reading_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("bundle_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reading_id"],
            ["meter_readings.id"],
            name=op.f("fk_certificate_readings_reading_id_meter_readings"),
        ),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["certificate_bundles.id"],
            name=op.f("fk_certificate_readings_bundle_id_certificate_bundles"),
        ),
        sa.PrimaryKeyConstraint("reading_id", name=op.f("pk_certificate_readings")),
    )
    op.create_index(
        op.f("ix_certificate_readings_bundle_id"), "certificate_readings", ["bundle_id"]
    )
    op.create_table(
        "certificate_carry",
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("remainder_mwh", sa.BigInteger(), nullable=False),
        sa.Column("bundle_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_certificate_carry_meter_id_meters")
        ),
        sa.PrimaryKeyConstraint("meter_id", name=op.f("pk_certificate_carry")),
    )
    sequence = op.create_table(
        "certificate_sequence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("next_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_sequence")),
    )
    op.bulk_insert(sequence, [{"id": 1, "next_id": 1}])
    allowed = ", ".join(repr(value) for value in STATUSES)
    op.create_table(
        "certificates",
        _id(),
        sa.Column("bundle_id", sa.BigInteger(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("wh", sa.BigInteger(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("holder_wallet", sa.String(44), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("operation_id", sa.BigInteger(), nullable=True),
        sa.Column("issue_signature", sa.String(88), nullable=True),
        sa.Column("pending_holder_id", sa.Integer(), nullable=True),
        sa.Column("pending_wallet", sa.String(44), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.Column("beneficiary", sa.String(200), nullable=True),
        sa.Column("purpose", sa.String(200), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("claim_country", sa.String(2), nullable=True),
        _when("finished_at", nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(f"status IN ({allowed})", name=op.f("ck_certificates_status")),
        sa.CheckConstraint(
            "wh > 0 AND last_id - first_id + 1 = wh", name=op.f("ck_certificates_range")
        ),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["certificate_bundles.id"],
            name=op.f("fk_certificates_bundle_id_certificate_bundles"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["certificates.id"], name=op.f("fk_certificates_parent_id_certificates")
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["users.id"], name=op.f("fk_certificates_holder_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["pending_holder_id"],
            ["users.id"],
            name=op.f("fk_certificates_pending_holder_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_certificates_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["mint_batches.id"],
            name=op.f("fk_certificates_operation_id_mint_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
    )
    op.create_index("ix_certificates_holder_status", "certificates", ["holder_id", "status"])
    op.create_index("ix_certificates_bundle_id", "certificates", ["bundle_id"])
    op.create_index("ix_certificates_status_id", "certificates", ["status", "id"])
    op.create_table(
        "certificate_operations",
        sa.Column("certificate_id", sa.BigInteger(), nullable=False),
        sa.Column("operation_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_certificate_operations_certificate_id_certificates"),
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["mint_batches.id"],
            name=op.f("fk_certificate_operations_operation_id_mint_batches"),
        ),
        sa.PrimaryKeyConstraint(
            "certificate_id", "operation_id", name=op.f("pk_certificate_operations")
        ),
    )


def downgrade() -> None:
    for table in (
        "certificate_operations",
        "certificates",
        "certificate_sequence",
        "certificate_carry",
        "certificate_readings",
        "certificate_bundles",
        "certificate_mints",
    ):
        op.drop_table(table)
