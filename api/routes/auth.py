"""Logins: a session token for a username and password."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import CurrentUser, SessionDep, StateDep
from api.openapi import error_responses
from api.schemas import LoginIn, TokenOut, UserListItem
from core.auth import authenticate, issue_token

router = APIRouter(tags=["auth"])


@router.post(
    "/api/auth/login",
    response_model=TokenOut,
    summary="Log in: a bearer token for the other endpoints",
    description="Disabled accounts cannot log in. At most 30 attempts per minute per client.",
    responses=error_responses("unauthenticated", "invalid_format", "rate_limited"),
)
def login(body: LoginIn, request: Request, session: SessionDep, state: StateDep) -> TokenOut:
    client = state.client_of(request)  # X-Forwarded-For only from FORWARDED_ALLOW_IPS
    state.login_limiter.acquire(("login", client), "login attempts")
    user = authenticate(session, body.username, body.password)
    token = issue_token(user, state.secret, now=state.now())
    return TokenOut(access_token=token.access_token, role=token.role, expires_in=token.expires_in)


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
