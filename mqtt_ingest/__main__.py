"""`python -m mqtt_ingest`: the MQTT ingest bridge, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from core.bootstrap import bootstrap
from core.config import ConfigError
from core.db.migrate import DatabaseNotMigrated
from mqtt_ingest.bridge import Bridge
from mqtt_ingest.connection import broker_address
from mqtt_ingest.topics import Topics

log = logging.getLogger("mqtt_ingest")


def main() -> int:
    try:
        app = bootstrap()
    except ConfigError as exc:
        print(f"mqtt_ingest: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except DatabaseNotMigrated as exc:
        print(f"mqtt_ingest: {exc}", file=sys.stderr)
        return 2
    settings = app.settings.app
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()

    def shutdown(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the group in flight, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    bridge = Bridge(
        app,
        broker_address(settings.effective_mqtt_url),
        client_id=settings.mqtt_client_id,
        topics=Topics(settings.mqtt_topic_prefix, settings.mqtt_share_group),
        protocol=settings.mqtt_protocol,
        cafile=settings.mqtt_cafile,
    )
    log.info("bridge starting: broker %s", bridge.address.display)
    bridge.run(stop)
    log.info("bridge stopped")
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
