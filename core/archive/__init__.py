"""Archive closed months: `python -m core.archive --before YYYY-MM` (docs/OPERATIONS.md).

Readings and events of months that are closed and final are written to compressed,
checksummed files, read back and verified, and only then removed from the database
(PostgreSQL: their partitions dropped; SQLite: deleted in chunks). Every total stays
exact: mint_totals counts what was minted and removed (core.minting.totals).
"""

from core.archive.files import ArchiveInvalid, verify_month, write_month
from core.archive.removal import ArchiveMismatch, remove_month
from core.archive.run import ArchiveRefused, MonthPlan, archive_before, plan_months

__all__ = [
    "ArchiveInvalid",
    "ArchiveMismatch",
    "ArchiveRefused",
    "MonthPlan",
    "archive_before",
    "plan_months",
    "remove_month",
    "verify_month",
    "write_month",
]
