"""Login, roles, and the admin endpoints for users and meters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import issue_token
from core.bootstrap import App
from core.db.models import Event, Meter, Role, User
from core.meters import hash_api_key
from tests.api.conftest import TestClient, WallClock, auth_headers, error_of
from tests.factories import DEFAULT_PASSWORD, NOW, keypair_for, make_meter, make_user, wallet_for


def test_login_returns_a_bearer_token(client: TestClient, session: Session) -> None:
    make_user(session, "alice")
    response = client.post(
        "/api/auth/login", json={"username": "alice", "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["token_type"], body["role"], body["expires_in"]) == (
        "bearer",
        "prosumer",
        8 * 3600,
    )
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "alice"


@pytest.mark.parametrize(
    ("username", "password", "disabled"),
    [
        ("alice", "wrong", False),
        ("nobody", DEFAULT_PASSWORD, False),
        ("alice", DEFAULT_PASSWORD, True),
    ],
)
def test_login_refusals(
    client: TestClient, session: Session, username: str, password: str, disabled: bool
) -> None:
    make_user(session, "alice", disabled=disabled)
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert (response.status_code, error_of(response)["code"]) == (401, "unauthenticated")


def test_a_missing_field_is_invalid_format(client: TestClient) -> None:
    response = client.post("/api/auth/login", json={"username": "x"})
    error = error_of(response)
    assert (response.status_code, error["code"], error["field"]) == (
        422,
        "invalid_format",
        "password",
    )


def test_tokens_expire_and_die_with_a_disabled_account(
    client: TestClient, app: App, session: Session, clock: WallClock, admin: User
) -> None:
    user = make_user(session, "alice")
    headers = auth_headers(app, user)
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    client.post("/api/admin/users/alice/disable", headers=auth_headers(app, admin))
    assert client.get("/api/auth/me", headers=headers).status_code == 401
    client.post("/api/admin/users/alice/enable", headers=auth_headers(app, admin))
    clock.now = NOW + timedelta(hours=12)
    assert error_of(client.get("/api/auth/me", headers=headers))["message"].startswith(
        "the session"
    )
    forged = issue_token(
        user, "another-secret-of-sufficient-length!", session_id="s" * 24, now=NOW
    ).access_token
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )


def test_admin_creates_users(client: TestClient, app: App, admin: User) -> None:
    headers = auth_headers(app, admin)
    body = {
        "username": "bob",
        "password": "long-enough",
        "role": "prosumer",
        "wallet_address": wallet_for("bob"),
    }
    response = client.post("/api/admin/users", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"],
        "username": "bob",
        "role": "prosumer",
        "wallet_address": wallet_for("bob"),
    }
    assert client.post("/api/admin/users", json=body, headers=headers).status_code == 409
    no_wallet = {**body, "username": "carol", "wallet_address": None}
    response = client.post("/api/admin/users", json=no_wallet, headers=headers)
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_wallet")
    bad_wallet = {**body, "username": "carol", "wallet_address": "0OIl"}
    assert (
        error_of(client.post("/api/admin/users", json=bad_wallet, headers=headers))["field"]
        == "wallet_address"
    )
    staff = {"username": "op2", "password": "long-enough", "role": "operator"}
    assert client.post("/api/admin/users", json=staff, headers=headers).status_code == 201
    listed = client.get("/api/admin/users", headers=headers).json()
    assert [u["username"] for u in listed] == ["root", "bob", "op2"]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.PROSUMER])
def test_only_admins_administer(client: TestClient, app: App, session: Session, role: Role) -> None:
    user = make_user(session, "someone", role=role)
    headers = auth_headers(app, user)
    body = {"username": "x1", "password": "long-enough", "role": "operator"}
    response = client.post("/api/admin/users", json=body, headers=headers)
    assert (response.status_code, error_of(response)["code"]) == (403, "forbidden")
    meter = {
        "serial": "M-1",
        "owner_username": "someone",
        "public_key": str(keypair_for("m").pubkey()),
    }
    assert client.post("/api/admin/meters", json=meter, headers=headers).status_code == 403
    assert client.post("/api/admin/meters", json=meter).status_code == 401


def test_admin_registers_a_meter_and_manages_it(
    client: TestClient, app: App, session: Session, admin: User
) -> None:
    make_user(session, "alice")
    headers = auth_headers(app, admin)
    key = str(keypair_for("meter:M-1").pubkey())
    body = {"serial": "M-1", "owner_username": "alice", "public_key": key}
    response = client.post("/api/admin/meters", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "serial", "owner_username", "api_key"}
    assert (created["serial"], created["owner_username"]) == ("M-1", "alice")
    stored = session.scalar(select(Meter))
    assert stored is not None and stored.api_key_hash == hash_api_key(created["api_key"])
    session.rollback()  # end the read: on SQLite an open transaction holds the write lock
    assert client.post("/api/admin/meters", json=body, headers=headers).status_code == 409
    bad = client.post(
        "/api/admin/meters", json={**body, "serial": "M-2", "public_key": "abc"}, headers=headers
    )
    assert (bad.status_code, error_of(bad)["field"]) == (422, "public_key")
    nobody = client.post(
        "/api/admin/meters",
        json={**body, "serial": "M-2", "owner_username": "zed"},
        headers=headers,
    )
    assert nobody.status_code == 404
    assert (
        client.post("/api/admin/meters/M-1/suspend", headers=headers).json()["status"]
        == "suspended"
    )
    assert client.post("/api/admin/meters/M-1/resume", headers=headers).json()["status"] == "active"
    rotated = client.post("/api/admin/meters/M-1/rotate-key", headers=headers).json()
    assert rotated["api_key"] != created["api_key"]
    listed = client.get("/api/admin/meters", headers=headers).json()
    assert [(m["serial"], m["owner_username"], m["status"]) for m in listed] == [
        ("M-1", "alice", "active")
    ]
    assert client.post("/api/admin/meters/M-9/suspend", headers=headers).status_code == 404


def test_a_suspended_meter_over_http(
    client: TestClient, app: App, session: Session, admin: User
) -> None:
    keys = make_meter(session, serial="M-1")
    client.post("/api/admin/meters/M-1/suspend", headers=auth_headers(app, admin))
    response = client.post("/api/meters/submit-reading", json=keys.payload(), headers=keys.headers)
    assert (response.status_code, error_of(response)["code"]) == (403, "meter_suspended")
    client.post("/api/admin/meters/M-1/resume", headers=auth_headers(app, admin))
    assert (
        client.post(
            "/api/meters/submit-reading", json=keys.payload(), headers=keys.headers
        ).status_code
        == 201
    )


def test_registry_fields_at_registration_and_an_audited_edit(
    client: TestClient, app: App, session: Session, admin: User
) -> None:
    make_user(session, "alice")
    session.commit()
    headers = auth_headers(app, admin)
    key = str(keypair_for("meter:M-1").pubkey())
    body = {
        "serial": "M-1",
        "owner_username": "alice",
        "public_key": key,
        "technology": "wind",
        "capacity_kw": "3000.5",
        "country": "de",
        "grid_region": "de-lu",
        "commissioning_date": "2019-06-30",
    }
    assert client.post("/api/admin/meters", json=body, headers=headers).status_code == 201
    [listed] = client.get("/api/admin/meters", headers=headers).json()
    assert {k: listed[k] for k in ("technology", "capacity_kw", "country", "grid_region")} == {
        "technology": "wind",
        "capacity_kw": "3000.5",
        "country": "DE",
        "grid_region": "DE-LU",
    }
    assert (listed["commissioning_date"], listed["latitude"]) == ("2019-06-30", None)
    assert listed["certificates_blocked"] is None

    path = "/api/admin/meters/M-1/device"
    cleared = client.patch(path, json={"grid_region": None}, headers=headers)
    assert cleared.status_code == 200, cleared.text
    blocked = cleared.json()["certificates_blocked"]
    assert blocked == "cannot issue certificates: missing grid_region"
    assert cleared.json()["capacity_kw"] == "3000.5"  # fields not given are left alone
    for bad, field in (
        ({"capacity_kw": 5.5}, "capacity_kw"),  # a float is refused: exact decimals only
        ({"latitude": "91", "longitude": "0"}, "latitude"),
        ({"technology": "coal"}, "technology"),
    ):
        refused = client.patch(path, json=bad, headers=headers)
        assert refused.status_code == 422, refused.text
        assert field in (error_of(refused).get("field") or "")
    other = make_user(session, "op", role=Role.OPERATOR)
    session.commit()
    assert client.patch(path, json={}, headers=auth_headers(app, other)).status_code == 403
    assert client.patch("/api/admin/meters/M-9/device", json={}, headers=headers).status_code == 404
    session.rollback()
    edits = [
        e.payload
        for e in session.scalars(select(Event).order_by(Event.id))
        if e.payload.get("change") == "device_updated"
    ]
    assert edits == [
        {
            "meter_serial": "M-1",
            "change": "device_updated",
            "by": admin.username,
            "changes": {"grid_region": {"old": "DE-LU", "new": None}},
        }
    ]
