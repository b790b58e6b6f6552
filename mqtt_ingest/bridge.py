"""The bridge's loop: take what the broker delivered, accept it in one commit, answer, PUBACK.

Threads: paho's network thread only queues each message (`on_message`); the caller
of `run` takes everything queued, up to MAX_GROUP messages, as one group and hands it
to one of WORKERS threads, which accepts it in one transaction, so messages arriving
together share a commit and a busy broker is met with bigger groups, not a longer
queue. Only after a group's commit are its acks published and its PUBACKs sent, and
groups are answered in the order their messages came (MQTT requires that order). A
crash before the PUBACK leaves the message at the broker, which redelivers it; the
store answers the redelivery as a duplicate with the stored id, so nothing is lost
and nothing is minted twice.

A message taken before a reconnect is not acknowledged after it (its packet id
belonged to the old connection): the broker redelivers it in the new session and
that copy is answered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy.exc import SQLAlchemyError

from core.bootstrap import App
from core.db.types import utcnow
from core.ingest_health import record_heartbeat
from core.readings.shared_budget import reading_budget
from mqtt_ingest.connection import (
    BrokerAddress,
    connect,
    correlation_of,
    new_client,
    subscribe_readings,
)
from mqtt_ingest.ingest import Answer, Inbound, accept_messages
from mqtt_ingest.messages import encode
from mqtt_ingest.topics import Topics

log = logging.getLogger("mqtt_ingest")

MAX_GROUP = 500
# Groups accepted at once, each on its own database connection (the pool's default
# size is 5): a group waits mostly on round trips, so a few overlap well.
WORKERS = 4
HEARTBEAT_SECS = 2.0
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class _Received:
    generation: int
    message: mqtt.MQTTMessage


class Bridge:
    def __init__(
        self,
        app: App,
        address: BrokerAddress,
        *,
        client_id: str,
        topics: Topics,
        protocol: str = "5",
        cafile: Any = None,
        max_group: int = MAX_GROUP,
        workers: int = WORKERS,
    ) -> None:
        self.app = app
        self.address = address
        self.client_id = client_id
        self.topics = topics
        self.max_group = max_group
        self.workers = workers
        self.inbox: queue.Queue[_Received] = queue.Queue()
        self.counters: Counter[str] = Counter()
        self.connected = threading.Event()
        self._generation = 0
        self._started_at = utcnow()
        self._last_message_at: datetime | None = None
        self._beat_at = 0.0
        self._beat_messages = 0
        settings = app.settings.app
        # The meter's one budget, shared with the API processes on PostgreSQL (in this
        # process's memory on SQLite): a meter on both doors has no second allowance.
        self.budget = reading_budget(
            settings.effective_database_url,
            settings.meter_rate_limit_per_minute,
            settings.meter_rate_limit_burst,
        )
        self.client = new_client(address, client_id, protocol=protocol, cafile=cafile)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # paho's network thread

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker %s refused the connection: %s", self.address.display, reason)
            return
        self._generation += 1
        subscribe_readings(client, self.topics.subscriptions, session_present=flags.session_present)
        self.connected.set()
        log.info(
            "connected to %s as %s (session %s), subscribed to %s",
            self.address.display,
            self.client_id,
            "resumed" if flags.session_present else "new",
            ", ".join(self.topics.subscriptions),
        )

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("disconnected from %s: %s; reconnecting", self.address.display, reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.inbox.put(_Received(self._generation, message))

    # the worker

    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set; what is taken but not committed is redelivered later.

        Up to `workers` groups are accepted at once, each in its own transaction (a
        group's wall time is mostly database round trips); their acks and PUBACKs still
        go out in the order the messages came. Meters are locked in id order in every
        transaction, so concurrent groups naming the same meters wait, never deadlock.
        """
        connect(self.client, self.address)
        in_flight: deque[tuple[list[_Received], Future[list[Answer] | None]]] = deque()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mqtt-accept")
        try:
            while not stop.is_set():
                self._finish_done(in_flight, block=len(in_flight) >= self.workers)
                group = self._take(timeout=0.05 if in_flight else 0.2)
                if group:
                    in_flight.append((group, pool.submit(self._accept, group, stop)))
                self._maybe_beat()
            while in_flight:  # stopping: what commits is answered, the rest redelivered
                self._finish_done(in_flight, block=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.client.disconnect()
            self.client.loop_stop()
            self.connected.clear()
            self._maybe_beat(force=True)
            self.budget.close()

    def _take(self, timeout: float) -> list[_Received]:
        try:
            group = [self.inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(group) < self.max_group:
            try:
                group.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return group

    def _accept(self, group: list[_Received], stop: threading.Event) -> list[Answer] | None:
        """The group's answers once committed; None when stopped before it could commit."""
        inbound = [
            Inbound(r.message.topic, r.message.payload, bool(r.message.retain)) for r in group
        ]
        attempt = 0
        while True:
            try:
                return accept_messages(self.app, self.topics, inbound, self.budget)
            except SQLAlchemyError as exc:
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                attempt += 1
                log.warning(
                    "accepting %d message(s) failed (%s); retry %d in %.1fs, nothing acknowledged",
                    len(group), type(exc).__name__, attempt, delay,
                )  # fmt: skip
                if stop.wait(delay):
                    return None

    def _finish_done(
        self,
        in_flight: deque[tuple[list[_Received], Future[list[Answer] | None]]],
        *,
        block: bool,
    ) -> None:
        """Answer the oldest groups that committed, in order (waiting for the oldest if
        `block`); a group is never answered before the ones that came before it."""
        while in_flight:
            group, future = in_flight[0]
            if not future.done() and not block:
                return
            answers = future.result()
            in_flight.popleft()
            block = False
            if answers is not None:
                self._answer(group, answers)

    def _answer(self, group: list[_Received], answers: list[Answer]) -> None:
        # Counted before anything is published: whoever reads an ack then sees it counted.
        for answer in answers:
            self.counters.update(answer.outcomes or ["ignored:foreign_topic"])
        self.counters["messages"] += len(group)
        self._last_message_at = utcnow()
        for received, answer in zip(group, answers, strict=True):
            if answer.ack is not None and answer.serial is not None:
                self.client.publish(
                    self.topics.acks(answer.serial),
                    encode(answer.ack),
                    qos=1,
                    properties=correlation_of(received.message),
                )
        generation = self._generation
        for received in group:
            if received.generation == generation:
                self.client.ack(received.message.mid, received.message.qos)

    def _maybe_beat(self, *, force: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self._beat_at
        if not force and elapsed < HEARTBEAT_SECS:
            return
        messages = self.counters["messages"]
        rate = (messages - self._beat_messages) / elapsed if self._beat_at and elapsed else 0
        self._beat_at, self._beat_messages = now, messages
        try:
            with self.app.sessions() as session:
                record_heartbeat(
                    session,
                    name=self.client_id,
                    broker=self.address.display,
                    connected=self.connected.is_set(),
                    messages_per_sec=Decimal(str(round(rate, 1))),
                    counters=dict(self.counters),
                    started_at=self._started_at,
                    last_message_at=self._last_message_at,
                    now=utcnow(),
                )
        except SQLAlchemyError as exc:
            log.warning("could not record the heartbeat: %s", type(exc).__name__)
