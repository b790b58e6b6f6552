"""ensure_grx_mint against the real node, recording in SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.chain.client import ChainClient
from core.chain.errors import InsufficientFunds, MintMismatch, MintNotFound
from core.chain.factories import SplMintTo
from core.chain.instructions import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, batch_memo
from core.chain.mint_setup import create_grx_mint, ensure_grx_mint, ensure_token_accounts
from core.chain.packing import build_mint_transaction
from core.chain.transactions import sign_transaction
from core.config import Settings
from core.db.models import TokenMint
from tests.support.localnet import Localnet

pytestmark = pytest.mark.chain
SOL = 1_000_000_000
IDL_PATH = Path(__file__).parent.parent / "fixtures" / "energy_token_idl.json"

MakeSettings = Callable[..., Settings]


@pytest.fixture
def chain(localnet: Localnet) -> Iterator[ChainClient]:
    with ChainClient(localnet.url) as client:
        yield client


def embedded(make_settings: MakeSettings, node: Localnet, **env: str) -> Settings:
    """Settings whose RPC URL is the embedded node (so airdrops are allowed)."""
    return make_settings(LOCALNET_PORT=str(node.port), **env)


def rows(sessions: sessionmaker[Session]) -> list[TokenMint]:
    with sessions() as session:
        return list(session.scalars(select(TokenMint)))


def mint_some(chain: ChainClient, authority: Keypair, mint: Pubkey, program: Pubkey, amount: int):
    (ata,) = ensure_token_accounts(chain, authority, [Keypair().pubkey()], mint, program)
    blockhash, last_valid = chain.latest_blockhash()
    factory = SplMintTo(mint, authority.pubkey(), program)
    tx = build_mint_transaction(
        factory, [(ata, amount)], memo_text=batch_memo(1), blockhash=blockhash
    )
    chain.wait_for_confirmation(
        chain.send_raw(bytes(sign_transaction(tx, [authority]))), last_valid
    )


@pytest.mark.parametrize("program", ["spl-token", "token-2022"])
def test_first_start_creates_records_and_later_starts_reuse(
    localnet, chain, sessions, make_settings, program
) -> None:
    settings = embedded(make_settings, localnet, TOKEN_PROGRAM=program, TOKENIZATION_DECIMALS="6")
    authority = Keypair()  # unfunded: the embedded localnet airdrops first
    first = ensure_grx_mint(chain, authority, sessions, settings)
    assert first.created and first.decimals == 6 and first.bootstrap_supply == 0
    expected_program = TOKEN_PROGRAM_ID if program == "spl-token" else TOKEN_2022_PROGRAM_ID
    assert first.token_program == expected_program
    info = chain.mint_info(first.address)
    assert (info.mint_authority, info.decimals, info.freeze_authority) == (
        authority.pubkey(),
        6,
        None,
    )
    (row,) = rows(sessions)
    assert (row.address, row.rpc_url, row.token_program, row.decimals, row.bootstrap_supply) == (
        str(first.address),
        localnet.url,
        program,
        6,
        0,
    )
    # Minting moves the supply; a restart reuses the mint and keeps the bootstrap supply.
    mint_some(chain, authority, first.address, expected_program, 42)
    again = ensure_grx_mint(chain, authority, sessions, settings)
    assert (again.address, again.created, again.bootstrap_supply) == (first.address, False, 0)
    assert len(rows(sessions)) == 1


def test_configured_mint_is_verified_then_recorded_with_its_current_supply(
    chain, sessions, make_settings, localnet
) -> None:
    authority = Keypair()
    chain.request_airdrop(authority.pubkey(), 10 * SOL)
    mint = create_grx_mint(
        chain, authority, decimals=9, token_program=TOKEN_PROGRAM_ID, airdrop=False
    )
    mint_some(chain, authority, mint, TOKEN_PROGRAM_ID, 1_000)
    settings = make_settings(SOLANA_RPC_URL=localnet.url, ENERGY_TOKEN_MINT=str(mint))
    grx = ensure_grx_mint(chain, authority, sessions, settings)
    assert (grx.address, grx.created, grx.bootstrap_supply) == (mint, False, 1_000)
    (row,) = rows(sessions)
    assert row.bootstrap_supply == 1_000


def test_configured_mint_with_another_authority_or_decimals_or_program_is_refused(
    chain, sessions, make_settings, localnet
) -> None:
    owner = Keypair()
    chain.request_airdrop(owner.pubkey(), 10 * SOL)
    mint = create_grx_mint(chain, owner, decimals=9, token_program=TOKEN_PROGRAM_ID, airdrop=False)

    def settings(**env: str) -> Settings:
        return make_settings(SOLANA_RPC_URL=localnet.url, ENERGY_TOKEN_MINT=str(mint), **env)

    with pytest.raises(MintMismatch) as wrong_key:
        ensure_grx_mint(chain, Keypair(), sessions, settings())
    assert str(owner.pubkey()) in str(wrong_key.value)
    assert "AUTHORITY_KEYPAIR_PATH" in str(wrong_key.value)
    assert wrong_key.value.code == "mint_mismatch"
    with pytest.raises(MintMismatch, match="TOKENIZATION_DECIMALS=9"):
        ensure_grx_mint(chain, owner, sessions, settings(TOKENIZATION_DECIMALS="6"))
    with pytest.raises(MintMismatch, match="TOKEN_PROGRAM=spl-token"):
        ensure_grx_mint(chain, owner, sessions, settings(TOKEN_PROGRAM="token-2022"))
    with pytest.raises(MintNotFound, match="ENERGY_TOKEN_MINT"):
        ensure_grx_mint(
            chain,
            owner,
            sessions,
            make_settings(SOLANA_RPC_URL=localnet.url, ENERGY_TOKEN_MINT=str(Keypair().pubkey())),
        )
    assert rows(sessions) == []  # nothing recorded for a mint we cannot use


def test_a_wiped_ledger_with_a_kept_database_is_a_clear_error(
    fresh_localnet, sessions, make_settings
) -> None:
    settings = embedded(make_settings, fresh_localnet)
    authority = Keypair()
    with ChainClient(fresh_localnet.url) as chain:
        created = ensure_grx_mint(chain, authority, sessions, settings)
    fresh_localnet.stop()
    shutil.rmtree(fresh_localnet.data_dir / "localnet")
    fresh_localnet.restart()
    with ChainClient(fresh_localnet.url) as chain:
        with pytest.raises(MintNotFound) as excinfo:
            ensure_grx_mint(chain, authority, sessions, settings)
        assert chain.accounts_exist([created.address]) == [False]
    message = str(excinfo.value)
    assert str(created.address) in message and "ledger" in message and "database" in message
    assert len(rows(sessions)) == 1  # the record is kept for the operator to decide


def test_a_real_cluster_is_never_airdropped(chain, sessions, make_settings, localnet) -> None:
    # Same node, but addressed as "another cluster": LOCALNET_PORT does not match.
    settings = make_settings(SOLANA_RPC_URL=localnet.url, LOCALNET_PORT="1")
    authority = Keypair()
    with pytest.raises(InsufficientFunds) as excinfo:
        ensure_grx_mint(chain, authority, sessions, settings)
    assert str(authority.pubkey()) in str(excinfo.value)
    assert chain.sol_balance(authority.pubkey()) == 0
    assert rows(sessions) == []


def test_anchor_mode_needs_the_programs_mint_and_token_info(
    chain, sessions, make_settings, localnet
) -> None:
    anchor = {
        "SOLANA_RPC_URL": localnet.url,
        "MINT_MODE": "anchor",
        "GRIDTOKENX_PROGRAM_ID": "94G1r674LmRDmLN2UPjDFD8Eh7zT8JaSaxv9v68GyEur",
        "GRIDTOKENX_IDL_PATH": str(IDL_PATH),
    }
    with pytest.raises(MintMismatch, match="set ENERGY_TOKEN_MINT"):
        ensure_grx_mint(chain, Keypair(), sessions, make_settings(**anchor))
    # The program is not deployed on the localnet: its TokenInfo account cannot exist.
    owner = Keypair()
    chain.request_airdrop(owner.pubkey(), 10 * SOL)
    mint = create_grx_mint(chain, owner, decimals=9, token_program=TOKEN_PROGRAM_ID, airdrop=False)
    settings = make_settings(**anchor, ENERGY_TOKEN_MINT=str(mint))
    with pytest.raises(MintMismatch, match=r"TokenInfo account \S+ does not exist"):
        ensure_grx_mint(chain, owner, sessions, settings)
    assert rows(sessions) == []


def test_recorded_mints_are_per_rpc_url(localnet, chain, sessions, make_settings) -> None:
    settings = embedded(make_settings, localnet)
    authority = Keypair()
    with sessions() as session:
        session.add(
            TokenMint(
                address=str(Keypair().pubkey()),
                rpc_url="https://api.devnet.solana.com",
                token_program="spl-token",
                decimals=9,
            )
        )
        session.commit()
    grx = ensure_grx_mint(chain, authority, sessions, settings)
    assert grx.created  # the devnet record is not this cluster's mint
    with sessions() as session:
        count = session.scalar(select(func.count()).select_from(TokenMint))
    assert count == 2
