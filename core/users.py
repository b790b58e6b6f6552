"""Users: create them with their role and wallet, disable them, and the first admin.

Public API (same rules for the API and the dashboard):

- `create_user(session, username, password, role, wallet_address=None, *, by="system") -> User`
  validates the username, the password (at least 8 characters), the role
  (admin | operator | prosumer) and the wallet (base58 of 32 bytes; required
  for a prosumer), hashes the password with argon2 and commits. Raises
  `InvalidUser` (code `invalid_format`), `core.wallets.InvalidWallet`
  (`invalid_wallet`) or `UsernameTaken` (`username_taken`).
- `set_user_disabled(session, username, disabled, *, by="system") -> User`: a
  disabled user cannot log in and their sessions end (core.sessions); enabling
  them again revives none of those. The last enabled admin cannot be disabled
  (`core.last_admin.LastAdmin`, code `last_admin`). Commits.
- `change_password(session, user, current_password, new_password, *, now) -> User`:
  checks the current password, stores the new hash and ends every session of the
  user (InvalidCredentials for a wrong current password, InvalidUser for a bad new
  one). Commits.
- `ensure_first_admin(session, settings) -> FirstAdmin | None`: on first start
  (no admin yet) creates ADMIN_USERNAME with ADMIN_PASSWORD, or with a generated
  password saved 0600 under DATA_DIR/secrets/admin_password. The caller prints
  the password only when `FirstAdmin.generated_password` is set (once, ever).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.auth import MAX_PASSWORD_LENGTH, InvalidCredentials, hash_password, verify_password
from core.config import AppSettings
from core.db.models import Role, User
from core.db.types import utcnow
from core.errors import Conflict, DomainError, NotFound
from core.events import EventType, publish
from core.last_admin import keep_an_enabled_admin
from core.secrets import ensure_secret
from core.sessions import revoke_user_sessions
from core.text import text_problem
from core.wallets import parse_wallet

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
MAX_USERNAME_LENGTH = 64


class InvalidUser(DomainError):
    code = "invalid_format"


class UsernameTaken(Conflict):
    code = "username_taken"
    field = "username"


@dataclass(frozen=True)
class FirstAdmin:
    user: User
    # Set only when this call generated the password: print it once, never log it.
    generated_password: str | None
    password_file: Path | None


def admin_password_file(settings: AppSettings) -> Path:
    return settings.data_dir / "secrets" / "admin_password"


def get_user(session: Session, username: str) -> User:
    if text_problem(username, max_length=MAX_USERNAME_LENGTH):
        raise NotFound("no user with that name", field="username")
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise NotFound(f"no user named {username!r}", field="username")
    return user


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    wallet_address: str | None = None,
    *,
    by: str = "system",
) -> User:
    """Validate and store a new user. Commits."""
    username = username.strip()
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidUser(
            "a username is 1-64 letters, digits or _ . @ - and starts with a letter or digit",
            field="username",
        )
    _check_password(password, field="password")
    return _insert_user(session, username, password, _parse_role(role), wallet_address, by=by)


def _check_password(password: str, *, field: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidUser(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            field=field,
        )
    problem = text_problem(password, max_length=MAX_PASSWORD_LENGTH)
    if problem:
        raise InvalidUser(f"the password {problem}", field=field)


def _parse_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in Role)
        raise InvalidUser(f"role must be one of {allowed}", field="role") from exc


def _insert_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    wallet_address: str | None,
    *,
    by: str,
) -> User:
    wallet = None
    if role is Role.PROSUMER or (wallet_address or "").strip():
        # A prosumer's tokens go to this wallet: no wallet, nothing to mint to.
        wallet = parse_wallet(wallet_address or "")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UsernameTaken(f"the username {username!r} is taken")
    user = User(
        username=username,
        role=role.value,
        password_hash=hash_password(password),
        wallet_address=wallet,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        session.rollback()
        raise UsernameTaken(f"the username {username!r} is taken") from exc
    publish(
        session,
        EventType.USER_CHANGED,
        {"username": username, "change": "created", "role": role.value, "by": by},
    )
    session.commit()
    return user


def set_user_disabled(
    session: Session,
    username: str,
    disabled: bool,
    *,
    by: str = "system",
    now: datetime | None = None,
) -> User:
    """Disable or re-enable a login (never the last enabled admin: LastAdmin). Commits.

    Disabling ends the user's sessions; re-enabling starts none, so tokens issued
    before the disable stay dead.
    """
    user = get_user(session, username)
    if disabled:
        keep_an_enabled_admin(session, user)
    if user.disabled != disabled:
        user.disabled = disabled
        publish(
            session,
            EventType.USER_CHANGED,
            {"username": user.username, "change": "disabled" if disabled else "enabled", "by": by},
        )
    if disabled:
        revoke_user_sessions(session, user, reason="disabled", now=now or utcnow(), by=by)
    session.commit()
    return user


def change_password(
    session: Session, user: User, current_password: str, new_password: str, *, now: datetime
) -> User:
    """Replace the user's password and end all of their sessions. Commits."""
    if not verify_password(current_password, user.password_hash):
        raise InvalidCredentials("the current password is wrong", field="current_password")
    _check_password(new_password, field="new_password")
    user.password_hash = hash_password(new_password)
    publish(
        session,
        EventType.USER_CHANGED,
        {"username": user.username, "change": "password_changed", "by": user.username},
    )
    revoke_user_sessions(session, user, reason="password_changed", now=now, by=user.username)
    session.commit()
    return user


def ensure_first_admin(session: Session, settings: AppSettings) -> FirstAdmin | None:
    """Create the first admin when there is no admin yet; None when one exists. Commits.

    ADMIN_PASSWORD and ADMIN_USERNAME are the operator's explicit choice, so the
    length and character rules for users created later do not apply to them.
    """
    if session.scalar(select(User.id).where(User.role == Role.ADMIN.value).limit(1)):
        return None
    password, generated, password_file = settings.admin_password, None, None
    if not password:
        password_file = admin_password_file(settings)
        password, created = ensure_secret(password_file, lambda: secrets.token_urlsafe(15))
        generated = password if created else None
    try:
        user = _insert_user(
            session, settings.admin_username.strip(), password, Role.ADMIN, None, by="bootstrap"
        )
    except UsernameTaken:
        # Another process (an API worker, the dashboard) created it a moment ago.
        session.rollback()
        return None
    return FirstAdmin(user=user, generated_password=generated, password_file=password_file)
