"""WS /ws?mode=summary: staff get one tally per second instead of every event."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlalchemy.orm import Session
from websockets.asyncio.client import connect

from api import ws
from core.bootstrap import App
from core.db.models import User
from tests.api.ws_support import close_code, next_message, token_for, write_event, ws_server
from tests.factories import make_user


def summary_socket(base: str, token: str, extra: str = "") -> connect:
    return connect(f"{base}/ws?token={token}&mode=summary{extra}", open_timeout=10, proxy=None)


def test_a_burst_of_events_arrives_as_few_tallies_that_add_up(app: App, operator: User) -> None:
    # The oracle: what the test wrote, counted here.
    written: Counter[str] = Counter()
    ids: list[int] = []

    async def scenario(base: str) -> None:
        async with summary_socket(base, token_for(app, operator)) as socket:

            def burst() -> None:
                for n in range(60):
                    kind = "meter_reading_received" if n % 3 else "tokens_minted"
                    ids.append(write_event(app, kind, n=n))
                    written[kind] += 1

            started = time.monotonic()
            await asyncio.to_thread(burst)
            tallies = []
            while sum(t["events"] for t in tallies) < len(ids):
                tallies.append(await next_message(socket))
            elapsed = time.monotonic() - started
        assert all(
            set(t) == {"type", "timestamp", "events", "first_id", "last_id", "by_type"}
            for t in tallies
        )
        assert {t["type"] for t in tallies} == {"summary"}
        merged: Counter[str] = Counter()
        for tally in tallies:
            merged.update(tally["by_type"])
            assert tally["events"] == sum(tally["by_type"].values())
        assert merged == written
        assert tallies[0]["first_id"] == ids[0] and tallies[-1]["last_id"] == ids[-1]
        assert [t["first_id"] for t in tallies[1:]] == [
            ids[ids.index(t["last_id"]) + 1] for t in tallies[:-1]
        ]
        # Coalesced: at most one message per interval, not one per event.
        assert len(tallies) <= elapsed / ws.SUMMARY_INTERVAL_SECS + 1, (len(tallies), elapsed)

    with ws_server(app) as (base, _):
        asyncio.run(scenario(base))


def test_only_staff_may_ask_and_a_summary_takes_no_since(
    app: App, session: Session, operator: User
) -> None:
    prosumer = make_user(session, "carol")

    async def scenario(base: str) -> None:
        async with summary_socket(base, token_for(app, prosumer)) as socket:
            assert await close_code(socket) == (
                4403,
                "the summary stream is for operators and admins",
            )
        async with summary_socket(base, token_for(app, operator), "&since=0") as socket:
            code, reason = await close_code(socket)
            assert code == 4400 and "since" in reason
        async with connect(
            f"{base}/ws?token={token_for(app, operator)}&mode=every", open_timeout=10, proxy=None
        ) as socket:
            code, reason = await close_code(socket)
            assert code == 4400 and "mode" in reason

    with ws_server(app) as (base, _):
        asyncio.run(scenario(base))
