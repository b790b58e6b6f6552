"""WS /ws over a real uvicorn server on both databases: who receives what, who is refused."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from api.ws import _REDACT
from core.bootstrap import App
from core.db.models import Role, User
from core.users import set_user_disabled
from tests.api.ws_support import (
    close_code,
    hub_of,
    messages_until,
    next_message,
    open_socket,
    token_for,
    until,
    write_event,
    ws_server,
)
from tests.factories import make_meter, make_user


@pytest.fixture
def alice(session: Session) -> User:
    return make_user(session, "alice")


@pytest.fixture
def bob(session: Session) -> User:
    return make_user(session, "bob")


def test_each_user_receives_only_what_they_may_see(
    app: App, alice: User, bob: User, operator: User
) -> None:
    async def scenario(base: str) -> None:
        async with (
            open_socket(base, token_for(app, alice)) as hers,
            open_socket(base, token_for(app, bob)) as his,
            open_socket(base, token_for(app, operator)) as staff,
        ):
            for_alice = await asyncio.to_thread(write_event, app, user_id=alice.id, n=1)
            for_bob = await asyncio.to_thread(write_event, app, user_id=bob.id, n=2)
            staff_only = await asyncio.to_thread(write_event, app, "settings_changed", key="x")
            last_alice = await asyncio.to_thread(write_event, app, user_id=alice.id, n=3)
            seen = await messages_until(staff, lambda m: m["id"] == last_alice)
            assert [m["id"] for m in seen] == [for_alice, for_bob, staff_only, last_alice]
            mine = await messages_until(hers, lambda m: m["id"] == last_alice)
            assert [m["id"] for m in mine] == [for_alice, last_alice]
            assert await next_message(his) == {**seen[1]}
            # The CONTRACT's shape: id, type, timestamp, then the event's own fields.
            assert set(seen[0]) == {"id", "type", "timestamp", "n"}
            assert seen[0]["type"] == "meter_reading_received"
            datetime.fromisoformat(seen[0]["timestamp"])

    with ws_server(app) as (base, _):
        asyncio.run(scenario(base))


def test_a_bearer_header_works_like_the_query_token(app: App, operator: User) -> None:
    async def scenario(base: str) -> None:
        headers = {"Authorization": f"Bearer {token_for(app, operator)}"}
        async with open_socket(base, additional_headers=headers) as staff:
            written = await asyncio.to_thread(write_event, app, n=1)
            assert (await next_message(staff))["id"] == written

    with ws_server(app) as (base, _):
        asyncio.run(scenario(base))


def test_refused_connections_are_told_why(app: App, session: Session, alice: User) -> None:
    meter = make_meter(session, alice)
    gone = make_user(session, "gone")
    disabled = make_user(session, "disabled")
    set_user_disabled(session, "disabled", True)
    long_ago = datetime.now(UTC) - timedelta(days=1)
    refusals = {
        "no token": (None, None),
        "garbage": ("not-a-token", None),
        "forged": (token_for(app, alice)[:-4] + "AAAA", None),
        "meter key": (meter.api_key, None),
        "expired": (token_for(app, alice, now=long_ago), None),
        "disabled": (token_for(app, disabled), None),
        "unknown user": (token_for(app, gone), None),
        "bad since": (token_for(app, alice), "-1"),
        "odd digits": (token_for(app, alice), "%C2%B2"),  # "²" is a digit to str.isdigit
    }
    session.delete(gone)
    session.commit()

    async def scenario(base: str) -> dict[str, tuple[int, str]]:
        results = {}
        for name, (token, since) in refusals.items():
            async with open_socket(base, token, since=since) as socket:
                results[name] = await close_code(socket)
        return results

    with ws_server(app) as (base, _):
        results = asyncio.run(scenario(base))
    codes = {name: code for name, (code, _) in results.items()}
    assert codes == {name: 4401 for name in refusals} | {"bad since": 4400, "odd digits": 4400}
    assert "meter API keys" in results["meter key"][1]
    assert "expired" in results["expired"][1]
    assert "disabled" in results["disabled"][1]
    assert all(reason for _, reason in results.values())


def test_the_sixth_connection_of_a_user_is_refused(app: App, alice: User, operator: User):
    async def scenario(base: str, api) -> None:
        token = token_for(app, alice)
        five = [await open_socket(base, token) for _ in range(5)]
        try:
            async with open_socket(base, token) as sixth:
                code, reason = await close_code(sixth)
            assert code == 4429 and "at most 5" in reason
            # Other users are not affected, and the five still receive.
            async with open_socket(base, token_for(app, operator)) as staff:
                written = await asyncio.to_thread(write_event, app, user_id=alice.id)
                assert (await next_message(staff))["id"] == written
            for socket in five:
                assert (await next_message(socket))["id"] == written
            await five.pop().close()
            await until(lambda: hub_of(api).stats().subscriptions == 4)
            async with open_socket(base, token) as again:
                written = await asyncio.to_thread(write_event, app, user_id=alice.id)
                assert (await next_message(again))["id"] == written
        finally:
            for socket in five:
                await socket.close()

    with ws_server(app) as (base, api):
        asyncio.run(scenario(base, api))


def test_the_connection_closes_when_the_session_expires(app: App, operator: User) -> None:
    async def scenario(base: str) -> tuple[int, str]:
        async with open_socket(base, token_for(app, operator, ttl_secs=1)) as socket:
            return await close_code(socket, timeout=5)

    with ws_server(app) as (base, _):
        code, reason = asyncio.run(scenario(base))
    assert (code, reason) == (4401, "the session has expired; log in again")


def test_disabling_a_user_closes_their_connections(app: App, alice: User) -> None:
    async def scenario(base: str) -> tuple[int, str]:
        async with open_socket(base, token_for(app, alice)) as socket:

            def disable() -> None:
                with app.sessions() as session:
                    set_user_disabled(session, "alice", True, by="root")

            await asyncio.to_thread(disable)
            return await close_code(socket)

    with ws_server(app) as (base, _):
        assert asyncio.run(scenario(base)) == (4401, "this account has been disabled")


def test_operators_and_admins_are_staff(app: App, session: Session) -> None:
    root = make_user(session, "root", role=Role.ADMIN)

    async def scenario(base: str) -> None:
        async with open_socket(base, token_for(app, root)) as socket:
            written = await asyncio.to_thread(write_event, app, "reconcile_mismatch", a=1)
            assert (await next_message(socket))["id"] == written

    with ws_server(app) as (base, _):
        asyncio.run(scenario(base))


def test_tokens_in_websocket_paths_are_redacted_from_uvicorn_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/ws?token=aaa.bbb.ccc&since=4"),
        None,
    )
    assert _REDACT.filter(record)
    assert "/ws?token=[redacted]&since=4" in record.getMessage()
    assert "aaa" not in record.getMessage()
