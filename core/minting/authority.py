"""Moving the mint authority to another signer, through the outbox like every chain write.

One transaction moves every authority the console holds: the GRX mint's and, when
a certificate mint exists, its mint authority and its permanent delegate. They
move together or not at all, so the scheduler never starts with a signer that
runs one mint and not the other.

The SetAuthority transaction is planned as a `set_authority` batch, signed by
the current authority (and the fee payer), committed, sent and settled from the
chain by core.minting.outbox, exactly as mints are. The batch row (kind,
payload from/to, signer and key version, signature) and the
`mint_authority_changed` event are the record. The new signer is asked to sign
a probe first, so authority never moves to a key nobody can use.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from sqlalchemy import select

from core.bootstrap import App
from core.chain.certificate_instructions import AUTHORITY_TYPE_PERMANENT_DELEGATE
from core.chain.certificate_mint import CertificateMint
from core.chain.client import ChainClient
from core.chain.errors import ChainError, SignerError
from core.chain.instructions import AUTHORITY_TYPE_MINT_TOKENS, SetAuthorityParams, set_authority
from core.chain.mint_setup import GrxMint
from core.chain.signer import Signer
from core.chain.signer_setup import ChainSigners
from core.chain.transactions import build_transaction
from core.db.models import BatchStatus, MintBatch, OperationKind
from core.db.types import utcnow
from core.errors import DomainError
from core.minting import states
from core.minting.outbox import CycleReport, Outbox

log = logging.getLogger(__name__)

ATTEMPTS = 3  # fresh blockhashes tried when a SetAuthority expires unseen
PROBE = b"gridtokenx:authority-probe"


class AuthorityChangeRefused(DomainError):
    code = "authority_change_refused"


@dataclass(frozen=True)
class AuthorityChange:
    batch_id: int
    signature: str
    old_authority: Pubkey
    new_authority: Pubkey


def check_signer_works(signer: Signer) -> None:
    """The signer answers and its signature verifies for its public key."""
    (signature,) = signer.sign_many([PROBE])
    if not signature.verify(signer.pubkey, PROBE):
        raise SignerError(f"{signer.name} signs, but not as {signer.pubkey}")


def authority_moves(
    grx: GrxMint, certificates: CertificateMint | None, old: Pubkey, new: Pubkey
) -> list[Instruction]:
    """The SetAuthority instructions that hand every mint the console runs to `new`."""
    moves = [set_authority(SetAuthorityParams(grx.token_program, grx.address, old, new))]
    if certificates is not None:
        for kind in (AUTHORITY_TYPE_MINT_TOKENS, AUTHORITY_TYPE_PERMANENT_DELEGATE):
            moves.append(
                set_authority(
                    SetAuthorityParams(
                        certificates.token_program, certificates.address, old, new, kind
                    )
                )
            )
    return moves


def rotate_mint_authority(
    app: App,
    chain: ChainClient,
    signers: ChainSigners,
    grx: GrxMint,
    new: Signer,
    certificates: CertificateMint | None = None,
) -> AuthorityChange:
    """SetAuthority from the configured authority to `new` on every mint, exactly once."""
    old = signers.authority
    if new.pubkey == old.pubkey:
        raise AuthorityChangeRefused(f"{new.name} ({new.pubkey}) is already the mint authority")
    with app.sessions() as session:
        open_count = len(states.open_batches(session))
    if open_count:
        raise AuthorityChangeRefused(
            f"{open_count} batch(es) are still planned or signed; stop the scheduler and let "
            "them settle (start it once and stop it), then rotate"
        )
    check_signer_works(new)
    outbox = Outbox(
        app.sessions,
        chain,
        (signers.fee_payer, old),
        app.config,
        stop=threading.Event(),
        clock=utcnow,
        poll_interval=0.2,
        rebroadcast_interval=2.0,
        settle_timeout=90.0,
    )
    payload = {
        "mint": str(grx.address),
        "old_authority": str(old.pubkey),
        "new_authority": str(new.pubkey),
        "new_signer": new.name,
        "new_key_version": new.key_version,
        "certificate_mint": None if certificates is None else str(certificates.address),
    }
    instructions = authority_moves(grx, certificates, old.pubkey, new.pubkey)
    for _ in range(ATTEMPTS):
        with app.sessions() as session:
            batch_id = outbox.plan(session, OperationKind.SET_AUTHORITY, payload)
            session.commit()
        blockhash, last_valid = chain.latest_blockhash()
        tx = build_transaction(instructions, signers.fee_payer.pubkey, blockhash)
        kind = OperationKind.SET_AUTHORITY.value
        try:
            prepared = outbox.sign_all([(batch_id, tx, last_valid, kind)])
        except Exception:
            with app.sessions() as session:  # nothing was signed: the row says so
                states.release_planned(
                    session, batch_id, reason="released: could not sign", now=utcnow()
                )
            raise
        in_flight = outbox.persist(prepared, blockhash)
        outbox.broadcast(in_flight)
        outbox.settle(in_flight, CycleReport())
        with app.sessions() as session:
            batch = session.scalars(select(MintBatch).where(MintBatch.id == batch_id)).one()
        if batch.status == BatchStatus.CONFIRMED:
            return AuthorityChange(batch_id, str(batch.signature), old.pubkey, new.pubkey)
        if batch.status == BatchStatus.FAILED:
            raise ChainError(f"SetAuthority failed on chain: {batch.error}")
        if batch.status != BatchStatus.EXPIRED:  # still signed: recovery settles it later
            raise ChainError(
                f"SetAuthority {batch.signature} is not settled yet; run the command again "
                "later to see its outcome (it will not be sent twice)"
            )
        log.info("SetAuthority batch %d expired unseen; signing again", batch_id)
    raise ChainError(f"SetAuthority expired {ATTEMPTS} times; is the cluster reachable?")
