"""Transactions: build unsigned, measure, sign. No network here.

Building and signing are separate steps so the pipeline can persist the signed
bytes before it sends them (DESIGN "Minting exactly once"). Signing goes
through core.chain.signer, whatever holds the key, legacy and v0 alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction

from core.chain.errors import TransactionTooLarge
from core.chain.signer import AnyTransaction, Signer, sign_transactions

# The IPv6 MTU minus headers: the largest transaction a validator accepts (bytes).
PACKET_DATA_SIZE = 1232


def serialized_size(tx: Transaction | VersionedTransaction) -> int:
    """Wire size; an unsigned transaction carries zeroed signatures of the final length."""
    return len(bytes(tx))


def build_transaction(
    instructions: Sequence[Instruction], payer: Pubkey, blockhash: Hash
) -> Transaction:
    """An unsigned legacy transaction, refused when it would not fit in one packet."""
    tx = Transaction.new_unsigned(Message.new_with_blockhash(instructions, payer, blockhash))
    size = serialized_size(tx)
    if size > PACKET_DATA_SIZE:
        raise TransactionTooLarge(size, PACKET_DATA_SIZE)
    return tx


def sign_transaction(tx: AnyTransaction, signers: Sequence[Signer | Keypair]) -> AnyTransaction:
    """A signed copy of `tx`; each required signer must be among `signers` (extras are ignored)."""
    return sign_transactions([tx], signers)[0]


def transaction_signature(tx: Transaction | VersionedTransaction) -> Signature:
    """The id of a signed transaction: its fee payer's signature."""
    return tx.signatures[0]
