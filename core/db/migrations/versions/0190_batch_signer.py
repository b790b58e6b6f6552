"""Each outbox row records which signer and key version signed it as the authority.

`signer` is "file" or "vault-transit:<mount>/<key>", `signer_key_version` the
transit key version (NULL for a keypair file). A transit rotation is a new key
pair, so the version says which public key signed.

Revision ID: 0190
Revises: 0140
Create Date: 2026-12-02 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0190"
down_revision: str | None = "0140"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mint_batches") as batch:
        batch.add_column(sa.Column("signer", sa.String(200), nullable=True))
        batch.add_column(sa.Column("signer_key_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mint_batches") as batch:
        batch.drop_column("signer_key_version")
        batch.drop_column("signer")
