"""End to end over a real uvicorn server: the admin flow a deployment starts with, and
concurrent submissions racing on one meter (never a 5xx)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from core.bootstrap import App
from core.db.models import MeterReading, Role
from tests.api.server import serve
from tests.factories import (
    DEFAULT_PASSWORD,
    keypair_for,
    make_meter,
    make_user,
    signed_reading,
    wallet_for,
)

# The real server runs on the system clock.
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def base_url(app: App) -> Iterator[str]:
    with serve(create_app(app, config_ttl_secs=0, create_first_admin=False)) as url:
        yield url


def test_the_admin_flow_over_real_http(base_url: str, session: Session) -> None:
    make_user(session, "root", role=Role.ADMIN)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        login = http.post(
            "/api/auth/login", json={"username": "root", "password": DEFAULT_PASSWORD}
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        user = {
            "username": "alice",
            "password": "long-enough",
            "role": "prosumer",
            "wallet_address": wallet_for("alice"),
        }
        assert http.post("/api/admin/users", json=user, headers=admin).status_code == 201
        keypair = keypair_for("meter:SIM-1")
        meter = {"serial": "SIM-1", "owner_username": "alice", "public_key": str(keypair.pubkey())}
        created = http.post("/api/admin/meters", json=meter, headers=admin).json()
        body = signed_reading(keypair, "SIM-1", kwh="1.234", at=AT)
        key = {"X-API-Key": created["api_key"]}
        first = http.post("/api/meters/submit-reading", json=body, headers=key)
        assert first.status_code == 201, first.text
        again = http.post("/api/meters/submit-reading", json=body, headers=key)
        assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
        login = http.post("/api/auth/login", json={"username": "alice", "password": "long-enough"})
        mine = http.get(
            "/api/meters/my-readings",
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        )
        assert [r["kwh_amount"] for r in mine.json()["readings"]] == ["1.234000"]
        assert http.get("/health").json()["database"] == "ok"


def _race(base_url: str, requests: list[tuple[dict, dict]]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(requests))

    def send(request: tuple[dict, dict]) -> httpx.Response:
        body, headers = request
        with httpx.Client(base_url=base_url, timeout=60) as http:
            barrier.wait()
            return http.post("/api/meters/submit-reading", json=body, headers=headers)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def test_the_same_reading_sent_concurrently_is_stored_once(base_url: str, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    body = signed_reading(keys.keypair, "M-1", kwh="2.01", at=AT)
    responses = _race(base_url, [(body, keys.headers)] * 16)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 15 + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert session.scalar(select(func.count()).select_from(MeterReading)) == 1


def test_different_readings_racing_in_one_window(base_url: str, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    bodies = [
        signed_reading(keys.keypair, "M-1", kwh="1", at=AT + timedelta(seconds=i))
        for i in range(12)
    ]
    responses = _race(base_url, [(body, keys.headers) for body in bodies])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 11, [r.text for r in responses]
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    assert {
        r.json()["error"]["existing_reading_id"] for r in responses if r.status_code == 409
    } == {winner}
    assert session.scalar(select(func.count()).select_from(MeterReading)) == 1
