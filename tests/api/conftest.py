"""The API over a fresh database (SQLite and PostgreSQL), with injected clocks.

`client` is Starlette's TestClient (real HTTP semantics through ASGI, lifespan
included) posing as a loopback client. Time is `clock.now` (wall) and
`ticks.now` (monotonic, for rate limits): tests move them, nobody sleeps.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, object_session

from api.app import create_app
from core.bootstrap import App
from core.db.models import Role, User
from tests.factories import NOW, login_token, make_user

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; httpx (pinned) works the same.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


class WallClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Ticks:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def api(app: App, clock: WallClock, ticks: Ticks) -> FastAPI:
    return create_app(
        app, clock=clock, monotonic=ticks, config_ttl_secs=0, create_first_admin=False
    )


@pytest.fixture
def client(api: FastAPI) -> Iterator[TestClient]:
    with TestClient(api, client=("127.0.0.1", 50000)) as client:
        yield client


@pytest.fixture
def session(app: App) -> Iterator[Session]:
    with app.sessions() as session:
        yield session


def auth_headers(app: App, user: User) -> dict[str, str]:
    """A session token for `user`, as POST /api/auth/login would issue it."""
    # The user's own session when it is still open: on SQLite it may hold the write lock.
    mine = object_session(user)
    if mine is not None:
        return {"Authorization": f"Bearer {login_token(mine, user, app.api_secret_key(), now=NOW)}"}
    with app.sessions() as session:
        token = login_token(session, user, app.api_secret_key(), now=NOW)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(session: Session) -> User:
    return make_user(session, "root", role=Role.ADMIN)


@pytest.fixture
def operator(session: Session) -> User:
    return make_user(session, "op", role=Role.OPERATOR)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]
