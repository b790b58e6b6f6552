"""Gateways: one head-end key for the meters an admin assigns, on every ingest door."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import Event, Gateway, MeterReading, TelemetrySample, User
from core.meters import hash_api_key, register_meter
from tests.api.conftest import auth_headers, error_of
from tests.factories import NOW, make_meter, make_user
from tests.gridtokenx import simulator as sim

AT = NOW - timedelta(minutes=5)


def samples(session: Session) -> int:
    session.expire_all()
    count = session.scalar(select(func.count()).select_from(TelemetrySample)) or 0
    session.rollback()
    return count


def stored(session: Session) -> int:
    session.expire_all()
    count = session.scalar(select(func.count()).select_from(MeterReading)) or 0
    session.rollback()  # end the read: on SQLite it would hold off the API's next write
    return count


def _fleet(session: Session, *serials: str) -> None:
    owner = make_user(session)
    for serial in serials:
        register_meter(session, serial, owner.username, sim.public_key_hex(serial))


def _gateway(client: TestClient, headers: dict, name: str, meters: list[str]) -> str:
    response = client.post(
        "/api/admin/gateways", json={"name": name, "meters": meters}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["meters"] == sorted(meters)
    return response.json()["api_key"]


def test_one_fleet_key_for_their_meters_and_nothing_else(
    client: TestClient, session: Session, app: App, admin: User
) -> None:
    _fleet(session, "GTX-A", "GTX-B", "GTX-C")
    key = _gateway(client, auth_headers(app, admin), "headend-1", ["GTX-A", "GTX-B"])
    for serial in ("GTX-A", "GTX-B"):
        body = sim.plain(serial, generated=1.25, consumed=0.25, at=AT)
        assert sim.post(client, body, key).status_code == 202
    outside = sim.post(client, sim.plain("GTX-C", generated=1, consumed=0, at=AT), key)
    assert (outside.status_code, error_of(outside)["code"]) == (403, "forbidden")
    unknown = sim.post(client, sim.plain("GTX-Z", generated=1, consumed=0, at=AT), key)
    assert (unknown.status_code, error_of(unknown)["code"]) == (404, "unknown_meter")
    assert samples(session) == 2
    # Each reading is still verified against its own meter's key.
    signed_by_a = sim.plain("GTX-B", generated=2, consumed=0, at=AT, signer=sim.keypair("GTX-A"))
    assert sim.post(client, signed_by_a, key).status_code == 403
    assert samples(session) == 2


def test_a_gateway_key_on_our_own_doors(
    client: TestClient, session: Session, app: App, admin: User
) -> None:
    mine, other = make_meter(session, serial="M-1"), make_meter(session, serial="M-2")
    key = _gateway(client, auth_headers(app, admin), "headend-2", ["M-1"])
    headers = {"X-API-Key": key}
    ok = client.post("/api/meters/submit-reading", json=mine.payload(at=AT), headers=headers)
    assert ok.status_code == 201, ok.text
    refused = client.post("/api/meters/submit-reading", json=other.payload(at=AT), headers=headers)
    assert (refused.status_code, error_of(refused)["code"]) == (403, "forbidden")
    batch = client.post(
        "/api/meters/submit-batch",
        json={
            "readings": [
                mine.payload(at=AT - timedelta(hours=1)),
                other.payload(at=AT - timedelta(hours=1)),
                mine.payload(at=AT - timedelta(hours=2)),
            ]
        },
        headers=headers,
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "accepted"),
    ]
    assert results[1]["error"]["code"] == "forbidden"
    assert stored(session) == 3


def test_a_gateway_batch_over_many_meters_is_one_commit(
    api: FastAPI, client: TestClient, session: Session, app: App, admin: User
) -> None:
    """Every meter's readings in one transaction; a suspended meter's are rejected one by
    one (its event written) and the others stored, not the whole batch refused."""
    keys = [make_meter(session, serial=f"G-{n}") for n in range(3)]
    paused = make_meter(session, serial="G-P", suspended=True)
    key = _gateway(client, auth_headers(app, admin), "headend-5", ["G-0", "G-1", "G-2", "G-P"])
    commits: list[int] = []
    event.listen(api.state.api.core.sessions, "after_commit", lambda _s: commits.append(1))
    readings = [
        keys[2].payload(at=AT),
        paused.payload(at=AT),
        keys[0].payload(at=AT),
        keys[1].payload(at=AT),
        keys[0].payload(at=AT - timedelta(hours=1)),
    ]
    response = client.post(
        "/api/meters/submit-batch", json={"readings": readings}, headers={"X-API-Key": key}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["index"], r["status"]) for r in body["results"]] == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "accepted"),
        (3, "accepted"),
        (4, "accepted"),
    ]
    assert body["results"][1]["error"]["code"] == "meter_suspended"
    assert (body["accepted"], body["rejected"]) == (4, 1)
    assert commits == [1]
    assert stored(session) == 4
    session.expire_all()
    refused = session.scalars(
        select(Event.payload).where(Event.type == "meter_reading_validation_failed")
    ).all()
    session.rollback()
    assert [(e["meter_serial"], e["error_code"]) for e in refused] == [("G-P", "meter_suspended")]


def test_rotate_reassign_and_revoke(
    client: TestClient, session: Session, app: App, admin: User
) -> None:
    _fleet(session, "GTX-R1", "GTX-R2")
    headers = auth_headers(app, admin)
    old = _gateway(client, headers, "headend-3", ["GTX-R1"])
    rotated = client.post("/api/admin/gateways/headend-3/rotate-key", headers=headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["api_key"]
    body = sim.plain("GTX-R1", generated=1, consumed=0, at=AT)
    assert sim.post(client, body, old).status_code == 401
    assert sim.post(client, body, new).status_code == 202
    moved = client.put(
        "/api/admin/gateways/headend-3/meters", json={"meters": ["GTX-R2"]}, headers=headers
    )
    assert moved.json()["meters"] == ["GTX-R2"]
    later = sim.plain("GTX-R1", generated=1, consumed=0, at=AT - timedelta(hours=1))
    assert sim.post(client, later, new).status_code == 403
    listed = client.get("/api/admin/gateways", headers=headers).json()
    assert [(g["name"], g["status"], g["meters"]) for g in listed] == [
        ("headend-3", "active", ["GTX-R2"])
    ]
    revoked = client.post("/api/admin/gateways/headend-3/revoke", headers=headers)
    assert revoked.json()["status"] == "revoked"
    r2 = sim.plain("GTX-R2", generated=1, consumed=0, at=AT)
    assert sim.post(client, r2, new).status_code == 401
    # Only the key's hash is stored.
    assert session.scalar(select(Gateway.api_key_hash)) == hash_api_key(new)


def test_only_admins_manage_gateways(
    client: TestClient, session: Session, app: App, operator: User
) -> None:
    response = client.post(
        "/api/admin/gateways",
        json={"name": "x", "meters": []},
        headers=auth_headers(app, operator),
    )
    assert response.status_code == 403
    assert client.get("/api/admin/gateways", headers=auth_headers(app, operator)).status_code == 200
