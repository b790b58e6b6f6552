"""GET /api/admin/costs: the recorded ledger, summed exactly, for staff only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import ChainCost, FeePayer, MintBatch, User
from tests.api.conftest import TestClient, auth_headers
from tests.factories import NOW, make_meter, make_reading, make_user

PAYER = "26qHbGhXxwPZtrPKw3T2A3xm3QpB1yRnoHs2BpSCz9cF"


def operation(session: Session, kind: str, *, at, fee: int, rent: dict[str, int], mints=None):
    """A landed operation and its ledger lines, as the scheduler records them."""
    batch_id = session.scalar(
        insert(MintBatch)
        .values(
            status="confirmed",
            kind=kind,
            attempt=1,
            total_readings=0,
            total_base_units=0,
            created_at=at,
            mint_count=mints,
            fee_lamports=fee,
            rent_lamports=sum(rent.values()),
            signature=f"sig-{kind}-{at.timestamp()}",
        )
        .returning(MintBatch.id)
    )
    common = {"operation_id": batch_id, "operation_kind": kind, "signature": "s", "slot": 9}
    rows = [{**common, "kind": "fee", "account": PAYER, "lamports": fee, "recorded_at": at}]
    rows += [
        {**common, "kind": "rent", "account": account, "lamports": lamports, "recorded_at": at}
        for account, lamports in rent.items()
    ]
    session.execute(insert(ChainCost), rows)
    session.commit()


def test_costs_add_up_the_ledger(client: TestClient, app: App, session: Session, operator: User):
    yesterday = NOW - timedelta(hours=20)  # NOW is 12:00 UTC: this is the previous day
    operation(session, "token_accounts", at=yesterday, fee=5_000, rent={"ata1": 2_039_280})
    operation(session, "lookup_table", at=yesterday, fee=5_000, rent={"table": 1_670_400})
    operation(session, "mint", at=NOW - timedelta(minutes=30), fee=5_000, rent={}, mints=2)
    operation(session, "mint", at=NOW - timedelta(minutes=10), fee=5_076, rent={}, mints=3)
    meter = make_meter(session, make_user(session, "alice")).meter
    for minutes in (40, 20, 5):  # three readings minted today, one yesterday
        make_reading(session, meter, status="minted", minted_at=NOW - timedelta(minutes=minutes))
    make_reading(session, meter, status="minted", minted_at=yesterday)
    session.add(
        FeePayer(address=PAYER, lamports=3_000_000_000, min_lamports=10**9, low=False, read_at=NOW)
    )
    session.commit()

    response = client.get("/api/admin/costs", headers=auth_headers(app, operator))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fee_payer"] == {
        "address": PAYER,
        "balance_lamports": 3_000_000_000,
        "balance_sol": "3",
        "min_lamports": 1_000_000_000,
        "min_sol": "1",
        "low": False,
        "read_at": "2026-11-20T12:00:00Z",
    }
    assert body["today"] == {
        "fees_lamports": 10_076,
        "rent_lamports": 0,
        "spent_sol": "0.000010076",
        "transactions": 2,
        "readings_minted": 3,
        "lamports_per_reading": "3358.67",  # 10,076 / 3
    }
    assert body["last_30_days"]["fees_lamports"] == 20_076
    assert body["last_30_days"]["rent_lamports"] == 3_709_680
    assert body["last_30_days"]["readings_minted"] == 4
    assert body["last_30_days"]["lamports_per_reading"] == "5019.00"  # 20,076 / 4
    assert body["rent_locked"] == {
        "token_accounts_lamports": 2_039_280,
        "lookup_tables_lamports": 1_670_400,
        "total_lamports": 3_709_680,
        "total_sol": "0.00370968",
    }
    assert body["spent_last_24h_lamports"] == 20_076 + 3_709_680
    assert body["runway_days"] == "804.34"  # 3,000,000,000 / 3,729,756
    assert body["mints_per_transaction"] == "2.50"
    assert len(body["hourly"]) == 24 and len(body["daily"]) == 30
    last_hour = body["hourly"][-1]  # 12:00..13:00 holds nothing yet; 11:00 holds both mints
    assert last_hour["bucket_start"] == "2026-11-20T12:00:00Z" and last_hour["transactions"] == 0
    assert body["hourly"][-2]["fees_lamports"] == 10_076
    assert body["hourly"][-2]["readings_minted"] == 3
    assert body["daily"][-2]["rent_lamports"] == 3_709_680  # yesterday


def test_costs_are_for_staff(client: TestClient, app: App, session: Session) -> None:
    prosumer = make_user(session, "bob")
    assert client.get("/api/admin/costs").status_code == 401
    refused = client.get("/api/admin/costs", headers=auth_headers(app, prosumer))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    empty = client.get(
        "/api/admin/costs", headers=auth_headers(app, make_user(session, "op", role="operator"))
    )
    assert empty.status_code == 200
    assert empty.json()["fee_payer"] is None and empty.json()["runway_days"] is None
