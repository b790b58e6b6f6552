"""Chain operations of several kinds, their costs, lookup tables and the fee payer.

mint_batches becomes the outbox of every chain write: `kind` says what the
transaction does (mint, token_accounts, lookup_table) and `payload` its details;
fee, rent and compute units are recorded from the landed transaction's meta,
and each lamport also goes to the `chain_costs` ledger keyed by operation.

Revision ID: 0140
Revises: 0110
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0140"
down_revision: str | None = "0110"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("mint_batches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=24), server_default="mint", nullable=False)
        )
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("mint_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("fee_lamports", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("rent_lamports", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("compute_units", sa.Integer(), nullable=True))

    op.create_table(
        "chain_costs",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("operation_id", sa.BigInteger(), nullable=False),
        sa.Column("operation_kind", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("account", sa.String(length=44), nullable=False),
        sa.Column("lamports", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=88), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('fee', 'rent')", name=op.f("ck_chain_costs_kind")),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["mint_batches.id"],
            name=op.f("fk_chain_costs_operation_id_mint_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_costs")),
        sa.UniqueConstraint(
            "operation_id", "kind", "account", name=op.f("uq_chain_costs_operation_id_kind_account")
        ),
    )
    op.create_index("ix_chain_costs_recorded_at", "chain_costs", ["recorded_at"])

    op.create_table(
        "lookup_tables",
        sa.Column("address", sa.String(length=44), nullable=False),
        sa.Column("authority", sa.String(length=44), nullable=False),
        sa.Column("mint", sa.String(length=44), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('creating', 'ready', 'abandoned')", name=op.f("ck_lookup_tables_status")
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["mint_batches.id"],
            name=op.f("fk_lookup_tables_operation_id_mint_batches"),
        ),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_lookup_tables")),
    )
    op.create_table(
        "lookup_table_entries",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("table_address", sa.String(length=44), nullable=False),
        sa.Column("account", sa.String(length=44), nullable=False),
        sa.Column("wallet", sa.String(length=44), nullable=False),
        sa.Column("operation_id", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_slot", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["table_address"],
            ["lookup_tables.address"],
            name=op.f("fk_lookup_table_entries_table_address_lookup_tables"),
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["mint_batches.id"],
            name=op.f("fk_lookup_table_entries_operation_id_mint_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookup_table_entries")),
        sa.UniqueConstraint("account", name=op.f("uq_lookup_table_entries_account")),
    )
    op.create_index(
        "ix_lookup_table_entries_table_address", "lookup_table_entries", ["table_address"]
    )
    op.create_index("ix_lookup_table_entries_wallet", "lookup_table_entries", ["wallet"])
    op.create_index(
        "ix_lookup_table_entries_inactive",
        "lookup_table_entries",
        ["table_address"],
        sqlite_where=sa.text("active = false"),
        postgresql_where=sa.text("active = false"),
    )

    op.create_table(
        "fee_payers",
        sa.Column("address", sa.String(length=44), nullable=False),
        sa.Column("lamports", sa.BigInteger(), nullable=False),
        sa.Column("min_lamports", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.Boolean(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_fee_payers")),
    )


def downgrade() -> None:
    op.drop_table("fee_payers")
    op.drop_index("ix_lookup_table_entries_inactive", table_name="lookup_table_entries")
    op.drop_index("ix_lookup_table_entries_wallet", table_name="lookup_table_entries")
    op.drop_index("ix_lookup_table_entries_table_address", table_name="lookup_table_entries")
    op.drop_table("lookup_table_entries")
    op.drop_table("lookup_tables")
    op.drop_index("ix_chain_costs_recorded_at", table_name="chain_costs")
    op.drop_table("chain_costs")
    with op.batch_alter_table("mint_batches", schema=None) as batch_op:
        for column in (
            "compute_units",
            "rent_lamports",
            "fee_lamports",
            "mint_count",
            "version",
            "payload",
            "kind",
        ):
            batch_op.drop_column(column)
