"""Instruction builders: round trips through their decoders, then execution on LiteSVM.

LiteSVM() runs the real SPL Token, Token-2022, Associated Token Account and
Memo programs in process, so these tests need no node.
"""

from __future__ import annotations

import struct

import pytest
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.token.state import Mint, TokenAccount
from solders.transaction import Transaction
from solders.transaction_metadata import TransactionMetadata

from core.chain.instructions import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    MEMO_PROGRAM_ID,
    MINT_SIZE,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    U64_MAX,
    CreateAtaParams,
    CreateMintParams,
    MintToParams,
    associated_token_address,
    batch_memo,
    create_associated_token_account_idempotent,
    create_mint,
    decode_create_associated_token_account_idempotent,
    decode_initialize_mint2,
    decode_memo,
    decode_mint_to,
    memo,
    mint_to,
    parse_batch_memo,
    token_program_id,
    token_program_name,
)
from core.chain.transactions import build_transaction, sign_transaction

PROGRAMS = pytest.mark.parametrize(
    "program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["spl-token", "token-2022"]
)


def run(svm: LiteSVM, instructions: list, payer: Keypair, *signers: Keypair):
    tx: Transaction = sign_transaction(
        build_transaction(instructions, payer.pubkey(), svm.latest_blockhash()), [payer, *signers]
    )
    return svm.send_transaction(tx)


def mint_state(svm: LiteSVM, mint: Pubkey) -> Mint:
    return Mint.from_bytes(bytes(svm.get_account(mint).data[:MINT_SIZE]))


def balance(svm: LiteSVM, account: Pubkey) -> int:
    return TokenAccount.from_bytes(bytes(svm.get_account(account).data[:165])).amount


@pytest.fixture
def svm() -> LiteSVM:
    return LiteSVM()


def new_mint(svm: LiteSVM, payer: Keypair, authority: Pubkey, program: Pubkey, decimals=9):
    mint = Keypair()
    rent = svm.minimum_balance_for_rent_exemption(MINT_SIZE)
    params = CreateMintParams(payer.pubkey(), mint.pubkey(), authority, decimals, rent, program)
    result = run(svm, create_mint(params), payer, mint)
    assert isinstance(result, TransactionMetadata), result
    return mint.pubkey()


def test_mint_to_round_trips_plain_and_checked() -> None:
    keys = [Pubkey.new_unique() for _ in range(3)]
    for decimals in (None, 0, 9):
        params = MintToParams(TOKEN_2022_PROGRAM_ID, *keys, U64_MAX, decimals)
        ix = mint_to(params)
        assert decode_mint_to(ix) == params
        assert [(m.is_signer, m.is_writable) for m in ix.accounts] == [
            (False, True),
            (False, True),
            (True, False),
        ]
    assert bytes(mint_to(MintToParams(TOKEN_PROGRAM_ID, *keys, 5)).data) == struct.pack("<BQ", 7, 5)
    checked = mint_to(MintToParams(TOKEN_PROGRAM_ID, *keys, 5, 9))
    assert bytes(checked.data) == struct.pack("<BQB", 14, 5, 9)


@pytest.mark.parametrize("amount", [-1, U64_MAX + 1, 1.5, True])
def test_mint_to_refuses_amounts_that_are_not_u64_integers(amount) -> None:
    with pytest.raises(ValueError, match="amount"):
        mint_to(MintToParams(TOKEN_PROGRAM_ID, *[Pubkey.new_unique()] * 3, amount))


def test_decoders_refuse_other_instructions() -> None:
    ata = create_associated_token_account_idempotent(
        CreateAtaParams(*[Pubkey.new_unique()] * 3, TOKEN_PROGRAM_ID)
    )
    with pytest.raises(ValueError):
        decode_mint_to(ata)
    with pytest.raises(ValueError):
        decode_memo(ata)
    with pytest.raises(ValueError):
        decode_create_associated_token_account_idempotent(memo("x"))


@PROGRAMS
def test_ata_round_trip_and_address_depends_on_token_program(program: Pubkey) -> None:
    params = CreateAtaParams(Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique(), program)
    ix = create_associated_token_account_idempotent(params)
    assert ix.program_id == ASSOCIATED_TOKEN_PROGRAM_ID
    assert bytes(ix.data) == b"\x01"  # CreateIdempotent, not Create
    assert decode_create_associated_token_account_idempotent(ix) == params
    other = TOKEN_2022_PROGRAM_ID if program == TOKEN_PROGRAM_ID else TOKEN_PROGRAM_ID
    assert params.address != associated_token_address(params.owner, params.mint, other)


