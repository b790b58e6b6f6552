"""The certificate mint on the real node: Token-2022, 6 decimals, NonTransferable with the
registry as PermanentDelegate; the delegate burns from a holder, the holder cannot move it."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from sqlalchemy import select

from core.chain.certificate_instructions import (
    CERTIFICATE_DECIMALS,
    BurnParams,
    burn_checked,
    decode_burn_checked,
    issue_memo,
    lifecycle_memo,
    parse_issue_memo,
)
from core.chain.certificate_mint import ensure_certificate_mint
from core.chain.client import ChainClient
from core.chain.errors import ChainError, MintMismatch
from core.chain.instructions import (
    TOKEN_2022_PROGRAM_ID,
    CreateAtaParams,
    MintToParams,
    associated_token_address,
    create_associated_token_account_idempotent,
    memo,
    mint_to,
)
from core.chain.transactions import build_transaction, sign_transaction
from core.db.models import CertificateMint
from tests.support.localnet import Localnet

pytestmark = pytest.mark.chain


@pytest.fixture
def chain(localnet: Localnet) -> Iterator[ChainClient]:
    with ChainClient(localnet.url) as client:
        yield client


def send(chain: ChainClient, instructions: list[Instruction], payer: Keypair, *signers) -> None:
    blockhash, last_valid = chain.latest_blockhash()
    tx = sign_transaction(
        build_transaction(instructions, payer.pubkey(), blockhash), [payer, *signers]
    )
    chain.wait_for_confirmation(chain.send_raw(bytes(tx)), last_valid)


def test_memos_round_trip() -> None:
    assert issue_memo(7, 1, 1500) == "gridtokenx:gc:7:1-1500"
    assert parse_issue_memo("gridtokenx:gc:7:1-1500") == (7, 1, 1500)
    assert parse_issue_memo("gridtokenx:batch:7") is None
    assert lifecycle_memo("retire", 3, 10, 20) == "gridtokenx:gc-retire:3:10-20"
    with pytest.raises(ValueError):
        issue_memo(1, 5, 4)
    params = BurnParams(Keypair().pubkey(), Keypair().pubkey(), Keypair().pubkey(), 42, 6)
    assert decode_burn_checked(burn_checked(params)) == params


def test_bootstrap_creates_records_and_reuses(localnet, chain, sessions) -> None:
    authority = Keypair()
    first = ensure_certificate_mint(chain, authority, sessions, localnet.url, airdrop=True)
    assert first.created and first.bootstrap_supply == 0
    info = chain.mint_info(first.address)
    assert (info.token_program, info.decimals, info.mint_authority, info.freeze_authority) == (
        TOKEN_2022_PROGRAM_ID,
        CERTIFICATE_DECIMALS,
        authority.pubkey(),
        None,
    )
    again = ensure_certificate_mint(chain, authority, sessions, localnet.url, airdrop=True)
    assert (again.address, again.created) == (first.address, False)
    with sessions() as session:
        assert [r.address for r in session.scalars(select(CertificateMint))] == [str(first.address)]
    with pytest.raises(MintMismatch):
        ensure_certificate_mint(chain, Keypair(), sessions, localnet.url, airdrop=True)


def test_the_delegate_burns_and_the_holder_cannot_transfer(localnet, chain, sessions) -> None:
    authority = Keypair()
    mint = ensure_certificate_mint(chain, authority, sessions, localnet.url, airdrop=True).address
    holder, other = Keypair(), Keypair()
    chain.request_airdrop(holder.pubkey(), 1_000_000_000)
    accounts = [
        associated_token_address(k.pubkey(), mint, TOKEN_2022_PROGRAM_ID) for k in (holder, other)
    ]
    creates = [
        create_associated_token_account_idempotent(
            CreateAtaParams(authority.pubkey(), k.pubkey(), mint, TOKEN_2022_PROGRAM_ID)
        )
        for k in (holder, other)
    ]
    issue = mint_to(
        MintToParams(TOKEN_2022_PROGRAM_ID, mint, accounts[0], authority.pubkey(), 1500, 6)
    )
    send(chain, [*creates, issue, memo(issue_memo(1, 1, 1500))], authority)
    assert chain.token_balance(accounts[0]) == 1500 and chain.token_supply(mint) == 1500

    # The holder's own TransferChecked is refused: the mint is NonTransferable.
    transfer = Instruction(
        TOKEN_2022_PROGRAM_ID,
        struct.pack("<BQB", 12, 100, 6),
        [
            AccountMeta(accounts[0], is_signer=False, is_writable=True),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(accounts[1], is_signer=False, is_writable=True),
            AccountMeta(holder.pubkey(), is_signer=True, is_writable=False),
        ],
    )
    with pytest.raises(ChainError):
        send(chain, [transfer], holder)
    assert chain.token_balance(accounts[0]) == 1500

    # The registry (permanent delegate) burns 400 from the holder without the holder's key,
    # and moves 100 to the other holder as burn + mint in one transaction.
    burn = burn_checked(BurnParams(accounts[0], mint, authority.pubkey(), 400, 6))
    send(chain, [burn, memo(lifecycle_memo("retire", 1, 1, 400))], authority)
    move = [
        burn_checked(BurnParams(accounts[0], mint, authority.pubkey(), 100, 6)),
        mint_to(MintToParams(TOKEN_2022_PROGRAM_ID, mint, accounts[1], authority.pubkey(), 100, 6)),
        memo(lifecycle_memo("transfer", 1, 401, 500)),
    ]
    send(chain, move, authority)
    assert (chain.token_balance(accounts[0]), chain.token_balance(accounts[1])) == (1000, 100)
    assert chain.token_supply(mint) == 1100
