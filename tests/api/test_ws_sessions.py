"""WS /ws honours the login session: an ended session is refused, and an open socket closes."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.types import utcnow
from core.sessions import end_user_sessions
from core.users import set_user_disabled
from tests.api.ws_support import close_code, next_message, open_socket, write_event, ws_server
from tests.factories import DEFAULT_PASSWORD, make_user


def _log_in(http: str, username: str) -> str:
    body = {"username": username, "password": DEFAULT_PASSWORD}
    response = httpx.post(f"{http}/api/auth/login", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_logout_closes_the_socket_and_the_token_cannot_reconnect(
    app: App, session: Session
) -> None:
    make_user(session, "op", role="operator")

    async def scenario(base: str, http: str) -> None:
        token, other = await asyncio.to_thread(_log_in, http, "op"), None
        other = await asyncio.to_thread(_log_in, http, "op")
        async with open_socket(base, token) as socket, open_socket(base, other) as stays:
            response = await asyncio.to_thread(
                httpx.post, f"{http}/api/auth/logout", headers=_bearer(token), timeout=10
            )
            assert response.status_code == 204
            assert await close_code(socket) == (4401, "this session has ended; log in again")
            # The same user's other session keeps its stream.
            written = await asyncio.to_thread(write_event, app, "reconcile_mismatch", a=1)
            while (await next_message(stays))["id"] != written:
                pass
        async with open_socket(base, token) as again:
            code, reason = await close_code(again)
        assert (code, reason) == (4401, "this session has ended (logout); log in again")

    with ws_server(app) as (base, _):
        asyncio.run(scenario(base, base.replace("ws://", "http://")))


def test_end_sessions_closes_sockets_and_reenabling_revives_no_token(
    app: App, session: Session
) -> None:
    alice = make_user(session, "alice")

    async def scenario(base: str, http: str) -> None:
        token = await asyncio.to_thread(_log_in, http, "alice")
        async with open_socket(base, token) as socket:

            def end() -> None:
                with app.sessions() as writer:
                    end_user_sessions(writer, alice, now=utcnow(), by="root")

            await asyncio.to_thread(end)
            assert (await close_code(socket))[0] == 4401
        token = await asyncio.to_thread(_log_in, http, "alice")

        def disable_and_enable() -> None:
            with app.sessions() as writer:
                set_user_disabled(writer, "alice", True, by="root")
                set_user_disabled(writer, "alice", False, by="root")

        await asyncio.to_thread(disable_and_enable)
        async with open_socket(base, token) as again:
            assert await close_code(again) == (
                4401,
                "this session has ended (disabled); log in again",
            )

    with ws_server(app) as (base, _):
        asyncio.run(scenario(base, base.replace("ws://", "http://")))
