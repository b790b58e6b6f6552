"""WebSocket test support: a real uvicorn server with the event hub, and client helpers.

Clients are the `websockets` library's asyncio client; every wait is a message
awaited with a timeout or a condition polled against a deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.app import create_app
from core.bootstrap import App
from core.db.models import User
from core.event_stream import EventHub, HubOptions
from core.events import publish
from tests.api.server import serve
from tests.factories import login_token

TIMEOUT = 10.0


@contextmanager
def ws_server(app: App, options: HubOptions | None = None) -> Iterator[tuple[str, FastAPI]]:
    """The API on a free port; yields its ws:// base URL and the FastAPI app."""
    api = create_app(app, config_ttl_secs=0, create_first_admin=False)
    api.state.event_hub_options = options
    with serve(api) as base_url:
        deadline = time.monotonic() + TIMEOUT
        while not hasattr(api.state, "event_hub"):  # the lifespan runs in the server thread
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.01)
        yield base_url.replace("http://", "ws://"), api


def hub_of(api: FastAPI) -> EventHub:
    return api.state.event_hub


def token_for(app: App, user: User, **kwargs: Any) -> str:
    with app.sessions() as session:
        return login_token(session, user, app.api_secret_key(), **kwargs)


def open_socket(
    base: str, token: str | None = None, since: int | str | None = None, **kwargs: Any
) -> connect:
    """A connect() to /ws with the token (and since) in the query string."""
    query = [f"token={token}"] if token is not None else []
    if since is not None:
        query.append(f"since={since}")
    url = f"{base}/ws" + ("?" + "&".join(query) if query else "")
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("close_timeout", 2)
    kwargs.setdefault("proxy", None)
    return connect(url, **kwargs)


async def next_message(socket: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def messages_until(
    socket: ClientConnection, done: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
) -> list[dict[str, Any]]:
    """Messages up to and including the first for which `done` is true."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not received or not done(received[-1]):
        received.append(await next_message(socket, max(0.01, deadline - time.monotonic())))
    return received


async def close_code(socket: ClientConnection, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Read until the server closes; the close code and reason it sent."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await socket.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, f"closed without a close frame: {closed!r}"
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("unreachable")


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll `condition` until true, failing at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


def write_event(
    app: App, kind: str = "meter_reading_received", user_id: int | None = None, **payload: Any
) -> int:
    """Publish one event in its own committed transaction; its id."""
    with app.sessions() as session:
        event = publish(session, kind, payload, user_id=user_id)
        session.commit()
        return event.id


def rolled_back_event(session: Session, user_id: int | None = None) -> None:
    publish(session, "meter_reading_received", {"rolled": "back"}, user_id=user_id)
    session.flush()
    session.rollback()
