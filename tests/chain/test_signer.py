"""The signer seam: transactions assembled from a message and the signers' signatures.

The oracle is solders' own signing (Transaction/VersionedTransaction built with
the keypairs): the assembled bytes must be identical, for legacy and v0, with
the payer apart from the authority, and each signer is asked once per call.
"""

from __future__ import annotations

from collections.abc import Sequence

import base58
import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction

from core.chain.errors import SignerError, SignerUnavailable
from core.chain.factories import SplMintTo
from core.chain.instructions import TOKEN_PROGRAM_ID, associated_token_address, batch_memo, memo
from core.chain.packing import build_ata_transaction, build_mint_transaction
from core.chain.signer import KeypairSigner, Signer, message_bytes, sign_transactions
from tests.chain.test_builders import balance, new_mint


class CountingSigner:
    """Wraps a signer and records each sign_many call (how many messages it carried)."""

    def __init__(self, inner: Signer) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.name = inner.name
        self.key_version = inner.key_version

    @property
    def pubkey(self) -> Pubkey:
        return self.inner.pubkey

    def sign_many(self, messages: Sequence[bytes]) -> list[Signature]:
        self.calls.append(len(messages))
        return self.inner.sign_many(messages)


class WrongKeySigner(KeypairSigner):
    """Claims one public key and signs with another (a rotated or misnamed service key)."""

    def __init__(self, claimed: Pubkey) -> None:
        super().__init__(Keypair(), name="wrong")
        self._pubkey = claimed


class DownSigner(KeypairSigner):
    def sign_many(self, messages: Sequence[bytes]) -> list[Signature]:
        raise SignerUnavailable("the service is sealed")


def _mint_txs(payer: Pubkey, authority: Pubkey, count: int) -> list[Transaction]:
    factory = SplMintTo(Pubkey.new_unique(), authority, TOKEN_PROGRAM_ID, 9)
    return [
        build_mint_transaction(
            factory,
            [(Pubkey.new_unique(), 1 + i)],
            memo_text=batch_memo(i),
            blockhash=Hash.new_unique(),
            payer=payer,
        )
        for i in range(count)
    ]


def test_many_transactions_one_call_per_signer_same_bytes_as_solders() -> None:
    payer, authority = Keypair(), Keypair()
    pay, auth = CountingSigner(KeypairSigner(payer)), CountingSigner(KeypairSigner(authority))
    unsigned = _mint_txs(payer.pubkey(), authority.pubkey(), 5)
    signed = sign_transactions(unsigned, [auth, pay])
    assert pay.calls == [5] and auth.calls == [5]
    for tx, original in zip(signed, unsigned, strict=True):
        oracle = Transaction(
            [payer, authority], original.message, original.message.recent_blockhash
        )
        assert bytes(tx) == bytes(oracle)
        assert tx.signatures[0] == oracle.signatures[0]  # the payer's signature is the id
        tx.verify()


def test_v0_transactions_sign_like_solders() -> None:
    payer, authority = Keypair(), Keypair()
    factory = SplMintTo(Pubkey.new_unique(), authority.pubkey(), TOKEN_PROGRAM_ID, 9)
    instructions = [memo(batch_memo(7)), factory(Pubkey.new_unique(), 42)]
    message = MessageV0.try_compile(payer.pubkey(), instructions, [], Hash.new_unique())
    unsigned = VersionedTransaction.populate(message, [Signature.default()] * 2)
    (signed,) = sign_transactions([unsigned], [KeypairSigner(authority), KeypairSigner(payer)])
    assert isinstance(signed, VersionedTransaction)
    assert bytes(signed) == bytes(VersionedTransaction(message, [payer, authority]))
    assert message_bytes(signed)[0] == 0x80  # v0 messages are signed with their version prefix


def test_a_signature_of_another_key_is_refused_before_anything_is_assembled() -> None:
    payer = Keypair()
    unsigned = _mint_txs(payer.pubkey(), payer.pubkey(), 2)
    with pytest.raises(SignerError, match="does not verify"):
        sign_transactions(unsigned, [WrongKeySigner(payer.pubkey())])


def test_an_unavailable_signer_fails_the_whole_call() -> None:
    payer, authority = Keypair(), Keypair()
    pay = CountingSigner(KeypairSigner(payer))
    unsigned = _mint_txs(payer.pubkey(), authority.pubkey(), 3)
    with pytest.raises(SignerUnavailable):
        sign_transactions(unsigned, [pay, DownSigner(authority)])
    with pytest.raises(ValueError, match=str(authority.pubkey())):
        sign_transactions(unsigned, [pay])


def test_a_keypair_signer_never_shows_its_secret() -> None:
    keypair = Keypair()
    signer = KeypairSigner(keypair, name="file")
    shown = repr(signer) + str(signer)
    assert str(keypair.pubkey()) in shown
    assert base58.b58encode(bytes(keypair)).decode() not in shown
    assert str(list(bytes(keypair)[:32]))[1:-1] not in shown


def test_payer_apart_from_authority_mints_on_litesvm_and_pays_the_fee() -> None:
    svm = LiteSVM()
    payer, authority, owner = Keypair(), Keypair(), Keypair()
    svm.airdrop(payer.pubkey(), 10**10)
    mint = new_mint(svm, payer, authority.pubkey(), TOKEN_PROGRAM_ID)
    ata_tx = build_ata_transaction(
        payer.pubkey(), [owner.pubkey()], mint, TOKEN_PROGRAM_ID, svm.latest_blockhash()
    )
    svm.send_transaction(sign_transactions([ata_tx], [KeypairSigner(payer)])[0])
    factory = SplMintTo(mint, authority.pubkey(), TOKEN_PROGRAM_ID, 9)
    ata = associated_token_address(owner.pubkey(), mint, TOKEN_PROGRAM_ID)
    tx = build_mint_transaction(
        factory,
        [(ata, 1_234_567_891)],
        memo_text=batch_memo(1),
        blockhash=svm.latest_blockhash(),
        payer=payer.pubkey(),
    )
    before = svm.get_balance(payer.pubkey())
    (signed,) = sign_transactions([tx], [KeypairSigner(authority), KeypairSigner(payer)])
    svm.send_transaction(signed)
    assert balance(svm, ata) == 1_234_567_891
    assert before - svm.get_balance(payer.pubkey()) == 2 * 5000  # two signatures, payer pays
    assert not svm.get_balance(authority.pubkey())  # the authority has no account, no SOL
