"""docs/OPERATIONS.md's Mosquitto ACL, run as written: each meter publishes only to its own
topics and reads only its own acks; the bridge reads all readings and writes all acks.

A second Mosquitto is started on a free port with a config, password file and the ACL
taken from the docs (so the docs and the test cannot drift apart).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.bootstrap import App
from core.db.models import Meter, MeterReading
from core.db.types import utcnow
from mqtt_ingest.topics import Topics
from tests.factories import make_meter
from tests.support.localnet import wait_for
from tests.support.mqtt import MeterClient, RunningBridge
from tests.support.processes import REPO_ROOT, free_port

PASSWORDS = {"gridtokenx-ingest": "bridge-secret", "ACL-1": "meter-one", "ACL-2": "meter-two"}


def documented_acl() -> str:
    operations = (REPO_ROOT / "docs" / "OPERATIONS.md").read_text()
    section = operations.split("### Each meter only its own topics", 1)[1]
    return re.search(r"```\n(.*?)```", section, re.S).group(1)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def acl_broker(tmp_path: Path, mosquitto: str) -> Iterator[int]:
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd is missing (apt-get install mosquitto)")
    passwd = tmp_path / "passwd"
    for index, (user, password) in enumerate(PASSWORDS.items()):
        create = ["-c"] if index == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True)
    (tmp_path / "acl").write_text(documented_acl())
    port = free_port()
    (tmp_path / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n"
        f"acl_file {tmp_path / 'acl'}\npersistence false\nuser root\n"
    )
    log = (tmp_path / "mosquitto.log").open("wb")
    process = subprocess.Popen(
        ["mosquitto", "-c", str(tmp_path / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: accepts(port) or process.poll() is not None, timeout=15, what="mosquitto")
        assert process.poll() is None, (tmp_path / "mosquitto.log").read_text()
        yield port
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def url(port: int, user: str) -> str:
    return f"mqtt://{user}:{PASSWORDS[user]}@127.0.0.1:{port}"


def test_each_meter_is_kept_to_its_own_topics(app: App, acl_broker: int) -> None:
    with app.sessions() as session:
        one = make_meter(session, serial="ACL-1")
        two = make_meter(session, serial="ACL-2")
    topics = Topics()
    bridge = RunningBridge(app, url(acl_broker, "gridtokenx-ingest"), topics, "gridtokenx-ingest")
    bridge.start()
    meter_one = MeterClient(url(acl_broker, "ACL-1"), topics, "ACL-1")
    meter_two = MeterClient(url(acl_broker, "ACL-2"), topics, "ACL-2")
    try:
        at = utcnow().replace(microsecond=0) - timedelta(hours=1)
        meter_one.publish(one.payload(at=at))
        assert meter_one.next_ack()["status"] == "accepted"

        # Meter one subscribes to meter two's acks: Mosquitto grants the subscription but
        # delivers nothing the ACL does not let it read (checked below).
        subscribed = threading.Event()
        meter_one.client.on_subscribe = lambda *_a: subscribed.set()
        meter_one.client.subscribe(topics.acks("ACL-2"), qos=1)
        assert subscribed.wait(10)

        # ... and to publish meter two's own signed reading on meter two's topic: dropped.
        meter_one.publish(two.payload(kwh="9", at=at), topic=topics.readings("ACL-2"))
        meter_one.publish(two.payload(kwh="9", at=at), topic=topics.gridtokenx_reading("ACL-2"))
        later = two.payload(kwh="2", at=at + timedelta(minutes=30))
        meter_two.publish(later)
        ack = meter_two.next_ack()  # the only message that reached the bridge for meter two
        assert (ack["status"], ack["reading_timestamp"]) == ("accepted", later["reading_timestamp"])
        # Meter one's next ack is its own next reading's: meter two's ack, published
        # before it, never reached meter one.
        mine = one.payload(kwh="0.5", at=at + timedelta(minutes=30))
        meter_one.publish(mine)
        ack = meter_one.next_ack()
        assert (ack["status"], ack["reading_timestamp"]) == ("accepted", mine["reading_timestamp"])
        assert meter_one.acks.empty() and meter_two.acks.empty()
        with app.sessions() as session:
            rows = session.execute(
                select(Meter.serial, MeterReading.kwh_micro).join(
                    Meter, Meter.id == MeterReading.meter_id
                )
            ).all()
        assert sorted(rows) == [("ACL-1", 500_000), ("ACL-1", 1_500_000), ("ACL-2", 2_000_000)]
        assert bridge.bridge.counters["messages"] == 3
    finally:
        meter_one.close()
        meter_two.close()
        bridge.close()


def test_two_bridges_on_a_shared_subscription_under_the_acl(app: App, acl_broker: int) -> None:
    """MQTT_BRIDGES=2 with the documented ACL: Mosquitto matches `$share/<group>/...`
    against the ACL's plain topics, so both bridges (one user, two client ids) receive
    their share and every reading is answered once."""
    with app.sessions() as session:
        one = make_meter(session, serial="ACL-1")
        two = make_meter(session, serial="ACL-2")
    shared = Topics(share_group="gridtokenx-ingest")
    bridges = [
        RunningBridge(app, url(acl_broker, "gridtokenx-ingest"), shared, f"gridtokenx-ingest-{n}")
        for n in (1, 2)
    ]
    for bridge in bridges:
        bridge.start()
    meters = {
        "ACL-1": (one, MeterClient(url(acl_broker, "ACL-1"), shared, "ACL-1")),
        "ACL-2": (two, MeterClient(url(acl_broker, "ACL-2"), shared, "ACL-2")),
    }
    start = utcnow().replace(microsecond=0) - timedelta(hours=12)
    try:
        sent = []
        for n in range(10):
            at = start + timedelta(minutes=16 * n)  # beyond the duplicate window
            for serial, (keys, client) in meters.items():
                body = keys.payload(kwh="1.25", at=at)
                client.publish(body)
                sent.append((serial, body["reading_timestamp"]))
        answered = []
        for serial, (_keys, client) in meters.items():
            for _ in range(10):
                ack = client.next_ack()
                answered.append((serial, ack["reading_timestamp"], ack["status"]))
        assert sorted(answered) == sorted((s, t, "accepted") for s, t in sent)
        taken = [bridge.bridge.counters["messages"] for bridge in bridges]
        assert sum(taken) == 20 and all(count > 0 for count in taken), taken
        with app.sessions() as session:
            rows = session.scalars(select(MeterReading.kwh_micro)).all()
        assert rows == [1_250_000] * 20
    finally:
        for _keys, client in meters.values():
            client.close()
        for bridge in bridges:
            bridge.close()
