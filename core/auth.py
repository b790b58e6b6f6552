"""Users' passwords and session tokens.

Public API (the dashboard and the API use the same functions):

- `hash_password(password) -> str`: an argon2id hash (argon2-cffi defaults).
- `verify_password(password, password_hash) -> bool`: never raises for a wrong
  or malformed hash, so callers need no try/except.
- `authenticate(session, username, password) -> User`: the user, or
  `InvalidCredentials` (code `unauthenticated`) for an unknown user, a wrong
  password or a disabled account. Commits only when it upgrades an outdated hash.
- `issue_token(user, secret, ttl_secs=..., now=None) -> SessionToken` and
  `decode_token(token, secret, now=None) -> TokenClaims`: HS256 JWTs carrying
  `sub` (the user id as a string), `role` and `exp`.

Argon2 is deliberately slow; it is used only at login, never on the meter path
(meter API keys are random and looked up by SHA-256, see core.meters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Role, User
from core.errors import DomainError

TOKEN_TTL_SECS = 12 * 3600
TOKEN_ALGORITHM = "HS256"

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a miss costs as long as a hit
# and response times do not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class InvalidCredentials(DomainError):
    code = "unauthenticated"


class InvalidToken(DomainError):
    code = "unauthenticated"


@dataclass(frozen=True)
class SessionToken:
    access_token: str
    expires_in: int
    role: str
    token_type: str = "bearer"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    role: Role
    expires_at: datetime


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """True when `password` matches; False for a mismatch or an unreadable hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user with these credentials, else InvalidCredentials."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        verify_password(password, _DUMMY_HASH)
        raise InvalidCredentials("wrong username or password")
    if not verify_password(password, user.password_hash):
        raise InvalidCredentials("wrong username or password")
    if user.disabled:
        # Said only to someone who knows the password.
        raise InvalidCredentials("this account is disabled")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.commit()
    return user


def issue_token(
    user: User, secret: str, *, ttl_secs: int = TOKEN_TTL_SECS, now: datetime | None = None
) -> SessionToken:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_secs)).timestamp()),
    }
    token = jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)
    return SessionToken(access_token=token, expires_in=ttl_secs, role=user.role)


def decode_token(token: str, secret: str, *, now: datetime | None = None) -> TokenClaims:
    """The claims of a valid, unexpired token; InvalidToken otherwise.

    Expiry is checked here against `now` (injectable, like every clock in core)
    rather than by pyjwt against the system clock.
    """
    now = now or datetime.now(UTC)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[TOKEN_ALGORITHM],
            options={
                "require": ["sub", "role", "exp"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        user_id, role = int(claims["sub"]), Role(claims["role"])
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("invalid session token") from exc
    if expires_at <= now:
        raise InvalidToken("the session has expired; log in again")
    return TokenClaims(user_id=user_id, role=role, expires_at=expires_at)
