"""Group commit over HTTP: concurrent submit-reading requests share one commit, each
answered only after it, as each would be answered alone."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from api.group_ingest import ReadingRequest, accept_requests
from api.state import ApiState
from core.bootstrap import App
from core.db.models import Event, MeterReading, TelemetrySample
from core.device_keys import sealed_device_key
from core.gateways import create_gateway
from core.group_commit import GroupCommit
from core.meters import register_meter
from tests.api.conftest import error_of
from tests.factories import NOW, MeterKeys, make_meter, make_user
from tests.gridtokenx import simulator as sim

URL = "/api/meters/submit-reading"
AT = NOW - timedelta(minutes=10)


class _Held(GroupCommit):
    """The app's group commit, its first group held until `expected` more requests wait."""

    def __init__(self, state: ApiState, expected: int) -> None:
        self.expected = expected
        self.started = threading.Event()
        self.queued = threading.Semaphore(0)
        self.sizes: list[int] = []
        self.state = state
        super().__init__(self._handle_held, workers=1)

    def submit(self, item: ReadingRequest):  # type: ignore[no-untyped-def]
        future = super().submit(item)
        if self.started.is_set():
            self.queued.release()
        return future

    def _handle_held(self, requests: list[ReadingRequest]) -> list:
        if not self.sizes:
            self.started.set()
            for _ in range(self.expected):
                assert self.queued.acquire(timeout=30)
        self.sizes.append(len(requests))
        return accept_requests(self.state, requests)


def _send_all(held: _Held, sends: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """The first request, then, once its group is being handled, all the others at once."""
    with ThreadPoolExecutor(len(sends)) as pool:
        first = pool.submit(sends[0])
        assert held.started.wait(timeout=30)
        rest = [pool.submit(send) for send in sends[1:]]
        return [first.result(), *(f.result() for f in rest)]


def _post_all(
    client: TestClient, held: _Held, keys: list[MeterKeys], bodies: list[dict]
) -> list[httpx.Response]:
    return _send_all(
        held,
        [
            functools.partial(client.post, URL, json=body, headers=k.headers)
            for k, body in zip(keys, bodies, strict=True)
        ],
    )


def _hold(api: FastAPI, expected: int) -> _Held:
    state: ApiState = api.state.api
    state.reading_group.close()  # type: ignore[union-attr]
    held = _Held(state, expected)
    state.reading_group = held
    return held


def _commits_of(state: ApiState) -> list[int]:
    counted: list[int] = []
    event.listen(state.core.sessions, "after_commit", lambda _s: counted.append(1))
    return counted


def test_concurrent_requests_share_one_commit(
    api: FastAPI, client: TestClient, session: Session
) -> None:
    keys = [make_meter(session, serial=f"H-{n}") for n in range(4)]
    near = AT + timedelta(minutes=1)
    bodies = [k.payload(kwh="1.5", at=AT) for k in keys]
    # In the group too: the first meter's resend, and its different reading in the window.
    keys += [keys[0], keys[0]]
    bodies += [dict(bodies[0]), keys[0].payload(kwh="2", at=near)]
    held = _hold(api, expected=len(bodies) - 1)
    commits = _commits_of(api.state.api)
    first, *rest = _post_all(client, held, keys, bodies)
    assert first.status_code == 201, first.text
    assert [r.status_code for r in rest] == [201, 201, 201, 200, 409], [r.text for r in rest]
    assert held.sizes == [1, 5]
    assert len(commits) == 2  # one per group, not one per request
    assert rest[3].json() == first.json()  # the resend: the stored reading
    assert rest[4].json()["error"]["existing_reading_id"] == first.json()["id"]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(MeterReading)) == 4
    received = session.scalar(select(func.count()).where(Event.type == "meter_reading_received"))
    assert received == 4


