"""Who may do what, checked inside the use cases themselves.

Routes and pages guard by role too, but a guard is one caller's promise: a new page,
a script or a forgotten dependency would skip it. Each write action an admin alone
may take (approve, reject, force-mint, mint now, retry, settings) calls
`require_admin` with its actor first, so a non-admin actor is refused whoever calls.
"""

from __future__ import annotations

from core.db.models import Role, User
from core.errors import Forbidden


class NotPermitted(Forbidden):
    """The actor's role (or disabled account) does not allow the action (403 forbidden)."""


def require_admin(actor: User, action: str) -> None:
    if actor.disabled:
        raise NotPermitted(f"{actor.username} is disabled and may not {action}")
    if actor.role != Role.ADMIN.value:
        raise NotPermitted(f"only an admin may {action}; {actor.username} is {actor.role}")
