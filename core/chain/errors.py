"""Chain failures as our own exceptions, each with a stable `code`.

The minting pipeline decides what to do from the class alone: an expired
blockhash means "re-sign with a fresh one", "not yet confirmed" means "ask
again later", a landed error means "back to pending with backoff". Callers
never see solana-py or httpx exceptions; those are kept as `__cause__`.
"""

from __future__ import annotations

from core.errors import DomainError


class ChainError(DomainError):
    """Something about the Solana cluster or a transaction on it went wrong."""

    code = "chain_error"


class RpcUnavailable(ChainError):
    """The RPC endpoint could not be reached (refused, timed out, 5xx): retry later."""

    code = "rpc_unavailable"


class RpcError(ChainError):
    """The node answered with an error we do not classify further."""

    code = "rpc_error"


class BlockhashExpired(ChainError):
    """The transaction's blockhash is no longer valid: it can never land, re-sign it."""

    code = "blockhash_expired"


class NotYetConfirmed(ChainError):
    """The transaction is not (yet) confirmed but may still land: keep asking."""

    code = "not_confirmed"


class TransactionFailed(ChainError):
    """The transaction landed (or failed preflight) with an on-chain error."""

    code = "transaction_failed"

    def __init__(self, message: str, *, error: str = "", logs: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.error = error
        self.logs = logs


class AlreadyProcessed(ChainError):
    """The very same transaction was already processed: it was credited once, not twice."""

    code = "already_processed"


class TransactionTooLarge(ChainError):
    """The serialized transaction exceeds the 1232-byte packet limit."""

    code = "transaction_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"transaction is {size} bytes, over the {limit}-byte limit")
        self.size = size
        self.limit = limit


class MintMismatch(ChainError):
    """The configured or recorded mint is not one this deployment can mint with."""

    code = "mint_mismatch"


class MintNotFound(ChainError):
    """A mint we were told about (env or database) does not exist on this cluster."""

    code = "mint_not_found"


class InsufficientFunds(ChainError):
    """The fee payer cannot pay for what was asked (and no airdrop is possible)."""

    code = "insufficient_funds"


class KeypairError(ChainError):
    """The authority keypair file is missing, malformed or readable by others."""

    code = "invalid_keypair"


class IdlMismatch(ChainError):
    """GRIDTOKENX_IDL_PATH does not describe the energy_token instruction we call."""

    code = "invalid_idl"


class SignerError(ChainError):
    """A signer refused or answered wrongly (its signature does not verify): not retried."""

    code = "signer_error"


class SignerUnavailable(SignerError):
    """The signing service is down, sealed or refuses our credentials: retry later.

    Nothing was signed, so nothing can be sent; the cycle stops and resumes later.
    """

    code = "signer_unavailable"
