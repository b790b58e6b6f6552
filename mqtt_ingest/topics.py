"""The topics of the MQTT contract (CONTRACT.md), under an optional deployment prefix.

The prefix (MQTT_TOPIC_PREFIX, empty by default) lets deployments or test runs share
one broker without seeing each other's meters.
"""

from __future__ import annotations

from dataclasses import dataclass

READINGS = "gridtokenx/meters/{serial}/readings"
ACKS = "gridtokenx/meters/{serial}/acks"


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = ""

    @property
    def readings_filter(self) -> str:
        return self.prefix + READINGS.format(serial="+")

    def readings(self, serial: str) -> str:
        return self.prefix + READINGS.format(serial=serial)

    def acks(self, serial: str) -> str:
        return self.prefix + ACKS.format(serial=serial)

    def serial_of(self, topic: str) -> str | None:
        """The serial a readings topic names; None for any other topic."""
        if not topic.startswith(self.prefix):
            return None
        levels = topic[len(self.prefix) :].split("/")
        if len(levels) != 4 or levels[:2] != ["gridtokenx", "meters"] or levels[3] != "readings":
            return None
        return levels[2] or None
