"""Plausible energy over the API, on SQLite and PostgreSQL: what mints and what waits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import MeterReading, User
from core.minting.claim import claim_pending
from tests.api.conftest import TestClient, auth_headers
from tests.factories import NOW, make_meter

BATCH = "/api/meters/submit-batch"
READING = "/api/meters/submit-reading"
STEP = timedelta(minutes=15)


def _statuses(session: Session) -> list[tuple[str, str | None]]:
    session.expire_all()
    rows = session.execute(
        select(MeterReading.status, MeterReading.review_reason).order_by(
            MeterReading.reading_timestamp
        )
    )
    return [tuple(row) for row in rows]


def test_a_week_of_100_kwh_every_15_minutes_waits_in_review_and_nothing_mints(
    client: TestClient, app: App, session: Session, admin: User
) -> None:
    """The red-team back-fill: 669 readings of 100 kWh, 15 min apart, over 7 days
    (once 348 -> 67,248 GRX for one prosumer within a second)."""
    keys = make_meter(session, serial="M-1")
    readings = [keys.payload(kwh="100", at=NOW - STEP * (669 - i)) for i in range(669)]
    response = client.post(BATCH, json={"readings": readings}, headers=keys.headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 669
    statuses = _statuses(session)
    assert [status for status, _ in statuses] == ["review"] * 669
    # 100 kWh in 15 min is 400 kW; the newest back-dated ones are not beyond the horizon.
    assert statuses[-1][1].startswith("implausible energy: 100.000000 kWh in 15 min")
    assert statuses[0][1].startswith("back-filled: 167.2 h old")  # the first has no predecessor
    claimed = claim_pending(session, app.config(), now=NOW, wallets_per_transaction=20)
    assert claimed == []
    page = client.get("/api/admin/meters/unminted?status=review&page_size=500",
                      headers=auth_headers(app, admin)).json()  # fmt: skip
    assert page["total"] == 669


def test_a_plausible_back_fill_within_the_horizon_mints(
    client: TestClient, app: App, session: Session
) -> None:
    keys = make_meter(session, serial="M-1")
    readings = [keys.payload(kwh="2.5", at=NOW - STEP * (24 - i)) for i in range(24)]  # 10 kW
    response = client.post(BATCH, json={"readings": readings}, headers=keys.headers)
    assert response.json()["accepted"] == 24
    assert {status for status, _ in _statuses(session)} == {"pending"}
    # Just accepted: they mint once the oldest has waited TOKENIZATION_MAX_MINT_WAIT_SECS.
    due = NOW + timedelta(seconds=app.config().max_mint_wait_secs)
    claimed = claim_pending(session, app.config(), now=due, wallets_per_transaction=20)
    assert sum(len(batch.reading_ids) for batch in claimed) == 24


def test_readings_beyond_the_back_fill_horizon_wait_but_do_not_hold_the_recent_ones(
    client: TestClient, session: Session
) -> None:
    keys = make_meter(session, serial="M-1")
    old = [keys.payload(kwh="1", at=NOW - timedelta(hours=49) + STEP * i) for i in range(2)]
    new = [keys.payload(kwh="1", at=NOW - STEP * (2 - i)) for i in range(2)]
    client.post(BATCH, json={"readings": old + new}, headers=keys.headers)
    statuses = _statuses(session)
    assert [status for status, _ in statuses] == ["review", "review", "pending", "pending"]
    assert "beyond the 48 h back-fill horizon" in statuses[0][1]


def test_a_single_reading_is_judged_against_the_meters_previous_one(
    client: TestClient, session: Session
) -> None:
    keys = make_meter(session, serial="M-1")
    first = client.post(
        READING, json=keys.payload(kwh="1", at=NOW - STEP * 2), headers=keys.headers
    )
    assert first.json()["status"] == "pending"
    # 15 min at 50 kW × 1.1 is 13.75 kWh: 13.75 mints, 13.750001 waits.
    ok = client.post(READING, json=keys.payload(kwh="13.75", at=NOW - STEP), headers=keys.headers)
    assert ok.json()["status"] == "pending"
    over = client.post(READING, json=keys.payload(kwh="13.750001", at=NOW), headers=keys.headers)
    assert over.status_code == 201 and over.json()["status"] == "review"
    status = client.get(f"/api/meters/minting-status/{over.json()['id']}",
                        headers=keys.headers)  # fmt: skip
    assert status.status_code == 401  # meter keys read nothing; the reason is on the row:
    assert _statuses(session)[-1][1].startswith("implausible energy: 13.750001 kWh in 15 min")


def test_one_implausible_reading_holds_its_whole_batch_with_the_reason(
    client: TestClient, session: Session
) -> None:
    keys = make_meter(session, serial="M-1")
    readings = [keys.payload(kwh="1", at=NOW - STEP * (5 - i)) for i in range(5)]
    readings[3] = keys.payload(kwh="40", at=NOW - STEP * 2)  # 160 kW
    body = client.post(BATCH, json={"readings": readings}, headers=keys.headers).json()
    assert body["accepted"] == 5
    statuses = _statuses(session)
    assert [status for status, _ in statuses] == ["review"] * 5
    assert statuses[3][1].startswith("implausible energy: 40.000000 kWh in 15 min")
    assert statuses[0][1].startswith("held with its batch: 1 of 5 readings are implausible")
