"""A dropped database connection is a 503 to retry, once; the retry is stored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from api.app import create_app
from core.bootstrap import bootstrap
from tests.api.conftest import TestClient, Ticks, WallClock
from tests.factories import NOW, make_meter


@pytest.mark.postgres
def test_a_connection_killed_under_the_api_answers_503_then_recovers(
    make_settings, pg_url: str
) -> None:
    core = bootstrap(make_settings(DATABASE_URL=pg_url), pre_ping=False)  # as python -m api
    with core.sessions() as session:
        keys = make_meter(session, serial="OUT-1")
    api = create_app(
        core, clock=WallClock(), monotonic=Ticks(), config_ttl_secs=0, create_first_admin=False
    )
    later = keys.payload(kwh="2.0", at=NOW - timedelta(hours=1))
    with TestClient(api) as client:
        first = client.post(
            "/api/meters/submit-reading", headers=keys.headers, json=keys.payload(kwh="1.0")
        )
        assert first.status_code == 201
        killer = create_engine(pg_url)  # a database restart, as the API's pool sees it
        with killer.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        killer.dispose()
        lost = client.post("/api/meters/submit-reading", headers=keys.headers, json=later)
        assert lost.status_code == 503, lost.text
        assert lost.json()["error"]["code"] == "database_unavailable"
        assert lost.headers["Retry-After"] == "1"
        retried = client.post("/api/meters/submit-reading", headers=keys.headers, json=later)
        assert retried.status_code == 201  # nothing was stored by the failed attempt
    core.close()
