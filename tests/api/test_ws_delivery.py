"""WS /ws delivery over a real server on both databases: resume without gap or duplicate,
commits only, and a stuck client closed without slowing anyone else."""

from __future__ import annotations

import asyncio
import os
import socket as sockets
import threading
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import Event, User
from core.event_stream import HubOptions
from tests.api.ws_support import (
    close_code,
    hub_of,
    messages_until,
    next_message,
    open_socket,
    rolled_back_event,
    token_for,
    until,
    write_event,
    ws_server,
)
from tests.factories import make_user


@pytest.fixture
def alice(session: Session) -> User:
    return make_user(session, "alice")


def committed_ids(app: App, user_id: int | None = None) -> list[int]:
    query = select(Event.id).order_by(Event.id)
    if user_id is not None:
        query = query.where(Event.user_id == user_id)
    with app.sessions() as session:
        return list(session.scalars(query))


def test_resuming_with_since_misses_nothing_and_repeats_nothing(
    app: App, alice: User, operator: User
) -> None:
    """Clients drop and resume every few messages while a writer keeps committing."""
    total = 240
    resumed_while_writing = []

    def write_share(first: int) -> None:
        # Two writers: on PostgreSQL their commits overtake each other's ids.
        for n in range(first, total, 2):
            write_event(app, user_id=alice.id if n % 3 == 0 else None, n=n)
            time.sleep(0.004)  # pacing, so the resumes overlap the writing

    writing, other_writer = (threading.Thread(target=write_share, args=(i,)) for i in (0, 1))

    async def follow(base: str, token: str, expected: int) -> list[int]:
        received: list[int] = []
        while len(received) < expected:
            since = received[-1] if received else 0
            resumed_while_writing.append(writing.is_alive() and bool(received))
            # max_queue=None: websockets stops reading when its queue is full, and then
            # cannot see the server's reply to its close until close_timeout.
            async with open_socket(base, token, since=since, max_queue=None) as socket:
                for _ in range(min(17, expected - len(received))):
                    received.append((await next_message(socket))["id"])
        return received

    async def scenario(base: str) -> tuple[list[int], list[int]]:
        writing.start()
        other_writer.start()
        return await asyncio.gather(
            follow(base, token_for(app, operator), total),
            follow(base, token_for(app, alice), total // 3),
        )

    with ws_server(app) as (base, _):
        staff, hers = asyncio.run(scenario(base))
        writing.join(60)
        other_writer.join(60)
    assert staff == committed_ids(app)
    assert hers == committed_ids(app, alice.id)
    assert sum(resumed_while_writing) >= 2


def test_since_beyond_what_exists_waits_for_newer_events(app: App, operator: User) -> None:
    async def scenario(base: str) -> None:
        first = await asyncio.to_thread(write_event, app, n=1)
        second = await asyncio.to_thread(write_event, app, n=2)
        async with open_socket(base, token_for(app, operator), since=second) as socket:
            third = await asyncio.to_thread(write_event, app, n=3)
            assert (await next_message(socket))["id"] == third
        async with open_socket(base, token_for(app, operator), since=first) as socket:
            assert [m["id"] for m in await messages_until(socket, lambda m: m["id"] == third)] == [
                second,
                third,
            ]

    with ws_server(app) as (base, _):
        asyncio.run(scenario(base))


def test_a_rolled_back_change_sends_nothing(app: App, alice: User, operator: User) -> None:
    async def scenario(base: str) -> None:
        async with (
            open_socket(base, token_for(app, operator)) as staff,
            open_socket(base, token_for(app, alice)) as hers,
        ):

            def roll_back_then_commit() -> int:
                with app.sessions() as session:
                    rolled_back_event(session, user_id=alice.id)
                    rolled_back_event(session)
                return write_event(app, user_id=alice.id, after="the rollback")

            committed = await asyncio.to_thread(roll_back_then_commit)
            for socket in (staff, hers):
                message = await next_message(socket)
                assert (message["id"], message["after"]) == (committed, "the rollback")

    with ws_server(app) as (base, _):
        asyncio.run(scenario(base))


def small_window_socket(base: str) -> sockets.socket:
    """A connected socket that can buffer almost nothing, so a reader that stops reading
    pushes back on the server within a few messages."""
    address = urlsplit(base)
    sock = sockets.socket(sockets.AF_INET, sockets.SOCK_STREAM)
    sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)
    sock.connect((address.hostname, address.port))
    return sock


def test_a_client_that_never_reads_is_closed_while_others_keep_receiving(
    app: App, operator: User
) -> None:
    big = os.urandom(24_000).hex()  # incompressible, so buffers fill in a few events

    async def scenario(base: str, api) -> tuple[list[float], tuple[int, str]]:
        token = token_for(app, operator)
        hub = hub_of(api)
        async with (
            open_socket(
                base, token, sock=small_window_socket(base), compression=None, max_queue=1
            ) as stuck,
            open_socket(base, token, compression=None) as reading,
        ):
            await until(lambda: hub.stats().subscriptions == 2)
            delays: list[float] = []
            for n in range(400):
                written = await asyncio.to_thread(write_event, app, n=n, blob=big)
                committed = time.monotonic()
                assert (await next_message(reading))["id"] == written
                delays.append(time.monotonic() - committed)
                if hub.stats().overflows:
                    break
            assert hub.stats().overflows == 1, "the stuck client was never closed"
            # The stuck one is dropped; the other was never held up and stays subscribed.
            await until(lambda: hub.stats().subscriptions == 1)
            written = await asyncio.to_thread(write_event, app, n="after")
            assert (await next_message(reading))["id"] == written
            return delays, await close_code(stuck)

    # A quick poll on SQLite: this test waits for each event before writing the next.
    with ws_server(app, HubOptions(queue_limit=8, poll_interval=0.01)) as (base, api):
        delays, (code, reason) = asyncio.run(scenario(base, api))
    assert max(delays) < 1.0, delays
    assert code == 1013 and "too slow" in reason
