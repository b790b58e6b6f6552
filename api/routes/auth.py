"""Logins: a session token for a username and password, logout, a password change.

Each login is a server-side session (core.sessions): its token is honoured only
while the session row is live, so logout and a password change take effect at once.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import CurrentLogin, CurrentUser, SessionDep, StateDep
from api.openapi import error_responses
from api.schemas import LoginIn, PasswordChange, TokenOut, UserListItem
from core.auth import SessionToken
from core.db.models import SessionKind, User
from core.sessions import end_session, log_in, start_session
from core.users import change_password

router = APIRouter(tags=["auth"])


def _token_out(token: SessionToken) -> TokenOut:
    return TokenOut(access_token=token.access_token, role=token.role, expires_in=token.expires_in)


@router.post(
    "/api/auth/login",
    response_model=TokenOut,
    summary="Log in: a bearer token for the other endpoints",
    description=(
        "Starts a session (its id is the token's `jti`) that lasts SESSION_MAX_HOURS "
        "unless ended sooner. Disabled accounts cannot log in. At most 30 attempts "
        "per minute per client address and 10 per username."
    ),
    responses=error_responses("unauthenticated", "invalid_format", "rate_limited"),
)
def login(body: LoginIn, request: Request, session: SessionDep, state: StateDep) -> TokenOut:
    client = state.client_of(request)  # X-Forwarded-For only from FORWARDED_ALLOW_IPS
    state.login_throttle.acquire(client, body.username)  # shared with the dashboard
    token = log_in(
        session,
        body.username,
        body.password,
        state.secret,
        kind=SessionKind.API,
        policy=state.sessions,
        now=state.now(),
    )
    return _token_out(token)


@router.post(
    "/api/auth/logout",
    status_code=204,
    summary="End this session: its token stops working everywhere (beyond the contract)",
    responses=error_responses("unauthenticated"),
)
def logout(login: CurrentLogin, session: SessionDep, state: StateDep) -> Response:
    end_session(session, login.session_id, now=state.now(), by=login.user.username)
    return Response(status_code=204)


@router.post(
    "/api/auth/password",
    response_model=TokenOut,
    summary="Change your password: every session of yours ends (beyond the contract)",
    description="Answers with a token for a new session, so the caller stays logged in.",
    responses=error_responses("unauthenticated", "invalid_format"),
)
def password(
    body: PasswordChange, user: CurrentUser, session: SessionDep, state: StateDep
) -> TokenOut:
    now = state.now()
    mine = session.get(User, user.id)
    assert mine is not None  # CurrentUser just read it
    change_password(session, mine, body.current_password, body.new_password, now=now)
    token = start_session(
        session, mine, state.secret, kind=SessionKind.API, policy=state.sessions, now=now
    )
    return _token_out(token)


@router.get(
    "/api/auth/me",
    response_model=UserListItem,
    summary="Who the token belongs to (beyond the contract)",
    responses=error_responses("unauthenticated"),
)
def me(user: CurrentUser) -> UserListItem:
    return UserListItem(
        id=user.id,
        username=user.username,
        role=user.role,
        wallet_address=user.wallet_address,
        disabled=user.disabled,
    )