def test_a_failing_commit_answers_every_request_of_the_group_503_and_stores_nothing(
    api: FastAPI, client: TestClient, session: Session
) -> None:
    keys = [make_meter(session, serial=f"F-{n}") for n in range(4)]
    bodies = [k.payload(at=AT) for k in keys]
    held = _hold(api, expected=len(bodies) - 1)
    state: ApiState = api.state.api
    failing = {"on": True}

    def fail(_session: Session) -> None:
        if failing["on"]:
            raise OperationalError("COMMIT", {}, Exception("the server went away"))

    event.listen(state.core.sessions, "before_commit", fail)
    responses = _post_all(client, held, keys, bodies)
    assert held.sizes == [1, 3]
    assert [r.status_code for r in responses] == [503] * 4
    assert {r.json()["error"]["code"] for r in responses} == {"database_unavailable"}
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(MeterReading)) == 0
    session.rollback()  # on SQLite, the test's own transaction would hold the write lock
    failing["on"] = False
    again = [client.post(URL, json=b, headers=k.headers) for k, b in zip(keys, bodies, strict=True)]
    assert [r.status_code for r in again] == [201] * 4


def test_every_door_and_key_kind_shares_a_group(
    api: FastAPI, client: TestClient, session: Session, app: App
) -> None:
    """GridTokenX frames (plaintext through a gateway, encrypted with a meter's own key)
    and our readings in one group: one commit, each answered as alone, a replayed
    counter and a meter outside the gateway refused with nothing of theirs stored."""
    owner = make_user(session)
    for serial in ("GTX-G1", "GTX-G2", "GTX-OUT"):
        register_meter(session, serial, owner.username, sim.public_key_hex(serial))
    sealed = sealed_device_key(app.device_key_wrap(), "GTX-E", sim.aes_key("GTX-E").hex())
    enc_key = register_meter(
        session,
        "GTX-E",
        owner.username,
        sim.public_key_hex("GTX-E"),
        enc_key=sealed,
        encryption_required=True,
    ).api_key
    gateway_key = create_gateway(session, "headend-g", ["GTX-G1", "GTX-G2"]).api_key
    ours = make_meter(session, serial="M-G")
    counter = 1_795_175_700_000_000
    frame = sim.encrypted("GTX-E", counter, generated=1.5, consumed=0.5, at=AT)
    sends = [
        functools.partial(sim.post, client, frame, enc_key),
        functools.partial(sim.post, client, dict(frame), enc_key),  # the replay
        functools.partial(
            sim.post, client, sim.plain("GTX-G1", generated=1, consumed=0, at=AT), gateway_key
        ),
        functools.partial(
            sim.post, client, sim.plain("GTX-G2", generated=2, consumed=0, at=AT), gateway_key
        ),
        functools.partial(
            sim.post, client, sim.plain("GTX-OUT", generated=1, consumed=0, at=AT), gateway_key
        ),
        functools.partial(client.post, URL, json=ours.payload(at=AT), headers=ours.headers),
    ]
    held = _hold(api, expected=len(sends) - 1)
    commits = _commits_of(api.state.api)
    first, replay, g1, g2, outside, reading = _send_all(held, sends)
    assert held.sizes == [1, 5]
    assert first.status_code == 202, first.text
    assert (replay.status_code, error_of(replay)["code"]) == (409, "replayed_counter")
    assert [g1.status_code, g2.status_code] == [202, 202], [g1.text, g2.text]
    assert g1.json()["device_id"] == "GTX-G1" and g2.json()["device_id"] == "GTX-G2"
    assert (outside.status_code, error_of(outside)["code"]) == (403, "forbidden")
    assert reading.status_code == 201, reading.text
    # One commit per group, and group 2 first commits the gateway's contact time.
    assert len(commits) == 3
    session.expire_all()
    samples = session.execute(
        select(TelemetrySample.counter, TelemetrySample.net_micro).order_by(TelemetrySample.id)
    ).all()
    assert sorted(samples, key=lambda s: s.net_micro) == [
        (counter, 1_000_000),
        (None, 1_000_000),
        (None, 2_000_000),
    ]
    assert session.scalar(select(func.count()).select_from(MeterReading)) == 1
    refused = session.scalars(
        select(Event.payload).where(Event.type == "meter_reading_validation_failed")
    ).all()
    # The replay is told to staff; a gateway outside its meters writes no event.
    assert [(e["meter_serial"], e["error_code"]) for e in refused] == [
        ("GTX-E", "replayed_counter")
    ]
