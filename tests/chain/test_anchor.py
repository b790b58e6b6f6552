"""MINT_MODE=anchor: instruction bytes and account metas of energy_token mint_tokens_direct.

The GridTokenX program cannot run here, so these tests pin what it would
receive: the 8-byte discriminator sha256("global:mint_tokens_direct")[:8], the
amount as u64 little-endian, and the accounts in the IDL's order with its flags.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from anchorpy import Coder, NamedInstruction
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from core.chain.anchor import AnchorMintTokensDirect, load_idl, token_info_address
from core.chain.errors import IdlMismatch, TransactionTooLarge
from core.chain.factories import SplMintTo, mint_instruction_factory
from core.chain.instructions import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, U64_MAX
from core.chain.packing import WORST_CASE_MEMO, build_mint_transaction, max_mints_per_transaction
from core.chain.transactions import PACKET_DATA_SIZE, sign_transaction
from core.config import Settings

IDL_PATH = Path(__file__).parent.parent / "fixtures" / "energy_token_idl.json"
PROGRAM_ID = Pubkey.from_string("94G1r674LmRDmLN2UPjDFD8Eh7zT8JaSaxv9v68GyEur")
DISCRIMINATOR = hashlib.sha256(b"global:mint_tokens_direct").digest()[:8]


@pytest.fixture
def factory() -> AnchorMintTokensDirect:
    return AnchorMintTokensDirect.from_idl(
        IDL_PATH,
        PROGRAM_ID,
        mint=Pubkey.new_unique(),
        authority=Keypair().pubkey(),
        token_program=TOKEN_PROGRAM_ID,
    )


@pytest.mark.parametrize("amount", [0, 1, 2_010_000_000, U64_MAX])
def test_instruction_bytes_are_discriminator_then_u64_le(factory, amount: int) -> None:
    ix = factory(Pubkey.new_unique(), amount)
    assert DISCRIMINATOR.hex() == "0df61fed631358e2"
    assert bytes(ix.data) == DISCRIMINATOR + struct.pack("<Q", amount)
    assert ix.program_id == PROGRAM_ID


def test_account_metas_follow_the_idl(factory) -> None:
    destination = Pubkey.new_unique()
    ix = factory(destination, 5)
    expected_pda, _ = Pubkey.find_program_address([b"token_info"], PROGRAM_ID)
    assert factory.token_info == token_info_address(PROGRAM_ID) == expected_pda
    assert [(m.pubkey, m.is_writable, m.is_signer) for m in ix.accounts] == [
        (expected_pda, True, False),
        (factory.mint, True, False),
        (destination, True, False),
        (factory.authority, False, True),
        (TOKEN_PROGRAM_ID, False, False),
    ]


def test_decode_round_trips(factory) -> None:
    destination = Pubkey.new_unique()
    amount, accounts = factory.decode(factory(destination, 123_456_789))
    assert amount == 123_456_789
    assert accounts["user_token_account"] == destination
    assert accounts["token_info"] == factory.token_info
    with pytest.raises(ValueError):
        factory.decode(SplMintTo(factory.mint, factory.authority, TOKEN_PROGRAM_ID)(destination, 1))


def test_amounts_outside_u64_are_refused(factory) -> None:
    for amount in (-1, U64_MAX + 1, 1.0):
        with pytest.raises(ValueError):
            factory(Pubkey.new_unique(), amount)


def test_token_info_account_decodes_with_its_discriminator(factory) -> None:
    authority, mint = Pubkey.new_unique(), Pubkey.new_unique()
    coder = Coder(factory.idl)
    fields = {"authority": authority, "mint": mint, "total_supply": 7, "created_at": 1}
    data = coder.accounts.build(NamedInstruction(name="TokenInfo", data=fields))
    assert data[:8] == hashlib.sha256(b"account:TokenInfo").digest()[:8]
    fields = factory.decode_token_info(data)
    assert (fields["authority"], fields["mint"], fields["total_supply"]) == (authority, mint, 7)


def test_anchor_mints_pack_like_spl_mints_under_the_packet_limit(factory) -> None:
    capacity = max_mints_per_transaction(factory)
    destinations = [Pubkey.new_unique() for _ in range(capacity + 1)]
    mints = [(d, U64_MAX) for d in destinations]
    tx = build_mint_transaction(
        factory, mints[:capacity], memo_text=WORST_CASE_MEMO, blockhash=Hash.new_unique()
    )
    assert len(tx.signatures) == 1  # the authority signs and pays
    assert len(bytes(tx)) <= PACKET_DATA_SIZE
    with pytest.raises(TransactionTooLarge):
        build_mint_transaction(factory, mints, memo_text=WORST_CASE_MEMO, blockhash=Hash.default())
    # Each anchor instruction also carries the 8-byte discriminator: fewer fit than MintTo.
    assert capacity == 16


def test_mint_mode_selects_the_factory(make_settings: Callable[..., Settings]) -> None:
    mint, key = Pubkey.new_unique(), Keypair()
    authority = key.pubkey()
    spl = make_settings(TOKEN_PROGRAM="token-2022")
    chosen = mint_instruction_factory(spl.app, mint=mint, authority=authority, decimals=9)
    assert chosen == SplMintTo(mint, authority, TOKEN_2022_PROGRAM_ID, 9)
    anchor = make_settings(
        MINT_MODE="anchor", GRIDTOKENX_PROGRAM_ID=str(PROGRAM_ID), GRIDTOKENX_IDL_PATH=str(IDL_PATH)
    )
    chosen = mint_instruction_factory(anchor.app, mint=mint, authority=authority, decimals=9)
    assert isinstance(chosen, AnchorMintTokensDirect)
    assert (chosen.program_id, chosen.mint, chosen.authority) == (PROGRAM_ID, mint, authority)
    assert chosen.token_program == TOKEN_PROGRAM_ID
    tx = build_mint_transaction(
        chosen, [(Pubkey.new_unique(), 1)], memo_text="m", blockhash=Hash.default()
    )
    sign_transaction(tx, [key]).verify()


def _idl_with(tmp_path: Path, change: Callable[[dict], None]) -> Path:
    idl = json.loads(IDL_PATH.read_text())
    change(idl)
    path = tmp_path / "idl.json"
    path.write_text(json.dumps(idl))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda idl: idl["instructions"][0].update(name="mintToWallet"), "no instruction"),
        (lambda idl: idl["instructions"][0]["accounts"].pop(0), "takes"),
        (lambda idl: idl["instructions"][0]["args"][0].update(type="u32"), "amount: u64"),
    ],
)
def test_an_idl_without_the_expected_instruction_is_refused(tmp_path, change, message) -> None:
    with pytest.raises(IdlMismatch, match=message):
        load_idl(_idl_with(tmp_path, change))


def test_an_unreadable_or_foreign_idl_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IdlMismatch, match="cannot be read"):
        load_idl(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"hello": 1}')
    with pytest.raises(IdlMismatch, match="legacy"):
        load_idl(tmp_path / "bad.json")
