"""EventHub on both databases: who receives what, limits, overflow, disabled users, stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Role
from core.event_stream import (
    EndReason,
    EventHub,
    HubOptions,
    StreamEvent,
    Subscription,
    TooManyConnections,
    Viewer,
)
from core.events import EventType, publish
from core.users import set_user_disabled
from tests.factories import make_user

TIMEOUT = 10.0


def viewer_of(user) -> Viewer:
    return Viewer(user.id, user.username, user.role)


def run(engine: Engine, scenario: Callable[[EventHub], Awaitable[None]], **options) -> None:
    async def main() -> None:
        hub = EventHub(engine, HubOptions(**options))
        await hub.start()
        try:
            await scenario(hub)
        finally:
            await hub.stop()

    asyncio.run(main())


def write(sessions: sessionmaker[Session], user_id: int | None = None, **payload) -> int:
    with sessions() as session:
        event = publish(session, EventType.MINT_REQUESTED, payload, user_id=user_id)
        session.commit()
        return event.id


async def collect(subscription: Subscription, count: int) -> list[StreamEvent]:
    received: list[StreamEvent] = []
    async with asyncio.timeout(TIMEOUT):
        while len(received) < count:
            received.extend(await subscription.next_batch())
    return received


def test_staff_see_everything_and_prosumers_only_their_own(engine, sessions) -> None:
    with sessions() as session:
        alice, bob = make_user(session, "alice"), make_user(session, "bob")
        staff = make_user(session, "op", role=Role.OPERATOR)

    async def scenario(hub: EventHub) -> None:
        mine, theirs, everything = (hub.subscribe(viewer_of(u)) for u in (alice, bob, staff))
        written = [
            await asyncio.to_thread(write, sessions, user_id, n=n)
            for n, user_id in enumerate([alice.id, bob.id, None, alice.id])
        ]
        assert [e.id for e in await collect(everything, 4)] == written
        assert [e.id for e in await collect(mine, 2)] == [written[0], written[3]]
        assert [e.id for e in await collect(theirs, 1)] == [written[1]]
        assert hub.position == written[-1]

    run(engine, scenario)


def test_at_most_five_subscriptions_per_user(engine, sessions) -> None:
    with sessions() as session:
        alice = make_user(session, "alice")

    async def scenario(hub: EventHub) -> None:
        five = [hub.subscribe(viewer_of(alice)) for _ in range(5)]
        with pytest.raises(TooManyConnections):
            hub.subscribe(viewer_of(alice))
        hub.unsubscribe(five[0])
        hub.unsubscribe(five[0])  # twice is harmless
        hub.subscribe(viewer_of(alice))
        assert hub.stats().subscriptions == 5

    run(engine, scenario)


def test_a_subscriber_that_never_reads_is_ended_and_others_are_not(engine, sessions) -> None:
    with sessions() as session:
        staff = make_user(session, "op", role=Role.OPERATOR)

    async def scenario(hub: EventHub) -> None:
        stuck, reading = hub.subscribe(viewer_of(staff)), hub.subscribe(viewer_of(staff))
        for n in range(6):
            written = await asyncio.to_thread(write, sessions, n=n)
            assert (await collect(reading, 1))[0].id == written
        assert stuck.ended.done() and stuck.ended.result() is EndReason.OVERFLOW
        assert not reading.ended.done()
        assert hub.stats().overflows == 1

    run(engine, scenario, queue_limit=4)


def test_disabling_a_user_ends_their_subscriptions(engine, sessions) -> None:
    with sessions() as session:
        alice, staff = make_user(session, "alice"), make_user(session, "op", role=Role.OPERATOR)

    async def scenario(hub: EventHub) -> None:
        hers, watching = hub.subscribe(viewer_of(alice)), hub.subscribe(viewer_of(staff))

        def disable() -> None:
            with sessions() as session:
                set_user_disabled(session, "alice", True, by="root")

        await asyncio.to_thread(disable)
        assert (await collect(watching, 1))[0].type == EventType.USER_CHANGED
        assert await asyncio.wait_for(hers.ended, TIMEOUT) is EndReason.ACCOUNT_DISABLED
        assert not watching.ended.done()

    run(engine, scenario)


def test_events_arrive_within_the_polling_bound(engine, sessions) -> None:
    """SQLite polls (every 100 ms); PostgreSQL is woken by NOTIFY."""
    with sessions() as session:
        staff = make_user(session, "op", role=Role.OPERATOR)

    async def scenario(hub: EventHub) -> None:
        subscription = hub.subscribe(viewer_of(staff))
        delays = []
        for n in range(5):
            await asyncio.to_thread(write, sessions, n=n)
            committed = time.monotonic()
            await collect(subscription, 1)
            delays.append(time.monotonic() - committed)
        assert max(delays) < 0.25, delays

    run(engine, scenario)


def test_stopping_the_hub_ends_every_subscription(engine, sessions) -> None:
    with sessions() as session:
        alice = make_user(session, "alice")

    async def main() -> None:
        hub = EventHub(engine)
        await hub.start()
        subscription = hub.subscribe(viewer_of(alice))
        await hub.stop()
        assert subscription.ended.result() is EndReason.SHUTDOWN

    asyncio.run(main())
