"""Submitting readings: backfill (history through submit-batch) and live (one reading
per meter per cadence through submit-reading), exactly as meters do; the meters in
`mqtt_serials` publish the same bodies over MQTT instead (simulator.mqtt_transport).

The cadence respects the API's duplicate window: a meter cannot report twice
within `duplicate_window_secs`, so each meter reports every
max(--interval, window + 1 s). Each reading carries the energy exported since
the meter's previous one; intervals without export are skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from simulator.client import ApiClient
from simulator.energy import export_kwh
from simulator.fleet import FleetMeter, FleetStore, renew_key
from simulator.mqtt_transport import MqttMeters, NoAck

log = logging.getLogger("simulator")

MESSAGE_PREFIX = "gridtokenx-reading:v1"
MAX_BATCH = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = timedelta(0)


def system_now() -> datetime:
    return datetime.now(UTC)


def _ms(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _rfc3339(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def signed_reading(meter: FleetMeter, at: datetime, kwh: str) -> dict[str, Any]:
    """The body a meter sends: the canonical message of docs/API.md, signed with ed25519.

    Written out here rather than imported from core, as a meter vendor would.
    """
    message = f"{MESSAGE_PREFIX}:{meter.serial}:{_ms(at)}:{kwh}".encode()
    return {
        "meter_serial": meter.serial,
        "kwh_amount": kwh,
        "reading_timestamp": _rfc3339(at),
        "meter_signature": str(meter.keypair.sign_message(message)),
    }


@dataclass
class Counts:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    skipped: int = 0

    def add(self, other: Counts) -> None:
        self.accepted += other.accepted
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        self.skipped += other.skipped


class Simulator:
    def __init__(
        self,
        client: ApiClient,
        store: FleetStore,
        fleet: list[FleetMeter],
        *,
        window_secs: int,
        interval_secs: float,
        clock: Callable[[], datetime] = system_now,
        mqtt: MqttMeters | None = None,
    ) -> None:
        self.client, self.store, self.fleet, self.clock = client, store, fleet, clock
        self.mqtt = mqtt
        self.cadence = timedelta(seconds=max(interval_secs, window_secs + 1))
        whole_minutes = -(-max(900, window_secs + 1) // 60)
        self.backfill_step = timedelta(minutes=whole_minutes)
        self.last: dict[str, datetime] = {}
        # One-off delays that spread the meters over the cadence after the first live
        # cycle, so new readings arrive steadily rather than all at once.
        self.delay: dict[str, timedelta] = {}

    def now(self) -> datetime:
        at = self.clock()
        return at.replace(microsecond=at.microsecond // 1000 * 1000)

    def backfill(self, hours: float) -> Counts:
        """The last `hours` of history, one reading per step and meter, in batches.

        Slots sit on a fixed grid, so a second backfill resends identical readings
        and the API answers them as duplicates.
        """
        counts, now = Counts(), self.now()
        step_secs = int(self.backfill_step.total_seconds())
        first = _EPOCH + timedelta(
            seconds=-(-_ms(now - timedelta(hours=hours)) // 1000 // step_secs) * step_secs
        )
        for meter in self.fleet:
            readings, at = [], first
            while at <= now - self.cadence:
                kwh = export_kwh(meter.plan.site, meter.serial, at - self.backfill_step, at)
                if kwh > 0:
                    readings.append(signed_reading(meter, at, f"{kwh:f}"))
                else:
                    counts.skipped += 1
                self.last[meter.serial] = at
                at += self.backfill_step
            for start in range(0, len(readings), MAX_BATCH):
                counts.add(self._send_batch(meter, readings[start : start + MAX_BATCH]))
        return counts

    def _over_mqtt(self, meter: FleetMeter) -> bool:
        return self.mqtt is not None and meter.serial in self.mqtt.acks

    def _send_batch(self, meter: FleetMeter, readings: list[dict[str, Any]]) -> Counts:
        if self._over_mqtt(meter):
            return self._publish_batch(meter, readings)
        response = self.client.submit_batch(meter.api_key, readings)
        if response.status_code == 401:
            renew_key(self.client, self.store, meter)
            response = self.client.submit_batch(meter.api_key, readings)
        if response.status_code != 200:
            log.warning(
                "%s: batch refused: %s %s", meter.serial, response.status_code, response.text
            )
            return Counts(rejected=len(readings))
        body = response.json()
        for result in body["results"]:
            if result["status"] == "rejected":
                log.warning("%s: reading rejected: %s", meter.serial, result["error"])
        return Counts(body["accepted"], body["duplicates"], body["rejected"])

    def cycle(self) -> Counts:
        """One live pass: every meter whose cadence has come reports its export."""
        counts, now = Counts(), self.now()
        for meter in self.fleet:
            last = self.last.get(meter.serial)
            if last is not None and now - last < self.cadence + self.delay.get(meter.serial, _ZERO):
                continue
            self.delay.pop(meter.serial, None)
            start = max(last or now - self.cadence, now - self.cadence)
            kwh = export_kwh(meter.plan.site, meter.serial, start, now)
            if kwh <= 0:
                counts.skipped += 1
                self.last[meter.serial] = now
                continue
            counts.add(self._send(meter, signed_reading(meter, now, f"{kwh:f}"), now))
        return counts

    def _publish_batch(self, meter: FleetMeter, readings: list[dict[str, Any]]) -> Counts:
        assert self.mqtt is not None
        try:
            ack = self.mqtt.send(meter.serial, {"readings": readings})
        except NoAck as exc:
            log.warning("%s", exc)
            return Counts(rejected=len(readings))
        if ack["status"] != "batch":
            log.warning("%s: batch refused over MQTT: %s", meter.serial, ack)
            return Counts(rejected=len(readings))
        return Counts(ack["accepted"], ack["duplicates"], ack["rejected"])

    def _publish(self, meter: FleetMeter, reading: dict[str, Any], at: datetime) -> Counts:
        assert self.mqtt is not None
        try:
            ack = self.mqtt.send(meter.serial, reading)
        except NoAck as exc:
            log.warning("%s", exc)  # not recorded as sent: the next cycle reports again
            return Counts(rejected=1)
        if ack["status"] in ("accepted", "duplicate"):
            self.last[meter.serial] = at
            return Counts(accepted=1) if ack["status"] == "accepted" else Counts(duplicate=1)
        if ack.get("code") == "duplicate_reading":
            existing = self.client.reading(ack["existing_reading_id"])
            self.last[meter.serial] = datetime.fromisoformat(existing["reading_timestamp"])
            return Counts(duplicate=1)
        if ack.get("code") != "rate_limited":
            self.last[meter.serial] = at
        log.warning("%s: refused over MQTT: %s", meter.serial, ack)
        return Counts(rejected=1)

    def _send(self, meter: FleetMeter, reading: dict[str, Any], at: datetime) -> Counts:
        if self._over_mqtt(meter):
            return self._publish(meter, reading, at)
        response = self.client.submit(meter.api_key, reading)
        if response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated":
            renew_key(self.client, self.store, meter)
            response = self.client.submit(meter.api_key, reading)
        if response.status_code in (200, 201):
            self.last[meter.serial] = at
            return Counts(accepted=1) if response.status_code == 201 else Counts(duplicate=1)
        error = response.json().get("error", {})
        if error.get("code") == "duplicate_reading":
            # Someone (a previous run) reported within the window: wait a cadence from it.
            existing = self.client.reading(error["existing_reading_id"])
            self.last[meter.serial] = datetime.fromisoformat(existing["reading_timestamp"])
            return Counts(duplicate=1)
        if response.status_code != 429:
            self.last[meter.serial] = at
        log.warning("%s: %s %s", meter.serial, response.status_code, error)
        return Counts(rejected=1)

    def stagger(self) -> None:
        """Spread the meters' next reports evenly over one cadence."""
        for position, meter in enumerate(self.fleet):
            self.delay[meter.serial] = self.cadence * position / max(1, len(self.fleet))

    def seconds_to_next(self) -> float:
        now = self.now()
        due = [
            self.last.get(m.serial, now) + self.cadence + self.delay.get(m.serial, _ZERO)
            for m in self.fleet
        ]
        return max(0.5, min((d - now).total_seconds() for d in due)) if due else 5.0

    def run_live(self, stop: threading.Event) -> None:
        first = True
        while not stop.is_set():
            counts = self.cycle()
            if first:
                self.stagger()
                first = False
            if counts.accepted or counts.rejected:
                log.info(
                    "live: %d accepted, %d duplicate, %d rejected, %d without export",
                    counts.accepted,
                    counts.duplicate,
                    counts.rejected,
                    counts.skipped,
                )
            stop.wait(self.seconds_to_next())
