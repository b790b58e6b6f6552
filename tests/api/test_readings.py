"""Reading queries with role checks, stats in exact units, and mint-from-reading."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import Role, User
from tests.api.conftest import TestClient, auth_headers, error_of
from tests.factories import make_meter, make_reading, make_user


@pytest.fixture
def fleet(session: Session) -> dict:
    """Two prosumers with a meter each and readings in several states."""
    alice, bob = make_user(session, "alice"), make_user(session, "bob")
    a, b = make_meter(session, alice, serial="A-1"), make_meter(session, bob, serial="B-1")
    readings = {
        "a_pending": make_reading(session, a.meter, kwh="2.01"),
        "a_minted": make_reading(
            session,
            a.meter,
            kwh="0.29",
            status="minted",
            token_base_units=290_000_000,
            mint_tx_signature="5sig",
        ),
        "a_review": make_reading(session, a.meter, kwh="60", status="review"),
        "a_rejected": make_reading(session, a.meter, kwh="1", status="rejected"),
        "b_pending": make_reading(session, b.meter, kwh="1.5"),
    }
    return {"alice": alice, "bob": bob, **{k: r.id for k, r in readings.items()}}


def test_my_readings_are_mine_only(client: TestClient, app: App, fleet: dict) -> None:
    headers = auth_headers(app, fleet["alice"])
    body = client.get("/api/meters/my-readings", headers=headers).json()
    assert body["total"] == 4 and (body["page"], body["page_size"]) == (1, 50)
    assert {r["meter_serial"] for r in body["readings"]} == {"A-1"}
    minted = client.get("/api/meters/my-readings?status=minted", headers=headers).json()
    assert [(r["id"], r["minted"], r["token_base_units"]) for r in minted["readings"]] == [
        (fleet["a_minted"], True, 290_000_000)
    ]
    page = client.get("/api/meters/my-readings?page=2&page_size=3", headers=headers).json()
    assert (len(page["readings"]), page["total"]) == (1, 4)
    bad = client.get("/api/meters/my-readings?status=lost", headers=headers)
    assert (bad.status_code, error_of(bad)["field"]) == (422, "status")
    assert client.get("/api/meters/my-readings?page=0", headers=headers).status_code == 422


def test_my_readings_is_for_prosumers(client: TestClient, app: App, operator: User) -> None:
    response = client.get("/api/meters/my-readings", headers=auth_headers(app, operator))
    assert (response.status_code, error_of(response)["code"]) == (403, "forbidden")
    assert client.get("/api/meters/my-readings").status_code == 401


def test_minting_status_for_the_owner_and_staff_only(
    client: TestClient, app: App, fleet: dict, operator: User
) -> None:
    url = f"/api/meters/minting-status/{fleet['a_minted']}"
    mine = client.get(url, headers=auth_headers(app, fleet["alice"]))
    assert mine.status_code == 200
    body = mine.json()
    assert (body["status"], body["token_base_units"], body["mint_tx_signature"]) == (
        "minted",
        290_000_000,
        "5sig",
    )
    assert {"attempts", "mint_batch_id", "last_error", "next_attempt_at"} <= set(body)
    assert client.get(url, headers=auth_headers(app, operator)).status_code == 200
    # Bob may not learn that Alice's reading exists.
    theirs = client.get(url, headers=auth_headers(app, fleet["bob"]))
    assert (theirs.status_code, error_of(theirs)["code"]) == (404, "not_found")
    missing = client.get("/api/meters/minting-status/999999", headers=auth_headers(app, operator))
    assert missing.status_code == 404


def test_stats_own_for_prosumers_all_for_staff(
    client: TestClient, app: App, fleet: dict, operator: User
) -> None:
    own = client.get("/api/meters/stats", headers=auth_headers(app, fleet["alice"])).json()
    assert own == {
        "scope": "own",
        "total_readings": 3,
        "total_kwh": "62.300000",
        "minted_kwh": "0.290000",
        "unminted_kwh": "62.010000",
        "tokens_minted": 290_000_000,
        "readings_by_status": {
            "pending": 1,
            "review": 1,
            "minting": 0,
            "minted": 1,
            "failed": 0,
            "rejected": 1,
        },
    }
    everything = client.get("/api/meters/stats", headers=auth_headers(app, operator)).json()
    assert (everything["scope"], everything["total_readings"], everything["total_kwh"]) == (
        "all",
        4,
        "63.800000",
    )


def test_unminted_is_for_staff(client: TestClient, app: App, fleet: dict, operator: User) -> None:
    body = client.get("/api/admin/meters/unminted", headers=auth_headers(app, operator)).json()
    assert [r["id"] for r in body["readings"]] == [
        fleet["a_pending"],
        fleet["a_review"],
        fleet["b_pending"],
    ]
    review = client.get(
        "/api/admin/meters/unminted?status=review", headers=auth_headers(app, operator)
    ).json()
    assert [r["id"] for r in review["readings"]] == [fleet["a_review"]]
    denied = client.get("/api/admin/meters/unminted", headers=auth_headers(app, fleet["alice"]))
    assert denied.status_code == 403


def test_mint_from_reading(
    client: TestClient, app: App, session: Session, fleet: dict, operator: User
) -> None:
    admin = make_user(session, "root", role=Role.ADMIN)
    url, headers = "/api/admin/meters/mint-from-reading", auth_headers(app, admin)
    queued = client.post(url, json={"reading_id": fleet["a_review"]}, headers=headers)
    assert queued.status_code == 202, queued.text
    assert queued.json() == {
        "reading_id": fleet["a_review"],
        "status": "queued",
        "reading_status": "pending",
    }
    minted = client.post(url, json={"reading_id": fleet["a_minted"]}, headers=headers)
    assert (minted.status_code, error_of(minted)["code"]) == (409, "already_minted")
    rejected = client.post(url, json={"reading_id": fleet["a_rejected"]}, headers=headers)
    assert rejected.status_code == 409
    assert client.post(url, json={"reading_id": 999999}, headers=headers).status_code == 404
    staff = client.post(
        url, json={"reading_id": fleet["b_pending"]}, headers=auth_headers(app, operator)
    )
    assert staff.status_code == 403
