"""Login sessions kept on the server, so that a token can be taken back.

A signed token alone cannot be revoked: a copy works until it expires. So every
login writes a `login_sessions` row, the token carries its id as `jti`, and every
authenticated request (API, WebSocket, dashboard) asks `check_session` whether
the row is still live. Logout, disabling the user, a password change and an
admin's "end sessions" mark rows revoked; the WebSocket hears it through a
`user_changed` event with the ended session ids (core.event_stream ends those
subscriptions). Re-enabling a user revives nothing: a revoked row stays revoked.

Public API:

- `SessionPolicy(max_hours, idle_minutes)`, from AppSettings with `policy_of`.
- `log_in(session, username, password, secret, *, kind, policy, now) -> SessionToken`
  and `start_session(session, user, secret, *, kind, policy, now)`: commit a row.
- `check_session(session, claims, *, now) -> LiveSession`: the user and their row,
  or `InvalidToken`. Reads only; `touch_session` records activity, and callers call
  it only when `LiveSession.stale` (at most once a minute per session).
- `end_session` (logout), `end_user_sessions` (admin), and `revoke_user_sessions`
  for use cases that revoke inside their own transaction (disable, password).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.auth import InvalidToken, SessionToken, TokenClaims, authenticate, issue_token
from core.config import AppSettings
from core.db.models import LoginSession, SessionKind, User
from core.events import EventType, publish

# last_seen_at is written at most this often per session: a request costs no write.
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    max_hours: int = 8
    idle_minutes: int = 30


def policy_of(settings: AppSettings) -> SessionPolicy:
    return SessionPolicy(settings.session_max_hours, settings.session_idle_minutes)


@dataclass(frozen=True)
class LiveSession:
    user: User
    session_id: str
    expires_at: datetime
    # True when last_seen_at is older than TOUCH_INTERVAL: call touch_session.
    stale: bool


def log_in(
    session: Session,
    username: str,
    password: str,
    secret: str,
    *,
    kind: SessionKind,
    policy: SessionPolicy,
    now: datetime,
) -> SessionToken:
    """Check the credentials and start a session (core.auth.InvalidCredentials if wrong)."""
    user = authenticate(session, username, password)
    return start_session(session, user, secret, kind=kind, policy=policy, now=now)


def start_session(
    session: Session,
    user: User,
    secret: str,
    *,
    kind: SessionKind,
    policy: SessionPolicy,
    now: datetime,
) -> SessionToken:
    """A new session row for `user` and its token. Commits."""
    ttl_secs = policy.max_hours * 3600
    # Whole seconds: the token's exp is an integer and must not outlive the row.
    start = now.replace(microsecond=0)
    row = LoginSession(
        id=secrets.token_urlsafe(18),
        user_id=user.id,
        kind=kind.value,
        created_at=start,
        expires_at=start + timedelta(seconds=ttl_secs),
        last_seen_at=start,
        idle_timeout_secs=policy.idle_minutes * 60 if kind is SessionKind.DASHBOARD else None,
    )
    session.add(row)
    token = issue_token(user, secret, session_id=row.id, ttl_secs=ttl_secs, now=start)
    session.commit()
    return token


def check_session(session: Session, claims: TokenClaims, *, now: datetime) -> LiveSession:
    """The user of a live session, else InvalidToken with the reason. Writes nothing."""
    row = session.get(LoginSession, claims.session_id)
    if row is None or row.user_id != claims.user_id:
        raise InvalidToken("unknown session; log in again")
    if row.revoked_at is not None:
        raise InvalidToken(f"this session has ended ({row.revoked_reason}); log in again")
    if row.expires_at <= now:
        raise InvalidToken("the session has expired; log in again")
    idle = row.idle_timeout_secs
    if idle is not None and now - row.last_seen_at >= timedelta(seconds=idle):
        raise InvalidToken("the session ended after inactivity; log in again")
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        raise InvalidToken("this account is disabled or no longer exists")
    return LiveSession(
        user=user,
        session_id=row.id,
        expires_at=row.expires_at,
        stale=now - row.last_seen_at >= TOUCH_INTERVAL,
    )


def touch_session(session: Session, session_id: str, *, now: datetime) -> None:
    """Record activity; a no-op within TOUCH_INTERVAL of the last one. Commits."""
    session.execute(
        update(LoginSession)
        .where(
            LoginSession.id == session_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.last_seen_at <= now - TOUCH_INTERVAL,
        )
        .values(last_seen_at=now)
    )
    session.commit()


def end_session(session: Session, session_id: str, *, now: datetime, by: str) -> None:
    """Log out: this session ends everywhere at once. Commits."""
    row = session.get(LoginSession, session_id)
    if row is not None and row.revoked_at is None:
        user = session.get(User, row.user_id)
        _revoke(session, [row], user, reason="logout", now=now, by=by)
    session.commit()


def end_user_sessions(session: Session, user: User, *, now: datetime, by: str) -> int:
    """An admin's "end sessions": every live session of `user` ends. Commits."""
    ended = revoke_user_sessions(session, user, reason="ended_by_admin", now=now, by=by)
    session.commit()
    return ended


def revoke_user_sessions(
    session: Session, user: User, *, reason: str, now: datetime, by: str
) -> int:
    """Revoke every live session of `user` in the caller's transaction; how many."""
    rows = session.scalars(
        select(LoginSession).where(
            LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None)
        )
    ).all()
    _revoke(session, list(rows), user, reason=reason, now=now, by=by)
    return len(rows)


def _revoke(
    session: Session,
    rows: list[LoginSession],
    user: User | None,
    *,
    reason: str,
    now: datetime,
    by: str,
) -> None:
    if not rows:
        return
    for row in rows:
        row.revoked_at, row.revoked_reason = now, reason
    # The event is how open WebSockets of these sessions learn it (core.event_stream.hub).
    publish(
        session,
        EventType.USER_CHANGED,
        {
            "username": user.username if user else None,
            "change": "sessions_ended",
            "reason": reason,
            "sessions": [row.id for row in rows],
            "by": by,
        },
    )
