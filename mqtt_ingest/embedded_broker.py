"""`python -m mqtt_ingest.embedded_broker --port N`: the broker `make run` starts when
MQTT_URL is unset, so a fresh machine needs no Mosquitto.

amqtt (pure Python, asyncio) on 127.0.0.1 only, anonymous, MQTT 3.1.1, sessions in
memory: a demo and development stand-in. A deployment names its own broker in
MQTT_URL (docs/OPERATIONS.md "MQTT broker"), as it names its own Solana cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from amqtt.broker import Broker

log = logging.getLogger("mqtt_ingest.embedded_broker")


def broker_config(port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def serve(port: int) -> None:
    broker = Broker(broker_config(port))
    await broker.start()
    log.info("embedded MQTT broker (amqtt, MQTT 3.1.1) on 127.0.0.1:%d", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mqtt_ingest.embedded_broker")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("transitions").setLevel(logging.WARNING)
    # amqtt logs a readiness probe (a connection closed unused) as an ERROR.
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
