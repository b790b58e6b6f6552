"""Hear of confirmations over pubsub (signatureSubscribe) instead of only polling for them.

The mint pipeline still settles every batch from getSignatureStatuses (one rule,
one place: Confirmation.judge); a notification only ends its wait for the next
poll early. So pubsub is a speed-up and never a source of truth: when the
WebSocket is down, or a notification is lost, the poll at the usual interval
settles the batch exactly as before.

One daemon thread runs an asyncio loop with one solana-py websocket_api
connection; it reconnects with backoff and subscribes again to what it still
watches. A subscription whose transaction never lands is dropped after
WATCH_SECS (longer than any blockhash lives).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable

from solana.rpc.websocket_api import SolanaWsClientProtocol, SubscriptionError, connect
from solders.rpc.responses import SignatureNotification, SubscriptionResult
from solders.signature import Signature

log = logging.getLogger(__name__)

WATCH_SECS = 180.0
_BACKOFF_SECS = (0.5, 1, 2, 5, 10)


class SignatureWatch:
    """Thread-safe: `watch` from any thread, `wait` from the pipeline's thread."""

    def __init__(self, url: str, commitment: str) -> None:
        self.url = url
        self.commitment = commitment
        self._heard = threading.Event()
        self._connected = threading.Event()
        self._closing = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._pending: asyncio.Queue[Signature] | None = None
        self._watched: dict[Signature, float] = {}  # signature -> when first watched
        self._live: dict[Signature, int] = {}  # subscribed, not yet notified: the node's ids
        self._by_id: dict[int, Signature] = {}
        self._thread = threading.Thread(target=self._run, name="signature-watch", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def watch(self, signatures: Iterable[Signature]) -> None:
        wanted = list(signatures)
        if wanted and not self._closing.is_set():
            self._loop.call_soon_threadsafe(self._enqueue, wanted)

    def is_subscribed(self, signature: Signature) -> bool:
        """True once the node has acknowledged the subscription (and not yet notified it)."""
        return signature in self._live

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Until a watched signature is notified, `stop` is set or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._heard.wait(min(left, 0.05)):
                self._heard.clear()
                return True
        return False

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # The watcher's own thread

    def _enqueue(self, signatures: list[Signature]) -> None:
        now = time.monotonic()
        for signature in signatures:
            if signature not in self._watched:
                self._watched[signature] = now
                if self._pending is not None:
                    self._pending.put_nowait(signature)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        task = self._loop.create_task(self._keep_connected())
        try:
            self._loop.run_forever()
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                self._loop.run_until_complete(task)
            self._loop.close()

    async def _keep_connected(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            try:
                async with connect(self.url, ping_interval=20, max_size=None) as ws:
                    attempt = 0
                    await self._serve(ws)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a refused or dropped connection: poll, and retry later
                if self._connected.is_set() or attempt == 0:
                    log.info("pubsub at %s unavailable (%s); polling only", self.url, exc)
            self._connected.clear()
            self._live.clear()
            self._by_id.clear()
            await asyncio.sleep(_BACKOFF_SECS[min(attempt, len(_BACKOFF_SECS) - 1)])
            attempt += 1

    async def _serve(self, ws: SolanaWsClientProtocol) -> None:
        self._pending = asyncio.Queue()
        self._forget_expired()
        self._live.clear()
        self._by_id.clear()
        for signature in self._watched:  # a new connection knows nothing of the old one's
            self._pending.put_nowait(signature)
        self._connected.set()
        sender = asyncio.create_task(self._subscribe_pending(ws))
        try:
            while True:
                try:
                    messages = await ws.recv()
                except SubscriptionError as exc:  # one refused subscription: the poll covers it
                    log.warning("pubsub refused a subscription: %s", exc)
                    continue
                for message in messages:
                    self._take(ws, message)
        finally:
            sender.cancel()
            self._pending = None

    async def _subscribe_pending(self, ws: SolanaWsClientProtocol) -> None:
        assert self._pending is not None
        while True:
            signature = await self._pending.get()
            if signature in self._watched:
                await ws.signature_subscribe(signature, self.commitment)  # type: ignore[arg-type]
            for expired in self._forget_expired():
                sub_id = self._live.pop(expired, None)
                if sub_id is not None:
                    await ws.signature_unsubscribe(sub_id)

    def _take(self, ws: SolanaWsClientProtocol, message: object) -> None:
        if isinstance(message, SubscriptionResult) and isinstance(message.result, int):
            request = ws.subscriptions.get(message.result)
            signature = getattr(request, "signature", None)
            if signature is not None:
                self._live[signature] = message.result
                self._by_id[message.result] = signature
        elif isinstance(message, SignatureNotification):
            # The node ends a signature subscription with its notification.
            signature = self._by_id.pop(message.subscription, None)
            if signature is not None:
                self._live.pop(signature, None)
            self._heard.set()

    def _forget_expired(self) -> list[Signature]:
        cutoff = time.monotonic() - WATCH_SECS
        expired = [s for s, since in self._watched.items() if since < cutoff]
        for signature in expired:
            del self._watched[signature]
            sub_id = self._live.get(signature)
            if sub_id is not None:
                self._by_id.pop(sub_id, None)
        return expired
