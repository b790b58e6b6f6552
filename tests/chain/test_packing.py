"""Packing: measured capacity (the largest transaction fits, one more does not) and
packed batches executed on LiteSVM's real token programs with exact balances."""

from __future__ import annotations

import pytest
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from solders.transaction_metadata import TransactionMetadata

from core.chain.errors import TransactionTooLarge
from core.chain.factories import SplMintTo
from core.chain.instructions import (
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    U64_MAX,
    CreateAtaParams,
    associated_token_address,
    batch_memo,
    create_associated_token_account_idempotent,
    decode_memo,
    decode_mint_to,
)
from core.chain.packing import (
    MAX_ATA_CREATIONS_PER_TX,
    WORST_CASE_MEMO,
    build_ata_transaction,
    build_mint_transaction,
    chunk_mints,
    max_mints_per_transaction,
    pack_ata_creations,
)
from core.chain.transactions import (
    PACKET_DATA_SIZE,
    build_transaction,
    serialized_size,
    sign_transaction,
    transaction_signature,
)
from tests.chain.test_builders import balance, mint_state, new_mint

PROGRAMS = pytest.mark.parametrize(
    "program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["spl-token", "token-2022"]
)


def keys(count: int) -> list[Pubkey]:
    return [Keypair().pubkey() for _ in range(count)]


@PROGRAMS
@pytest.mark.parametrize("separate_payer", [False, True], ids=["authority-pays", "payer"])
@pytest.mark.parametrize("decimals", [None, 9], ids=["MintTo", "MintToChecked"])
def test_capacity_is_the_largest_count_that_fits(program, separate_payer, decimals) -> None:
    authority = Keypair()
    payer = Keypair() if separate_payer else None
    factory = SplMintTo(Pubkey.new_unique(), authority.pubkey(), program, decimals)
    capacity = max_mints_per_transaction(factory, payer=payer and payer.pubkey())
    mints = [(key, U64_MAX) for key in keys(capacity + 1)]
    tx = build_mint_transaction(
        factory,
        mints[:capacity],
        memo_text=WORST_CASE_MEMO,
        blockhash=Hash.new_unique(),
        payer=payer and payer.pubkey(),
    )
    signers = [authority] + ([payer] if payer else [])
    signed = sign_transaction(tx, signers)
    assert serialized_size(signed) == len(bytes(signed)) <= PACKET_DATA_SIZE
    assert len(signed.signatures) == (2 if payer else 1)
    with pytest.raises(TransactionTooLarge) as excinfo:
        build_mint_transaction(
            factory,
            mints,
            memo_text=WORST_CASE_MEMO,
            blockhash=Hash.new_unique(),
            payer=payer and payer.pubkey(),
        )
    assert excinfo.value.size > PACKET_DATA_SIZE
    # What DESIGN measured: ~18-20 per transaction; one signature more costs two.
    assert capacity == (18 if payer else 20)


def test_worst_case_memo_has_nineteen_digits_and_short_memos_never_hold_fewer() -> None:
    assert WORST_CASE_MEMO == "gridtokenx:batch:" + "9" * 19
    factory = SplMintTo(Pubkey.new_unique(), Pubkey.new_unique(), TOKEN_PROGRAM_ID, 9)
    assert max_mints_per_transaction(factory, memo_text=batch_memo(1)) >= (
        max_mints_per_transaction(factory)
    )
    with pytest.raises(TransactionTooLarge):
        max_mints_per_transaction(factory, memo_text="x" * 1200)


def test_a_transaction_refuses_repeated_accounts_and_non_positive_amounts() -> None:
    factory = SplMintTo(Pubkey.new_unique(), Pubkey.new_unique(), TOKEN_PROGRAM_ID)
    account = Pubkey.new_unique()
    with pytest.raises(ValueError, match="once"):
        build_mint_transaction(
            factory, [(account, 1), (account, 2)], memo_text="m", blockhash=Hash.default()
        )
    with pytest.raises(ValueError, match="positive"):
        build_mint_transaction(factory, [(account, 0)], memo_text="m", blockhash=Hash.default())
    with pytest.raises(ValueError, match="at least one"):
        build_mint_transaction(factory, [], memo_text="m", blockhash=Hash.default())
    with pytest.raises(ValueError, match="once"):
        chunk_mints([(account, 1), (account, 1)], 5)


def test_chunks_keep_order_and_size() -> None:
    mints = [(key, index + 1) for index, key in enumerate(keys(45))]
    chunks = chunk_mints(mints, 20)
    assert [len(chunk) for chunk in chunks] == [20, 20, 5]
    assert [mint for chunk in chunks for mint in chunk] == mints


def decoded_instructions(tx: Transaction) -> list[Instruction]:
    """The instructions a transaction carries, rebuilt from its compiled message."""
    message = tx.message
    header, total = message.header, len(message.account_keys)
    signers = header.num_required_signatures

    def writable(index: int) -> bool:  # the legacy header's account ordering rule
        if index < signers:
            return index < signers - header.num_readonly_signed_accounts
        return index < total - header.num_readonly_unsigned_accounts

    rebuilt = []
    for compiled in message.instructions:
        metas = [
            AccountMeta(message.account_keys[index], message.is_signer(index), writable(index))
            for index in compiled.accounts
        ]
        program = message.account_keys[compiled.program_id_index]
        rebuilt.append(Instruction(program, compiled.data, metas))
    return rebuilt


