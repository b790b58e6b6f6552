"""The topics of the MQTT contract (CONTRACT.md), under an optional deployment prefix.

Two doors in: ours (`gridtokenx/meters/{serial}/readings`, our signed reading JSON)
and GridTokenX's designed topic (`/meter/{device_id}/reading`, their DLMS body);
one way out (`gridtokenx/meters/{serial}/acks`) for both.

The prefix (MQTT_TOPIC_PREFIX, empty by default) lets deployments or test runs share
one broker without seeing each other's meters. A share group (MQTT_SHARE_GROUP) makes
the subscriptions MQTT shared ones, `$share/<group>/<filter>`: the broker hands each
message to one bridge of the group, so several processes (several cores) take the
readings; the database, not the broker, keeps them exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

READINGS = "gridtokenx/meters/{serial}/readings"
GRIDTOKENX_READING = "/meter/{serial}/reading"
ACKS = "gridtokenx/meters/{serial}/acks"


class Form(StrEnum):
    OURS = "ours"
    GRIDTOKENX = "gridtokenx"


SHARED = "$share/{group}/{filter}"


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = ""
    # MQTT_SHARE_GROUP: the bridges of one group each receive a share of the readings.
    share_group: str = ""

    @property
    def readings_filter(self) -> str:
        return self.prefix + READINGS.format(serial="+")

    @property
    def gridtokenx_filter(self) -> str:
        return self.prefix + GRIDTOKENX_READING.format(serial="+")

    @property
    def filters(self) -> list[str]:
        return [self.readings_filter, self.gridtokenx_filter]

    @property
    def subscriptions(self) -> list[str]:
        """What the bridge subscribes to: the filters, shared when it is one of a group."""
        if not self.share_group:
            return self.filters
        return [SHARED.format(group=self.share_group, filter=f) for f in self.filters]

    def readings(self, serial: str) -> str:
        return self.prefix + READINGS.format(serial=serial)

    def gridtokenx_reading(self, device_id: str) -> str:
        return self.prefix + GRIDTOKENX_READING.format(serial=device_id)

    def acks(self, serial: str) -> str:
        return self.prefix + ACKS.format(serial=serial)

    def route(self, topic: str) -> tuple[str, Form] | None:
        """The serial a readings topic names and its form; None for any other topic."""
        if not topic.startswith(self.prefix):
            return None
        levels = topic[len(self.prefix) :].split("/")
        if len(levels) == 4 and levels[:2] == ["gridtokenx", "meters"] and levels[3] == "readings":
            return (levels[2], Form.OURS) if levels[2] else None
        if len(levels) == 4 and levels[:2] == ["", "meter"] and levels[3] == "reading":
            return (levels[2], Form.GRIDTOKENX) if levels[2] else None
        return None

    def serial_of(self, topic: str) -> str | None:
        route = self.route(topic)
        return route[0] if route else None
