"""The last enabled admin stays: nobody could log in to administer otherwise, and the
first-admin setup only runs on a database with no admin at all.

Every change that takes an admin away (disabling one; demoting one, should roles
become editable) calls `keep_an_enabled_admin` in its own transaction before
writing. The check locks the enabled admins' rows (FOR UPDATE on PostgreSQL; on
SQLite every write transaction begins IMMEDIATE and so runs alone), so two admins
disabling each other at once leave one: the second waits for the first to commit,
then counts again.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Role, User
from core.errors import Conflict


class LastAdmin(Conflict):
    code = "last_admin"
    field = "username"


def keep_an_enabled_admin(session: Session, user: User, change: str = "disabled") -> None:
    """Raise LastAdmin when `user` is the only enabled admin (a no-op for anyone else)."""
    if user.role != Role.ADMIN.value or user.disabled:
        return
    enabled = session.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN.value, User.disabled.is_(False))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if set(enabled) <= {user.id}:
        raise LastAdmin(
            f"{user.username} is the last enabled admin and cannot be {change}; "
            "create or enable another admin first"
        )