def test_memo_and_batch_memo_round_trip() -> None:
    ix = memo(batch_memo(1234567890123456789))
    assert ix.program_id == MEMO_PROGRAM_ID and ix.accounts == []
    assert decode_memo(ix) == "gridtokenx:batch:1234567890123456789"
    assert parse_batch_memo(decode_memo(ix)) == 1234567890123456789
    assert parse_batch_memo("gridtokenx:batch:") is None
    assert parse_batch_memo("other:batch:1") is None
    with pytest.raises(ValueError):
        batch_memo(-1)


def test_initialize_mint2_round_trip_with_and_without_freeze_authority() -> None:
    keys = [Pubkey.new_unique() for _ in range(4)]
    plain = CreateMintParams(keys[0], keys[1], keys[2], 6, 1, TOKEN_PROGRAM_ID)
    assert decode_initialize_mint2(create_mint(plain)[1]) == (keys[1], 6, keys[2], None)
    frozen = plain._replace(freeze_authority=keys[3])
    assert decode_initialize_mint2(create_mint(frozen)[1]) == (keys[1], 6, keys[2], keys[3])


def test_token_program_names_map_both_ways() -> None:
    for name in ("spl-token", "token-2022"):
        assert token_program_name(token_program_id(name)) == name
    assert token_program_name(Pubkey.new_unique()) is None


@PROGRAMS
def test_builders_execute_on_the_real_token_programs(svm: LiteSVM, program: Pubkey) -> None:
    payer, authority = Keypair(), Keypair()
    svm.airdrop(payer.pubkey(), 10**11)
    mint = new_mint(svm, payer, authority.pubkey(), program, decimals=6)
    state = mint_state(svm, mint)
    assert (state.mint_authority, state.decimals, state.freeze_authority) == (
        authority.pubkey(),
        6,
        None,
    )
    owners = [Keypair().pubkey() for _ in range(3)]
    create = [
        create_associated_token_account_idempotent(
            CreateAtaParams(payer.pubkey(), owner, mint, program)
        )
        for owner in owners
    ]
    assert isinstance(run(svm, create, payer), TransactionMetadata)
    # Idempotent: creating them again (in a new transaction) succeeds and changes nothing.
    svm.expire_blockhash()
    assert isinstance(run(svm, create, payer), TransactionMetadata)
    atas = [associated_token_address(o, mint, program) for o in owners]
    mints = [
        memo(batch_memo(42)),
        mint_to(MintToParams(program, mint, atas[0], authority.pubkey(), 2_010_000)),
        mint_to(MintToParams(program, mint, atas[1], authority.pubkey(), 1, 6)),
        mint_to(MintToParams(program, mint, atas[2], authority.pubkey(), U64_MAX - 2_010_001)),
    ]
    result = run(svm, mints, payer, authority)
    assert isinstance(result, TransactionMetadata), result
    assert any("gridtokenx:batch:42" in line for line in result.logs())
    assert [balance(svm, a) for a in atas] == [2_010_000, 1, U64_MAX - 2_010_001]
    assert mint_state(svm, mint).supply == U64_MAX


@PROGRAMS
def test_on_chain_checks_reject_wrong_decimals_and_wrong_authority(
    svm: LiteSVM, program: Pubkey
) -> None:
    payer, authority, stranger = Keypair(), Keypair(), Keypair()
    svm.airdrop(payer.pubkey(), 10**11)
    mint = new_mint(svm, payer, authority.pubkey(), program, decimals=9)
    owner = Keypair().pubkey()
    ata = associated_token_address(owner, mint, program)
    params = CreateAtaParams(payer.pubkey(), owner, mint, program)
    run(svm, [create_associated_token_account_idempotent(params)], payer)

    wrong_decimals = mint_to(MintToParams(program, mint, ata, authority.pubkey(), 10, 6))
    failed = run(svm, [wrong_decimals], payer, authority)
    assert not isinstance(failed, TransactionMetadata)
    assert "custom program error: 0x12" in failed.meta().logs()[-1]  # MintDecimalsMismatch

    wrong_authority = mint_to(MintToParams(program, mint, ata, stranger.pubkey(), 10, 9))
    assert not isinstance(run(svm, [wrong_authority], payer, stranger), TransactionMetadata)
    assert balance(svm, ata) == 0 and mint_state(svm, mint).supply == 0
