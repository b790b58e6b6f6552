"""Server-side sessions on the API: every token is honoured only while its row is live.

Time moves through the injected wall clock (`clock.now`); nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import LoginSession, Role, User
from core.sessions import SessionPolicy
from serving.client_address import TrustedProxies
from tests.api.conftest import WallClock, auth_headers, error_of
from tests.factories import DEFAULT_PASSWORD, NOW, login_token, make_user


def log_in(client: TestClient, username: str, password: str = DEFAULT_PASSWORD) -> dict:
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def status(client: TestClient, headers: dict) -> int:
    return client.get("/api/auth/me", headers=headers).status_code


def message(client: TestClient, headers: dict) -> str:
    response = client.get("/api/auth/me", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    error = error_of(response)
    assert error["code"] == "unauthenticated"
    return error["message"]


@pytest.fixture
def alice(session: Session) -> User:
    return make_user(session, "alice")


def test_a_login_writes_a_session_whose_id_is_the_token_jti(
    client: TestClient, app: App, alice: User
) -> None:
    headers = log_in(client, "alice")
    claims = jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})
    with app.sessions() as session:
        row = session.get(LoginSession, claims["jti"])
        assert row is not None
        assert (row.user_id, row.kind, row.revoked_at) == (alice.id, "api", None)
        assert row.expires_at == NOW + timedelta(hours=8)
        assert row.idle_timeout_secs is None  # API tokens end by lifetime, not inactivity
    assert claims["exp"] == int(row.expires_at.timestamp())


def test_logout_ends_this_session_only(client: TestClient, alice: User) -> None:
    first, second = log_in(client, "alice"), log_in(client, "alice")
    assert client.post("/api/auth/logout", headers=first).status_code == 204
    assert message(client, first) == "this session has ended (logout); log in again"
    assert status(client, second) == 200
    assert client.post("/api/auth/logout", headers=first).status_code == 401


def test_disabling_ends_sessions_and_enabling_revives_none(
    client: TestClient, app: App, alice: User, admin: User
) -> None:
    staff = auth_headers(app, admin)
    old = log_in(client, "alice")
    assert client.post("/api/admin/users/alice/disable", headers=staff).status_code == 200
    assert status(client, old) == 401
    assert client.post("/api/admin/users/alice/enable", headers=staff).status_code == 200
    assert message(client, old) == "this session has ended (disabled); log in again"
    assert status(client, log_in(client, "alice")) == 200


def test_a_password_change_ends_every_session_and_answers_with_a_new_one(
    client: TestClient, alice: User
) -> None:
    here, elsewhere = log_in(client, "alice"), log_in(client, "alice")
    body = {"current_password": "wrong-password", "new_password": "a-new-long-password"}
    wrong = client.post("/api/auth/password", json=body, headers=here)
    assert (wrong.status_code, error_of(wrong)["field"]) == (401, "current_password")
    assert status(client, here) == 200  # a wrong guess ends nothing

    body["current_password"] = DEFAULT_PASSWORD
    response = client.post("/api/auth/password", json=body, headers=here)
    assert response.status_code == 200, response.text
    fresh = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert message(client, here) == "this session has ended (password_changed); log in again"
    assert status(client, elsewhere) == 401
    assert status(client, fresh) == 200
    old_login = client.post(
        "/api/auth/login", json={"username": "alice", "password": DEFAULT_PASSWORD}
    )
    assert old_login.status_code == 401
    assert status(client, log_in(client, "alice", "a-new-long-password")) == 200


def test_a_short_new_password_is_refused_with_its_field(client: TestClient, alice: User) -> None:
    headers = log_in(client, "alice")
    body = {"current_password": DEFAULT_PASSWORD, "new_password": "short"}
    response = client.post("/api/auth/password", json=body, headers=headers)
    assert (response.status_code, error_of(response)["field"]) == (422, "new_password")
    assert status(client, headers) == 200


def test_an_admin_ends_a_users_sessions(
    client: TestClient, app: App, alice: User, admin: User, operator: User
) -> None:
    tokens = [log_in(client, "alice") for _ in range(2)]
    staff = auth_headers(app, admin)
    refused = client.post(
        "/api/admin/users/alice/end-sessions", headers=auth_headers(app, operator)
    )
    assert refused.status_code == 403
    response = client.post("/api/admin/users/alice/end-sessions", headers=staff)
    assert response.json() == {"username": "alice", "ended": 2}
    assert [status(client, headers) for headers in tokens] == [401, 401]
    assert status(client, staff) == 200  # the admin's own session is untouched
    again = client.post("/api/admin/users/alice/end-sessions", headers=staff)
    assert again.json()["ended"] == 0
    assert client.post("/api/admin/users/nobody/end-sessions", headers=staff).status_code == 404
    assert status(client, log_in(client, "alice")) == 200


def test_the_absolute_lifetime_is_configurable(
    api: FastAPI, client: TestClient, clock: WallClock, alice: User
) -> None:
    api.state.api.sessions = SessionPolicy(max_hours=2)
    headers = log_in(client, "alice")
    clock.now = NOW + timedelta(hours=2) - timedelta(seconds=1)
    assert status(client, headers) == 200
    clock.now = NOW + timedelta(hours=2)
    assert message(client, headers) == "the session has expired; log in again"


def test_last_seen_is_written_at_most_once_a_minute(
    client: TestClient, app: App, clock: WallClock, alice: User
) -> None:
    headers = log_in(client, "alice")

    def last_seen():
        with app.sessions() as session:
            return session.scalar(select(LoginSession.last_seen_at))

    clock.now = NOW + timedelta(seconds=59)
    assert status(client, headers) == 200
    assert last_seen() == NOW
    clock.now = NOW + timedelta(minutes=3)
    assert status(client, headers) == 200
    assert last_seen() == NOW + timedelta(minutes=3)
    clock.now = NOW + timedelta(hours=7)  # hours of quiet: an API session does not idle out
    assert status(client, headers) == 200


def _signed(app: App, claims: dict) -> dict:
    token = jwt.encode(claims, app.api_secret_key(), algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def test_a_validly_signed_token_without_a_live_session_is_a_401(
    client: TestClient, app: App, session: Session, alice: User, admin: User
) -> None:
    real = login_token(session, alice, app.api_secret_key(), now=NOW)
    jti = jwt.decode(real, options={"verify_signature": False})["jti"]
    base = {"sub": str(alice.id), "role": "prosumer", "exp": 2_000_000_000}
    cases = {
        "no jti": base,
        "unknown jti": {**base, "jti": "x" * 24},
        "jti too long": {**base, "jti": "x" * 33},
        "jti not text": {**base, "jti": 12345678901234567890},
        "jti with NUL": {**base, "jti": "a" * 20 + "\x00"},
        # Alice's session claimed for the admin: the row names its user.
        "someone else's jti": {**base, "sub": str(admin.id), "role": Role.ADMIN.value, "jti": jti},
        "sub overflows": {**base, "sub": "9" * 30, "jti": jti},
        "exp overflows": {**base, "exp": 10**20, "jti": jti},
    }
    for name, claims in cases.items():
        response = client.get("/api/auth/me", headers=_signed(app, claims))
        assert (name, response.status_code) == (name, 401), response.text
        assert error_of(response)["code"] == "unauthenticated"
    assert status(client, {"Authorization": f"Bearer {real}"}) == 200


def _wrong_logins(client: TestClient, usernames: list[str], forwarded: list[str]) -> list[int]:
    return [
        client.post(
            "/api/auth/login",
            json={"username": username, "password": "wrong-password"},
            headers={"X-Forwarded-For": address},
        ).status_code
        for username, address in zip(usernames, forwarded, strict=True)
    ]


def test_35_failures_with_varying_x_forwarded_for_from_loopback_get_429(
    client: TestClient,
) -> None:
    """FORWARDED_ALLOW_IPS is unset: loopback's X-Forwarded-For is not believed."""
    statuses = _wrong_logins(
        client, [f"user{n}" for n in range(35)], [f"198.51.100.{n}" for n in range(35)]
    )
    assert statuses == [401] * 30 + [429] * 5


def test_behind_a_trusted_proxy_each_client_and_each_username_has_its_own_limit(
    api: FastAPI, client: TestClient, alice: User
) -> None:
    state = api.state.api
    state.proxies = TrustedProxies.parse("127.0.0.1")
    # Eleven clients try one username: the username's bucket (10) stops the eleventh.
    statuses = _wrong_logins(client, ["alice"] * 11, [f"198.51.100.{n}" for n in range(11)])
    assert statuses == [401] * 10 + [429]
    refused = client.post(
        "/api/auth/login",
        json={"username": "alice", "password": DEFAULT_PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert (refused.status_code, error_of(refused)["code"]) == (429, "rate_limited")
    assert "this username" in error_of(refused)["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    # Another username from a fresh client is unaffected.
    assert _wrong_logins(client, ["bob"], ["203.0.113.10"]) == [401]
