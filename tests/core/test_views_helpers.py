"""Helpers the pages use: chain reads that fail soft, reconcile, settings ranges,
force-mint that never queues twice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core import views
from core.chain.explorer import explorer_url
from core.chain.reader import ChainRead, ChainReader
from core.config import TokenizationConfig
from core.db.models import MeterReading, ReadingStatus
from core.minting.force_mint import AlreadyQueued, force_mint_reading
from core.minting.requests import AlreadyMinted
from core.setting_fields import SETTING_FIELDS, field_by_name, parse_changes, ratio_preview
from core.settings_store import InvalidSetting
from core.views import ExpectedSupply
from core.views.supply_status import ReconcileState, reconcile
from tests.factories import make_user
from tests.pages.seed import seed_dashboard

EXPECTED = ExpectedSupply("mint", 9, bootstrap_supply=1_000, minted_base_units=500)


class FakeClient:
    def __init__(self, supply: int = 0, fail: Exception | None = None) -> None:
        self.supply, self.fail = supply, fail

    def token_supply(self, mint: object) -> int:
        if self.fail:
            raise self.fail
        return self.supply

    def health(self) -> str:
        return "ok"


def test_chain_reads_never_raise() -> None:
    broken = ChainReader("http://x", client_factory=lambda: FakeClient(fail=OSError("refused")))
    read = broken.supply("So11111111111111111111111111111111111111112")
    assert (read.ok, read.error) == (False, "chain unavailable: refused")
    healthy = ChainReader("http://x", client_factory=lambda: FakeClient(supply=7))
    assert healthy.supply("So11111111111111111111111111111111111111112") == ChainRead(value=7)
    assert ChainReader("http://127.0.0.1:9", timeout=0.5).health().ok is False


@pytest.mark.parametrize(
    ("onchain", "state", "difference"),
    [
        (ChainRead(value=1_500), ReconcileState.MATCH, 0),
        (ChainRead(value=1_499), ReconcileState.MISMATCH, -1),
        (ChainRead(error="chain unavailable: down"), ReconcileState.UNKNOWN, None),
    ],
)
def test_reconcile(onchain: ChainRead[int], state: ReconcileState, difference: int | None) -> None:
    result = reconcile(EXPECTED, onchain)
    assert (result.state, result.difference) == (state, difference)
    assert reconcile(None, onchain).state == ReconcileState.NO_MINT


def test_explorer_links_only_for_public_clusters() -> None:
    assert explorer_url("SIG", "https://api.devnet.solana.com") == (
        "https://explorer.solana.com/tx/SIG?cluster=devnet"
    )
    assert explorer_url("SIG", "https://api.mainnet-beta.solana.com") == (
        "https://explorer.solana.com/tx/SIG"
    )
    assert explorer_url("SIG", "http://127.0.0.1:8899") is None


def test_setting_ranges_are_the_model_constraints() -> None:
    assert [field.name for field in SETTING_FIELDS] == [
        name
        for name in TokenizationConfig.model_fields
        # Fixed at start: decimals, and the settlement interval (changing it would re-cut
        # open intervals).
        if name not in ("decimals", "settlement_interval_secs", "settlement_grace_secs")
    ]
    for field in SETTING_FIELDS:
        info = TokenizationConfig.model_fields[field.name]
        upper = [c.le for c in info.metadata if getattr(c, "le", None) is not None]
        assert field.maximum == (upper[0] if upper else None)
    ratio = field_by_name("kwh_to_token_ratio")
    assert (ratio.kind, ratio.minimum_exclusive, ratio.decimal_places) == ("decimal", True, 9)
    assert field_by_name("review_threshold_kwh").optional


def test_parse_changes_types_the_inputs_and_keeps_only_changes() -> None:
    current = TokenizationConfig()
    changes = parse_changes(
        {"kwh_to_token_ratio": "2.5", "batch_size": 50, "review_threshold_kwh": "50",
         "auto_mint_enabled": False},
        current,
    )  # fmt: skip
    assert changes == {"kwh_to_token_ratio": Decimal("2.5"), "auto_mint_enabled": False}
    cleared = parse_changes({"review_threshold_kwh": ""}, current)
    assert cleared == {"review_threshold_kwh": None}  # the default is 50 kWh now
    with pytest.raises(InvalidSetting) as caught:
        parse_changes({"max_reading_kwh": "lots"}, current)
    assert caught.value.field == "max_reading_kwh"


def test_ratio_preview_is_exact() -> None:
    assert ratio_preview(Decimal("1.0"), 9) == "10.5 kWh -> 10.5 GRX"
    assert ratio_preview(Decimal("0.333333333"), 9) == "10.5 kWh -> 3.499999996 GRX"


def test_force_mint_never_queues_twice(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        seeded = seed_dashboard(session)
        root, reading_id = seeded.users["root"], seeded.reading_ids["bob_review"]
        assert force_mint_reading(session, reading_id, root).status == ReadingStatus.PENDING
        with pytest.raises(AlreadyQueued) as caught:
            force_mint_reading(session, reading_id, root)
        assert caught.value.code == "already_queued"
        reading = session.get(MeterReading, reading_id)
        assert reading is not None
        reading.status = ReadingStatus.MINTING.value  # the scheduler claimed it
        session.commit()
        with pytest.raises(AlreadyMinted):
            force_mint_reading(session, reading_id, root)


def test_login_lookups(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert not views.any_user(session)  # the login page then says how to get an admin
        seed_dashboard(session)
        make_user(session, "Ana@Example.com", role="operator")
        assert views.any_user(session)
        found = views.user_for_email(session, " ana@example.COM ")
        assert found is not None and found.username == "Ana@Example.com"
        assert views.user_for_email(session, "") is None


@pytest.mark.chain
def test_chain_reader_against_the_embedded_node(localnet) -> None:
    """Supply and a wallet's GRX read through the real ChainClient; no account reads 0."""
    from solders.keypair import Keypair

    from core.chain.client import ChainClient
    from core.chain.instructions import MintToParams, mint_to, token_program_id
    from core.chain.mint_setup import create_grx_mint, ensure_token_accounts
    from core.chain.transactions import build_transaction, sign_transaction

    program = token_program_id("spl-token")
    authority, wallet, empty = Keypair(), Keypair(), Keypair()
    with ChainClient(localnet.url) as client:
        mint = create_grx_mint(client, authority, decimals=9, token_program=program, airdrop=True)
        [account] = ensure_token_accounts(client, authority, [wallet.pubkey()], mint, program)
        blockhash, last_valid = client.latest_blockhash()
        params = MintToParams(program, mint, account, authority.pubkey(), 2_010_000_000)
        tx = build_transaction([mint_to(params)], authority.pubkey(), blockhash)
        signed = sign_transaction(tx, [authority])
        client.wait_for_confirmation(client.send_raw(bytes(signed)), last_valid)
    reader = ChainReader(localnet.url)
    try:
        assert reader.health() == ChainRead(value="ok")
        assert reader.supply(str(mint)) == ChainRead(value=2_010_000_000)
        assert reader.wallet_balance(str(wallet.pubkey()), str(mint), "spl-token").value == (
            2_010_000_000
        )
        assert reader.wallet_balance(str(empty.pubkey()), str(mint), "spl-token").value == 0
    finally:
        reader.close()