def test_built_transaction_decodes_back_to_memo_then_mints() -> None:
    authority = Keypair()
    factory = SplMintTo(Pubkey.new_unique(), authority.pubkey(), TOKEN_2022_PROGRAM_ID, 9)
    mints = [(key, 1000 + i) for i, key in enumerate(keys(3))]
    tx = build_mint_transaction(factory, mints, memo_text=batch_memo(7), blockhash=Hash.default())
    memo_ix, *mint_ixs = decoded_instructions(tx)
    assert decode_memo(memo_ix) == "gridtokenx:batch:7"
    decoded = [decode_mint_to(ix) for ix in mint_ixs]
    assert [(d.destination, d.amount, d.decimals) for d in decoded] == [
        (key, amount, 9) for key, amount in mints
    ]
    assert {d.authority for d in decoded} == {authority.pubkey()}
    # The authority pays: one key, one signature.
    assert tx.message.account_keys[0] == authority.pubkey()
    assert tx.message.header.num_required_signatures == 1
    signed = sign_transaction(tx, [authority, authority])
    assert transaction_signature(signed) == signed.signatures[0]
    signed.verify()
    with pytest.raises(ValueError, match="missing signer"):
        sign_transaction(tx, [Keypair()])


@PROGRAMS
def test_packed_batches_mint_exact_amounts_on_litesvm(program: Pubkey) -> None:
    svm = LiteSVM()
    authority = Keypair()
    svm.airdrop(authority.pubkey(), 10**12)
    mint = new_mint(svm, authority, authority.pubkey(), program)
    owners = keys(45)
    for tx in pack_ata_creations(authority.pubkey(), owners, mint, program, svm.latest_blockhash()):
        assert serialized_size(tx) <= PACKET_DATA_SIZE
        result = svm.send_transaction(sign_transaction(tx, [authority]))
        assert isinstance(result, TransactionMetadata)
    factory = SplMintTo(mint, authority.pubkey(), program, 9)
    capacity = max_mints_per_transaction(factory)
    atas = [associated_token_address(owner, mint, program) for owner in owners]
    # Amounts as exact base units, including 2.01 kWh (the float path under-mints it).
    mints = [(ata, 2_010_000_000 + index) for index, ata in enumerate(atas)]
    sizes = []
    for batch_id, chunk in enumerate(chunk_mints(mints, capacity), start=10**18):
        tx = build_mint_transaction(
            factory, chunk, memo_text=batch_memo(batch_id), blockhash=svm.latest_blockhash()
        )
        decoded = decoded_instructions(tx)
        assert decode_memo(decoded[0]) == batch_memo(batch_id)
        assert [(d.destination, d.amount) for d in map(decode_mint_to, decoded[1:])] == chunk
        signed = sign_transaction(tx, [authority])
        sizes.append(serialized_size(signed))
        result = svm.send_transaction(signed)
        assert isinstance(result, TransactionMetadata), result
    assert len(sizes) == 3 and max(sizes) <= PACKET_DATA_SIZE
    assert [balance(svm, ata) for ata in atas] == [amount for _, amount in mints]
    assert mint_state(svm, mint).supply == sum(amount for _, amount in mints)


@PROGRAMS
def test_twelve_ata_creations_run_and_a_thirteenth_exceeds_the_trace_limit(program) -> None:
    svm = LiteSVM()
    payer = Keypair()
    svm.airdrop(payer.pubkey(), 10**12)
    mint = new_mint(svm, payer, payer.pubkey(), program)
    owners = keys(MAX_ATA_CREATIONS_PER_TX + 1)
    blockhash = svm.latest_blockhash()
    twelve = build_ata_transaction(payer.pubkey(), owners[:12], mint, program, blockhash)
    assert serialized_size(twelve) <= PACKET_DATA_SIZE
    assert isinstance(svm.send_transaction(sign_transaction(twelve, [payer])), TransactionMetadata)
    # Thirteen fit in the packet but fail on chain: the cap is not about bytes.
    fresh = keys(13)
    instructions = [
        create_associated_token_account_idempotent(
            CreateAtaParams(payer.pubkey(), owner, mint, program)
        )
        for owner in fresh
    ]
    thirteen = build_transaction(instructions, payer.pubkey(), svm.latest_blockhash())
    result = svm.send_transaction(sign_transaction(thirteen, [payer]))
    assert not isinstance(result, TransactionMetadata)
    assert "MaxInstructionTraceLengthExceeded" in str(result.err())
    with pytest.raises(ValueError):
        build_ata_transaction(payer.pubkey(), owners, mint, program, svm.latest_blockhash())


def test_pack_ata_creations_dedupes_owners_and_caps_each_transaction() -> None:
    owners = keys(30)
    payer, mint = Pubkey.new_unique(), Pubkey.new_unique()
    txs = pack_ata_creations(payer, owners + owners[:5], mint, TOKEN_PROGRAM_ID, Hash.default())
    assert [len(tx.message.instructions) for tx in txs] == [12, 12, 6]
