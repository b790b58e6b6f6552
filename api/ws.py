"""WS /ws?token=JWT[&since=event_id|&mode=summary]: the live event feed for logged-in users.

A refused client is accepted and then closed, so it reads a close code and a
reason instead of a bare HTTP 403. An accepted one is subscribed to the
process's EventHub before its handshake completes, then replays what it missed
from the events table up to the hub's position at that instant, then gets live
events: no gap, no duplicate. Close codes (docs/EVENTS.md):

4400 bad `since` or `mode`; 4401 no, bad or expired session token, a session
that was ended (logout, password change, an admin) or is ended while connected,
an unknown or disabled user, or a meter key; 4403 a summary asked for by a
non-staff user; 4429 more than 5 connections for this user; 1013 the client fell
too far behind; 1001 the server is shutting down; 1011 server error.

`mode=summary` (staff only) coalesces: at fleet rate a console needs the
pulse, not a thousand messages a second, so the connection gets at most one
message per SUMMARY_INTERVAL_SECS counting the events since the last one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from api.state import ApiState
from core.auth import InvalidToken, decode_token
from core.event_stream import (
    EndReason,
    EventHub,
    HubOptions,
    Subscription,
    TooManyConnections,
    Viewer,
    read_events,
)
from core.sessions import check_session, touch_session

log = logging.getLogger(__name__)

BAD_REQUEST, UNAUTHENTICATED, FORBIDDEN, TOO_MANY = 4400, 4401, 4403, 4429
SUMMARY = "summary"
SUMMARY_INTERVAL_SECS = 1.0
GOING_AWAY, SERVER_ERROR, TRY_AGAIN_LATER = 1001, 1011, 1013
REPLAY_PAGE = 500
CLOSE_TIMEOUT_SECS = 5.0  # a close frame queued behind a stalled client is given up after this


class Refused(Exception):
    """The connection is closed before it subscribes, with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class _RedactTokens(logging.Filter):
    """uvicorn logs each WebSocket's path with its query string: keep tokens out of logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


_TOKEN = re.compile(r"([?&]token=)[^&\s\"]+")
_REDACT = _RedactTokens()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One hub per process; tests and the bench may set `app.state.event_hub_options`."""
    logging.getLogger("uvicorn.error").addFilter(_REDACT)  # a set: adding twice is harmless
    state: ApiState = app.state.api
    options = getattr(app.state, "event_hub_options", None) or HubOptions()
    hub = EventHub(state.core.engine, options)
    await hub.start()
    app.state.event_hub = hub
    try:
        yield
    finally:
        await hub.stop()


router = APIRouter(lifespan=_lifespan)


@router.websocket("/ws")
async def event_socket(websocket: WebSocket) -> None:
    state: ApiState = websocket.app.state.api
    hub: EventHub = websocket.app.state.event_hub
    try:
        viewer, lifetime = await run_in_threadpool(_authenticate, state, _token_of(websocket))
        since = _since_of(websocket)
        summary = _summary_of(websocket, viewer, since)
        subscription = hub.subscribe(viewer)
    except Exception as error:
        # Accepted only to be closed: a refused handshake would hide the reason.
        with suppress(WebSocketDisconnect, WebSocketDisconnected, OSError):
            await websocket.accept()
            await _close(websocket, *_refusal(error))
        return
    try:
        # Subscribed before the handshake completes: once the client's connect returns,
        # every later commit reaches it, even without `since`.
        await websocket.accept()
        code, reason = await _serve(websocket, state, subscription, since, lifetime, summary)
    except (WebSocketDisconnect, WebSocketDisconnected, OSError):
        return  # gone during the handshake
    finally:
        hub.unsubscribe(subscription)
    if code is not None:
        await _close(websocket, code, reason)


def _refusal(error: Exception) -> tuple[int, str]:
    if isinstance(error, Refused):
        return error.code, error.reason
    if isinstance(error, TooManyConnections):
        return TOO_MANY, error.message
    log.error("could not open an event socket", exc_info=error)
    return SERVER_ERROR, "server error; try again"


