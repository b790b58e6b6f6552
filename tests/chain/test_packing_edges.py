"""Packing at its edges, without a chain: capacities of one, a last chunk of one mint,
empty and repeated owners. Expected groupings are written out, not recomputed."""

from __future__ import annotations

import pytest
from solders.hash import Hash
from solders.pubkey import Pubkey

from core.chain.factories import SplMintTo
from core.chain.instructions import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
)
from core.chain.packing import (
    MAX_ATA_CREATIONS_PER_TX,
    build_ata_transaction,
    build_mint_transaction,
    chunk_mints,
    pack_ata_creations,
)


def keys(count: int, tag: int = 1) -> list[Pubkey]:
    return [Pubkey.from_bytes(bytes([tag, index]) + bytes(30)) for index in range(count)]


PAYER, MINT = Pubkey.from_bytes(b"\x0f" * 32), Pubkey.from_bytes(b"\x0e" * 32)


@pytest.mark.parametrize(
    ("count", "per_transaction", "sizes"),
    [
        (3, 1, [1, 1, 1]),
        (1, 1, [1]),
        (41, 20, [20, 20, 1]),  # a last chunk of exactly one mint
        (40, 20, [20, 20]),
        (19, 20, [19]),
        (0, 20, []),
    ],
)
def test_chunk_sizes(count: int, per_transaction: int, sizes: list[int]) -> None:
    mints = [(key, index + 1) for index, key in enumerate(keys(count))]
    chunks = chunk_mints(mints, per_transaction)
    assert [len(chunk) for chunk in chunks] == sizes
    assert [mint for chunk in chunks for mint in chunk] == mints
    assert all(isinstance(chunk, list) for chunk in chunks)


@pytest.mark.parametrize("per_transaction", [0, -1])
def test_a_capacity_below_one_is_refused(per_transaction: int) -> None:
    with pytest.raises(ValueError, match=r"^per_transaction must be at least 1$"):
        chunk_mints([(keys(1)[0], 1)], per_transaction)


def test_repeated_accounts_are_refused_by_name() -> None:
    account = keys(1)[0]
    with pytest.raises(ValueError, match=r"^each token account may appear once; merge amounts"):
        chunk_mints([(account, 1), (account, 2)], 1)
    factory = SplMintTo(MINT, PAYER, TOKEN_PROGRAM_ID, 9)
    with pytest.raises(ValueError, match=r"^each token account may appear once per transaction"):
        build_mint_transaction(
            factory, [(account, 1), (account, 1)], memo_text="m", blockhash=Hash.default()
        )


def test_one_base_unit_is_a_mint_and_zero_or_less_is_not() -> None:
    factory = SplMintTo(MINT, PAYER, TOKEN_PROGRAM_ID, 9)
    account = keys(1)[0]
    tx = build_mint_transaction(factory, [(account, 1)], memo_text="m", blockhash=Hash.default())
    assert len(tx.message.instructions) == 2  # the memo and the single mint
    for amount in (0, -1):
        with pytest.raises(
            ValueError, match=rf"^amount for {account} must be positive, not {amount}$"
        ):
            build_mint_transaction(
                factory, [(account, amount)], memo_text="m", blockhash=Hash.default()
            )
    with pytest.raises(ValueError, match=r"^a mint transaction needs at least one mint$"):
        build_mint_transaction(factory, [], memo_text="m", blockhash=Hash.default())


def test_a_separate_payer_pays_and_signs_first() -> None:
    factory = SplMintTo(MINT, Pubkey.from_bytes(b"\x0d" * 32), TOKEN_PROGRAM_ID, 9)
    tx = build_mint_transaction(
        factory, [(keys(1)[0], 5)], memo_text="m", blockhash=Hash.default(), payer=PAYER
    )
    assert tx.message.account_keys[0] == PAYER
    assert tx.message.account_keys[1] == factory.authority
    assert tx.message.header.num_required_signatures == 2


@pytest.mark.parametrize("count", [0, MAX_ATA_CREATIONS_PER_TX + 1])
def test_an_ata_transaction_holds_one_to_twelve_owners(count: int) -> None:
    assert MAX_ATA_CREATIONS_PER_TX == 12
    with pytest.raises(ValueError, match=r"^between 1 and 12 owners per transaction$"):
        build_ata_transaction(PAYER, keys(count), MINT, TOKEN_PROGRAM_ID, Hash.default())


def test_repeated_owners_in_one_ata_transaction_are_refused() -> None:
    owner = keys(1)[0]
    with pytest.raises(ValueError, match=r"^owners must be distinct$"):
        build_ata_transaction(PAYER, [owner, owner], MINT, TOKEN_PROGRAM_ID, Hash.default())


@pytest.mark.parametrize("count", [1, 12])
def test_an_ata_transaction_creates_each_owners_account_paid_by_the_payer(count: int) -> None:
    owners = keys(count)
    tx = build_ata_transaction(PAYER, owners, MINT, TOKEN_PROGRAM_ID, Hash.default())
    message = tx.message
    assert message.account_keys[0] == PAYER and message.header.num_required_signatures == 1
    assert len(message.instructions) == count
    for owner, compiled in zip(owners, message.instructions, strict=True):
        accounts = [message.account_keys[index] for index in compiled.accounts]
        assert message.account_keys[compiled.program_id_index] == ASSOCIATED_TOKEN_PROGRAM_ID
        assert accounts[:4] == [
            PAYER,
            associated_token_address(owner, MINT, TOKEN_PROGRAM_ID),
            owner,
            MINT,
        ]


@pytest.mark.parametrize(
    ("owners", "sizes"),
    [
        ([], []),  # nobody needs an account: no transaction at all
        (keys(1), [1]),
        (keys(12), [12]),
        (keys(13), [12, 1]),
        (keys(3) + keys(3), [3]),  # repeated owners are created once
        (keys(12) + keys(1, tag=2) + keys(12), [12, 1]),
    ],
)
def test_pack_ata_creations_sizes(owners: list[Pubkey], sizes: list[int]) -> None:
    txs = pack_ata_creations(PAYER, owners, MINT, TOKEN_PROGRAM_ID, Hash.default())
    assert [len(tx.message.instructions) for tx in txs] == sizes
    created = [
        tx.message.account_keys[compiled.accounts[2]]
        for tx in txs
        for compiled in tx.message.instructions
    ]
    assert created == list(dict.fromkeys(owners))  # first-seen order, each once
