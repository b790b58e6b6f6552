"""Legacy transactions: build unsigned, measure, sign. No network here.

Building and signing are separate steps so the pipeline can persist the signed
bytes before it sends them (DESIGN "Minting exactly once").
"""

from __future__ import annotations

from collections.abc import Sequence

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from core.chain.errors import TransactionTooLarge

# The IPv6 MTU minus headers: the largest transaction a validator accepts (bytes).
PACKET_DATA_SIZE = 1232


def serialized_size(tx: Transaction) -> int:
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


def required_signers(tx: Transaction) -> list[Pubkey]:
    message = tx.message
    return list(message.account_keys[: message.header.num_required_signatures])


def sign_transaction(tx: Transaction, signers: Sequence[Keypair]) -> Transaction:
    """A signed copy of `tx`; each required signer must be given exactly once.

    Extra keypairs are dropped rather than refused, so a caller may pass
    (payer, authority) even when both are the same key.
    """
    needed = required_signers(tx)
    by_pubkey = {keypair.pubkey(): keypair for keypair in signers}
    missing = [str(pubkey) for pubkey in needed if pubkey not in by_pubkey]
    if missing:
        raise ValueError(f"missing signer(s): {', '.join(missing)}")
    signed = Transaction.new_unsigned(tx.message)
    signed.sign([by_pubkey[pubkey] for pubkey in needed], tx.message.recent_blockhash)
    return signed


def transaction_signature(tx: Transaction) -> Signature:
    """The id of a signed transaction: its fee payer's signature."""
    return tx.signatures[0]