def _token_of(websocket: WebSocket) -> str:
    token = websocket.query_params.get("token")
    if token:
        return token
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def _since_of(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("since")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise Refused(BAD_REQUEST, "since must be an event id (a non-negative integer)")
    return int(raw)


def _summary_of(websocket: WebSocket, viewer: Viewer, since: int | None) -> bool:
    """True for `mode=summary`: staff only, and live only (a summary has no event ids)."""
    mode = websocket.query_params.get("mode")
    if mode is None or mode == "":
        return False
    if mode != SUMMARY:
        raise Refused(BAD_REQUEST, "mode must be summary (or absent for every event)")
    if not viewer.is_staff:
        raise Refused(FORBIDDEN, "the summary stream is for operators and admins")
    if since is not None:
        raise Refused(BAD_REQUEST, "a summary starts now: it takes no since")
    return True


def _authenticate(state: ApiState, token: str) -> tuple[Viewer, float]:
    """The viewer behind a session token and the seconds its session has left."""
    if not token:
        raise Refused(UNAUTHENTICATED, "log in first: pass ?token=<session token>")
    if token.count(".") != 2:
        raise Refused(UNAUTHENTICATED, "not a session token (meter API keys cannot subscribe)")
    now = state.now()
    try:
        claims = decode_token(token, state.secret, now=now)
        with state.read_session() as session:
            live = check_session(session, claims, now=now)
            user = live.user
            viewer = Viewer(user.id, user.username, user.role, live.session_id)
    except InvalidToken as error:
        raise Refused(UNAUTHENTICATED, error.message) from error
    if live.stale:
        with state.core.sessions() as writer:
            touch_session(writer, live.session_id, now=now)
    return viewer, (live.expires_at - now).total_seconds()


async def _serve(
    websocket: WebSocket,
    state: ApiState,
    subscription: Subscription,
    since: int | None,
    lifetime: float,
    summary: bool = False,
) -> tuple[int | None, str]:
    """Forward until the client leaves (None) or the server must close: (code, reason)."""
    forward = asyncio.ensure_future(
        _forward_summaries(websocket, subscription)
        if summary
        else _forward(websocket, state, subscription, since)
    )
    client_gone = asyncio.ensure_future(_until_disconnect(websocket))
    expiry = asyncio.ensure_future(asyncio.sleep(max(lifetime, 0)))
    tasks = {forward, client_gone, expiry}
    try:
        await asyncio.wait({*tasks, subscription.ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if subscription.ended.done():
        return _ending(subscription.ended.result(), subscription)
    if expiry.done() and not expiry.cancelled():
        return UNAUTHENTICATED, "the session has expired; log in again"
    if forward.done() and not forward.cancelled() and forward.exception() is not None:
        error = forward.exception()
        if isinstance(error, WebSocketDisconnect | WebSocketDisconnected | OSError):
            return None, ""
        log.error("event socket failed", exc_info=error)
        return SERVER_ERROR, "server error; reconnect with since=<last id>"
    return None, ""


def _ending(reason: EndReason, subscription: Subscription) -> tuple[int, str]:
    if reason is EndReason.OVERFLOW:
        return TRY_AGAIN_LATER, (
            f"too slow: more than {subscription.limit} events queued; reconnect with since"
        )
    if reason is EndReason.ACCOUNT_DISABLED:
        return UNAUTHENTICATED, "this account has been disabled"
    if reason is EndReason.SESSION_ENDED:
        return UNAUTHENTICATED, "this session has ended; log in again"
    return GOING_AWAY, "server shutting down; reconnect with since=<last id>"


async def _forward(
    websocket: WebSocket, state: ApiState, subscription: Subscription, since: int | None
) -> None:
    """Replay (since, position] from the table, then live events after position."""
    engine, viewer, upto = state.core.engine, subscription.viewer, subscription.position
    last = upto if since is None else since
    while last < upto:
        page = await run_in_threadpool(
            read_events, engine, viewer, after=last, upto=upto, limit=REPLAY_PAGE
        )
        for event in page:
            await websocket.send_text(event.text)
        last = page[-1].id if len(page) == REPLAY_PAGE else upto
    send, next_batch = websocket.send_text, subscription.next_batch  # the hot loop
    while True:
        for event in await next_batch():
            # Only ids above what the client has: it may have resumed ahead of us.
            if event.id > last:
                await send(event.text)
                last = event.id


class _Tally:
    """Events counted since the last summary was sent."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.by_type: Counter[str] = Counter()
        self.first_id: int | None = None
        self.last_id: int | None = None

    def add(self, event_id: int, event_type: str) -> None:
        if self.first_id is None:
            self.first_id = event_id
        self.last_id = event_id
        self.by_type[event_type] += 1

    def take(self) -> str | None:
        """The summary message, or None when nothing happened; starts a new tally."""
        if self.first_id is None:
            return None
        message = {
            "type": SUMMARY,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "events": sum(self.by_type.values()),
            "first_id": self.first_id,
            "last_id": self.last_id,
            "by_type": dict(sorted(self.by_type.items())),
        }
        self._reset()
        return json.dumps(message, separators=(",", ":"))


async def _forward_summaries(websocket: WebSocket, subscription: Subscription) -> None:
    """Count live events as they come (the queue never fills), send a tally each interval."""
    tally = _Tally()

    async def count() -> None:
        while True:
            for event in await subscription.next_batch():
                tally.add(event.id, event.type)

    counting = asyncio.ensure_future(count())
    try:
        while True:
            await asyncio.sleep(SUMMARY_INTERVAL_SECS)
            if counting.done():
                counting.result()  # raises what stopped it
            text = tally.take()
            if text is not None:
                await websocket.send_text(text)
    finally:
        counting.cancel()
        await asyncio.gather(counting, return_exceptions=True)


async def _until_disconnect(websocket: WebSocket) -> None:
    """Client messages carry nothing; reading them is how a close is noticed."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # A stalled client cannot take the close frame either; do not wait on it forever.
    with suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason[:120]), CLOSE_TIMEOUT_SECS)
