"""CSV through the API: `/api/exports/{table}` and `?format=csv` / `Accept: text/csv` on
the listings; the rows equal the dashboard's export for the same filter."""

from __future__ import annotations

import csv
import io

from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import User
from tests.api.conftest import TestClient, auth_headers, error_of
from tests.pages.seed import seed_dashboard


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _seed(session: Session) -> dict[str, User]:
    return seed_dashboard(session).users


def test_export_readings_as_csv_with_filters(
    client: TestClient, app: App, session: Session
) -> None:
    users = _seed(session)
    ops = auth_headers(app, users["ops"])
    response = client.get("/api/exports/readings?format=csv&meter=MTR-A1", headers=ops)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = _rows(response.text)
    assert rows and {row["meter_serial"] for row in rows} == {"MTR-A1"}
    by_accept = client.get(
        "/api/exports/readings", params={"meter": "MTR-A1"}, headers={**ops, "Accept": "text/csv"}
    )
    assert _rows(by_accept.text) == rows
    since = client.get(
        "/api/exports/readings",
        params={"format": "csv", "since": "2026-11-20T11:20:00Z"},
        headers=ops,
    )
    assert {row["reading_timestamp"] >= "2026-11-20T11:20:00" for row in _rows(since.text)} == {
        True
    }


def test_export_refusals(client: TestClient, app: App, session: Session) -> None:
    users = _seed(session)
    alice = auth_headers(app, users["alice"])
    own = _rows(client.get("/api/exports/readings?format=csv", headers=alice).text)
    assert own and {row["username"] for row in own} == {"alice"}
    refused = client.get("/api/exports/mints?format=csv", headers=alice)
    assert (refused.status_code, error_of(refused)["code"]) == (403, "forbidden")
    ops = auth_headers(app, users["ops"])
    assert client.get("/api/exports/users?format=csv", headers=ops).status_code == 403
    json_only = client.get("/api/exports/events", headers={**ops, "Accept": "application/json"})
    assert (json_only.status_code, error_of(json_only)["code"]) == (406, "not_acceptable")
    bad = client.get("/api/exports/readings?format=csv&status=lost", headers=ops)
    assert (bad.status_code, error_of(bad)["field"]) == (422, "status")
    unknown = client.get("/api/exports/wallets?format=csv", headers=ops)
    assert unknown.status_code == 422
    assert client.get("/api/exports/readings?format=csv").status_code == 401


def test_listings_answer_csv(client: TestClient, app: App, session: Session) -> None:
    users = _seed(session)
    root = auth_headers(app, users["root"])
    meters_json = client.get("/api/admin/meters", headers=root).json()
    meters_csv = _rows(client.get("/api/admin/meters?format=csv", headers=root).text)
    assert sorted(row["serial"] for row in meters_csv) == sorted(m["serial"] for m in meters_json)
    users_csv = client.get("/api/admin/users", headers={**root, "Accept": "text/csv"})
    assert users_csv.headers["content-type"].startswith("text/csv")
    assert sorted(row["username"] for row in _rows(users_csv.text)) == sorted(
        u["username"] for u in client.get("/api/admin/users", headers=root).json()
    )


def test_a_filter_holding_a_nul_is_a_422_before_any_row(
    client: TestClient, app: App, session: Session
) -> None:
    """PostgreSQL refuses NUL in text: found at the edge, not halfway through the CSV."""
    users = _seed(session)
    ops = auth_headers(app, users["ops"])
    for name in ("meter", "user", "status", "types", "text", "role"):
        response = client.get(
            "/api/exports/events", params={"format": "csv", name: "MTR\x00A1"}, headers=ops
        )
        assert response.status_code == 422, (name, response.text)
        error = error_of(response)
        assert error["code"] == "invalid_format" and name in str(error), error
