"""Typed dependencies: routes declare who may call them in their signature.

`SessionDep` (read-write) and `ReadSessionDep` (read-only) sessions; `CurrentLogin`
(the live login session behind the token, core.sessions), `CurrentUser`,
`AdminUser`, `StaffUser`, `ProsumerUser` from it.

`MeterKey` is the API key a meter presented (Authorization: Bearer <key> or
X-API-Key). The ingest routes verify it as the first step of their single unit
of work (api/routes/ingest.py), not in a dependency of its own: ingest is the hot
path, and a separate dependency would cost a second database checkout and two
more thread hops per reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.body import MAX_BATCH_BODY_BYTES, MAX_READING_BODY_BYTES, JsonBody, json_body
from api.state import ApiState
from core.auth import InvalidToken, decode_token
from core.db.models import Role, User
from core.errors import Forbidden
from core.meters import MeterUnauthenticated
from core.sessions import LiveSession, check_session, touch_session


async def get_state(request: Request) -> ApiState:
    # async: a plain function would be sent to the thread pool on every request.
    return request.app.state.api


StateDep = Annotated[ApiState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with state.core.sessions() as session:
        yield session


def get_read_session(state: StateDep) -> Iterator[Session]:
    with state.read_session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]

_user_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="UserToken",
    bearerFormat="JWT",
    description="a session token from POST /api/auth/login",
)
_meter_bearer = HTTPBearer(
    auto_error=False, scheme_name="MeterKey", description="the meter's API key as a bearer token"
)
_meter_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="MeterApiKey", description="the meter's API key"
)


def current_login(
    state: StateDep,
    session: ReadSessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_user_bearer)],
) -> LiveSession:
    """The token's session, checked against its row on every request (revoked -> 401)."""
    if credentials is None:
        raise InvalidToken("log in first and send Authorization: Bearer <token>")
    now = state.now()
    claims = decode_token(credentials.credentials, state.secret, now=now)
    live = check_session(session, claims, now=now)
    if live.stale:
        with state.core.sessions() as writer:
            touch_session(writer, live.session_id, now=now)
    return live


CurrentLogin = Annotated[LiveSession, Depends(current_login)]


def current_user(login: CurrentLogin) -> User:
    return login.user


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(*roles: Role) -> Callable[[User], User]:
    allowed = {role.value for role in roles}

    def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise Forbidden(f"this needs the role {' or '.join(sorted(allowed))}")
        return user

    return check


AdminUser = Annotated[User, Depends(require_role(Role.ADMIN))]
StaffUser = Annotated[User, Depends(require_role(Role.ADMIN, Role.OPERATOR))]
ProsumerUser = Annotated[User, Depends(require_role(Role.PROSUMER))]


async def presented_meter_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_meter_bearer)],
    header: Annotated[str | None, Depends(_meter_header)],
) -> str:
    """The key as presented; empty when there is none (refused as unauthenticated).

    Both headers at once are refused: silently preferring one would hide a client bug
    or a proxy that adds its own credential.
    """
    if header and bearer:
        raise MeterUnauthenticated(
            "send the meter key once: Authorization: Bearer <key> or X-API-Key, not both"
        )
    return header or (bearer.credentials if bearer else "")


MeterKey = Annotated[str, Depends(presented_meter_key)]
ReadingBody = Annotated[JsonBody, Depends(json_body(MAX_READING_BODY_BYTES))]
BatchBody = Annotated[JsonBody, Depends(json_body(MAX_BATCH_BODY_BYTES))]
