"""The signer seam: whoever holds a key signs message bytes, many at once.

Everything that needs a signature (mints, token accounts, lookup tables, the
mint's creation, authority changes) asks a `Signer`; nothing else touches key
material. A signer answers for one public key: a keypair in this process
(`KeypairSigner`, the file signer) or a key that never leaves a key-management
service (core.chain.transit). Transactions are assembled from their message
and the signatures, so legacy and v0 transactions sign the same way, and the
outbox persists the signed bytes whatever signed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from solders.keypair import Keypair
from solders.message import Message, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction

from core.chain.errors import SignerError
from core.chain.keys import load_or_create_keypair

AnyTransaction = TypeVar("AnyTransaction", Transaction, VersionedTransaction)


@runtime_checkable
class Signer(Protocol):
    """One key that signs message bytes; `sign_many` returns one signature per message."""

    @property
    def pubkey(self) -> Pubkey: ...

    @property
    def name(self) -> str:
        """Which signer this is, recorded with each batch it signs ("file", "vault-transit:...")."""
        ...

    @property
    def key_version(self) -> int | None:
        """The key's version in its service (None for a keypair file)."""
        ...

    def sign_many(self, messages: Sequence[bytes]) -> list[Signature]: ...


class KeypairSigner:
    """A keypair held in this process. Its repr names the public key only.

    (solders' own Keypair repr prints the secret key: never log a Keypair.)
    """

    key_version = None

    def __init__(self, keypair: Keypair, *, name: str = "keypair") -> None:
        self._keypair = keypair
        self._pubkey = keypair.pubkey()
        self.name = name

    @property
    def pubkey(self) -> Pubkey:
        return self._pubkey

    def sign_many(self, messages: Sequence[bytes]) -> list[Signature]:
        return [self._keypair.sign_message(message) for message in messages]

    def __repr__(self) -> str:
        return f"KeypairSigner({self.name}, {self._pubkey})"


def file_signer(path: Path, *, name: str = "file", role: str = "authority") -> KeypairSigner:
    """The Solana CLI keypair at `path` (generated 0600 on first use), as a signer."""
    return KeypairSigner(load_or_create_keypair(path, role=role), name=name)


def as_signer(key: Signer | Keypair) -> Signer:
    """Accept a bare Keypair where a Signer is expected (tests, one-off keys such as a new mint)."""
    return KeypairSigner(key) if isinstance(key, Keypair) else key


def message_bytes(tx: Transaction | VersionedTransaction) -> bytes:
    """The bytes a signer signs: the serialized message (v0 with its version prefix)."""
    message = tx.message
    return bytes(message) if isinstance(message, Message) else to_bytes_versioned(message)


def required_signers(tx: Transaction | VersionedTransaction) -> list[Pubkey]:
    message = tx.message
    return list(message.account_keys[: message.header.num_required_signatures])


def sign_transactions(
    unsigned: Sequence[AnyTransaction], signers: Sequence[Signer | Keypair]
) -> list[AnyTransaction]:
    """Each transaction signed by every key it requires, with one `sign_many` per signer.

    All or nothing: a signer that fails raises before any transaction is
    assembled, so nothing half-signed can be persisted or sent. Every signature
    is verified against its message first, so a service that signed with
    another key (a rotated key version, a wrong key name) is refused here, not
    by the cluster. Extra signers are ignored, so (payer, authority) may be
    passed when both are the same key.
    """
    by_pubkey: dict[Pubkey, Signer] = {}
    for key in signers:
        signer = as_signer(key)
        by_pubkey.setdefault(signer.pubkey, signer)
    needed = [required_signers(tx) for tx in unsigned]
    missing = sorted({str(pk) for keys in needed for pk in keys if pk not in by_pubkey})
    if missing:
        raise ValueError(f"missing signer(s): {', '.join(missing)}")
    messages = [message_bytes(tx) for tx in unsigned]
    signatures: dict[tuple[int, Pubkey], Signature] = {}
    for pubkey, signer in by_pubkey.items():
        wanted = [index for index, keys in enumerate(needed) if pubkey in keys]
        if not wanted:
            continue
        produced = signer.sign_many([messages[index] for index in wanted])
        if len(produced) != len(wanted):
            raise SignerError(
                f"signer {signer.name} returned {len(produced)} signatures "
                f"for {len(wanted)} messages"
            )
        for index, signature in zip(wanted, produced, strict=True):
            if not signature.verify(pubkey, messages[index]):
                raise SignerError(
                    f"signer {signer.name} returned a signature that does not verify for {pubkey}; "
                    "is it configured with the right key (and key version)?"
                )
            signatures[(index, pubkey)] = signature
    return [
        type(tx).populate(tx.message, [signatures[(index, pk)] for pk in needed[index]])
        for index, tx in enumerate(unsigned)
    ]
