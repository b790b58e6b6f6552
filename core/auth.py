"""Users' passwords and session tokens.

Public API (the dashboard and the API use the same functions):

- `hash_password(password) -> str`: an argon2id hash (argon2-cffi defaults).
- `verify_password(password, password_hash) -> bool`: never raises for a wrong
  or malformed hash, so callers need no try/except.
- `authenticate(session, username, password) -> User`: the user, or
  `InvalidCredentials` (code `unauthenticated`) for an unknown user, a wrong
  password or a disabled account. Commits only when it upgrades an outdated hash.
- `issue_token(user, secret, session_id=..., ttl_secs=..., now=None) -> SessionToken`
  and `decode_token(token, secret, now=None) -> TokenClaims`: HS256 JWTs carrying
  `sub` (the user id as a string), `role`, `exp` and `jti` (the id of the
  server-side session row, core.sessions, that must still be live for the token
  to be honoured). Only core.sessions issues tokens: a token without a row is dead.

Argon2 is deliberately slow; it is used only at login, never on the meter path
(meter API keys are random and looked up by SHA-256, see core.meters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Role, User
from core.errors import DomainError
from core.text import is_clean_text

TOKEN_TTL_SECS = 8 * 3600
TOKEN_ALGORITHM = "HS256"
MAX_USERNAME_LENGTH = 64
MAX_PASSWORD_LENGTH = 256
MAX_TOKEN_LENGTH = 4096
# Claims are bounded before use: a validly signed token (a leaked secret, or one of
# our own bugs) must not overflow a database integer or a datetime.
MAX_USER_ID = 2**63 - 1
MAX_EXPIRY = 2**37  # unix seconds, year 6325
SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,32}")

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
    session_id: str


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
    if not credentials_are_text(username, password):
        # A NUL or a lone surrogate would fail in the driver or in argon2: no such user.
        verify_password("", _DUMMY_HASH)
        raise InvalidCredentials("wrong username or password")
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


def credentials_are_text(username: str, password: str) -> bool:
    return is_clean_text(username, max_length=MAX_USERNAME_LENGTH) and is_clean_text(
        password, max_length=MAX_PASSWORD_LENGTH
    )


def issue_token(
    user: User,
    secret: str,
    *,
    session_id: str,
    ttl_secs: int = TOKEN_TTL_SECS,
    now: datetime | None = None,
) -> SessionToken:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_secs)).timestamp()),
        "jti": session_id,
    }
    token = jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)
    return SessionToken(access_token=token, expires_in=ttl_secs, role=user.role)


def decode_token(token: str, secret: str, *, now: datetime | None = None) -> TokenClaims:
    """The claims of a valid, unexpired token; InvalidToken otherwise.

    Expiry is checked here against `now` (injectable, like every clock in core)
    rather than by pyjwt against the system clock.
    """
    now = now or datetime.now(UTC)
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise InvalidToken("invalid session token")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[TOKEN_ALGORITHM],
            options={
                "require": ["sub", "role", "exp", "jti"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
        expires_at = datetime.fromtimestamp(_bounded(claims["exp"], MAX_EXPIRY), UTC)
        user_id, role = _user_id(claims["sub"]), Role(claims["role"])
        session_id = _session_id(claims["jti"])
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError, OverflowError) as exc:
        raise InvalidToken("invalid session token") from exc
    if expires_at <= now:
        raise InvalidToken("the session has expired; log in again")
    return TokenClaims(user_id=user_id, role=role, expires_at=expires_at, session_id=session_id)


def _bounded(value: object, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise ValueError("a claim out of range")
    return value


def _user_id(value: object) -> int:
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise ValueError("sub is not a user id")
    return _bounded(int(value), MAX_USER_ID)


def _session_id(value: object) -> str:
    if not isinstance(value, str) or not SESSION_ID_PATTERN.fullmatch(value):
        raise ValueError("jti is not a session id")
    return value
