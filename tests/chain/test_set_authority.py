"""SetAuthority(MintTokens): builder and decoder round trip, and the real programs' answer."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.token.state import Mint
from solders.transaction_metadata import TransactionMetadata

from core.chain.instructions import (
    MINT_SIZE,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    SetAuthorityParams,
    decode_set_authority,
    set_authority,
)
from core.chain.signer import KeypairSigner, sign_transactions
from core.chain.transactions import build_transaction
from tests.chain.test_builders import new_mint

PROGRAMS = pytest.mark.parametrize("program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID])


@PROGRAMS
def test_round_trip(program) -> None:
    keys = [Pubkey.new_unique() for _ in range(3)]
    for new in (keys[2], None):
        params = SetAuthorityParams(program, keys[0], keys[1], new)
        instruction = set_authority(params)
        assert decode_set_authority(instruction) == params
        # The wire layout, byte by byte: tag 6, MintTokens 0, COption<Pubkey>.
        expected = bytes([6, 0]) + (b"\x01" + bytes(new) if new else b"\x00")
        assert bytes(instruction.data) == expected


@PROGRAMS
def test_the_current_authority_moves_it_and_only_it_can(program) -> None:
    svm = LiteSVM()
    payer, old, new = Keypair(), Keypair(), Keypair()
    svm.airdrop(payer.pubkey(), 10**10)
    mint = new_mint(svm, payer, old.pubkey(), program)

    def move(signer: Keypair, to: Pubkey):
        ix = set_authority(SetAuthorityParams(program, mint, signer.pubkey(), to))
        tx = build_transaction([ix], payer.pubkey(), svm.latest_blockhash())
        return svm.send_transaction(
            sign_transactions([tx], [KeypairSigner(payer), KeypairSigner(signer)])[0]
        )

    assert not isinstance(move(new, new.pubkey()), TransactionMetadata)  # not the authority
    assert isinstance(move(old, new.pubkey()), TransactionMetadata)
    state = Mint.from_bytes(bytes(svm.get_account(mint).data[:MINT_SIZE]))
    assert state.mint_authority == new.pubkey()
    svm.expire_blockhash()
    assert not isinstance(move(old, old.pubkey()), TransactionMetadata)  # the old key is done
