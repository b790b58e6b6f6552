"""The Minting page's costs panel shows the recorded ledger and the payer's runway."""

from __future__ import annotations

from datetime import timedelta

from core.db.models import FeePayer
from tests.api.test_costs import PAYER, operation
from tests.factories import NOW
from tests.pages.conftest import Dashboard


def test_the_costs_panel_shows_balance_runway_spending_and_rent(dashboard: Dashboard) -> None:
    with dashboard.app.sessions() as session:
        operation(
            session,
            "token_accounts",
            at=NOW - timedelta(hours=2),
            fee=5_000,
            rent={"ata": 2_039_280},
        )
        operation(session, "mint", at=NOW - timedelta(minutes=5), fee=5_000, rent={}, mints=7)
        session.add(
            FeePayer(
                address=PAYER, lamports=2_044_280_000, min_lamports=10**9, low=False, read_at=NOW
            )
        )
        session.commit()
    at = dashboard.open("ops", "minting")
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Fee payer (SOL)"] == "2.044280"
    assert metrics["Spent today (SOL)"] == "0.002049"  # 10,000 fees + 2,039,280 rent
    assert metrics["Rent locked (SOL)"] == "0.002039"
    assert metrics["Runway at this rate"] == "997.56 days"  # 2,044,280,000 / 2,049,280
    assert any("7.00 MintTo per mint transaction" in c.value for c in at.caption)
