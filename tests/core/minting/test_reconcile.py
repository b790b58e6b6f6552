"""Reconciliation: supply must equal bootstrap + minted, within what is in flight."""

from __future__ import annotations

from sqlalchemy import select, update

from core.config import TokenizationConfig
from core.db.models import Event, MeterReading, MintBatch, TokenMint
from core.db.types import utcnow
from core.minting.reconcile import check_supply, reconcile
from core.minting.totals import add_minted
from core.settings_store import effective_config
from tests.support.seed import seed_producers, seed_readings

MINT = "GRXmint1111111111111111111111111111111111111"


def _setup(sessions, *, bootstrap: int) -> None:
    with sessions() as session:
        session.add(
            TokenMint(
                address=MINT,
                rpc_url="x",
                token_program="spl-token",
                decimals=9,
                bootstrap_supply=bootstrap,
                created_at=utcnow(),
            )
        )
        seed_readings(session, seed_producers(session, 2), 2, kwh_micro=1_000_000)
        session.execute(
            update(MeterReading)
            .where(MeterReading.id <= 3)
            .values(status="minted", token_base_units=1_000_000_000)
        )
        add_minted(session, 3, 3_000_000_000)  # what mark_confirmed would have counted
        session.commit()


def test_equal_supply_is_ok_and_writes_nothing(sessions) -> None:
    _setup(sessions, bootstrap=5)
    result = reconcile(sessions, TokenizationConfig(), MINT, lambda: 3_000_000_005)
    assert result.ok and result.expected_supply == 3_000_000_005
    with sessions() as session:
        assert session.scalars(select(Event)).all() == []


def test_a_batch_in_flight_may_already_be_on_chain(sessions) -> None:
    _setup(sessions, bootstrap=0)
    with sessions() as session:
        session.add(
            MintBatch(
                status="signed",
                total_base_units=1_000_000_000,
                total_readings=1,
                created_at=utcnow(),
            )
        )
        session.commit()
    assert check_supply(sessions, MINT, lambda: 4_000_000_000).ok
    assert check_supply(sessions, MINT, lambda: 3_000_000_000).ok
    assert not check_supply(sessions, MINT, lambda: 4_000_000_001).ok
    assert not check_supply(sessions, MINT, lambda: 2_999_999_999).ok


def test_mismatch_alerts_and_pauses_auto_mint(sessions) -> None:
    _setup(sessions, bootstrap=0)
    base = TokenizationConfig()
    result = reconcile(sessions, base, MINT, lambda: 3_000_000_001)
    assert not result.ok
    with sessions() as session:
        events = session.scalars(select(Event).order_by(Event.id)).all()
        assert [e.type for e in events] == ["reconcile_mismatch", "settings_changed"]
        assert events[0].payload["onchain_supply"] == 3_000_000_001
        assert events[0].payload["expected_supply"] == 3_000_000_000
        assert events[1].payload == {
            "key": "auto_mint_enabled",
            "old": True,
            "new": False,
            "by": "reconciler",
        }
        assert effective_config(session, base).auto_mint_enabled is False
    reconcile(sessions, base, MINT, lambda: 3_000_000_001)  # still wrong: alert again, no toggle
    with sessions() as session:
        types = [e.type for e in session.scalars(select(Event).order_by(Event.id))]
        assert types == ["reconcile_mismatch", "settings_changed", "reconcile_mismatch"]
