"""The dashboard's one way to the chain: short timeouts, and failure is a value.

A page must render when the cluster is down, so every read returns a `ChainRead`
carrying either the value or why it is unavailable; nothing here raises. The
reconcile status compares the on-chain supply with what the database says was
minted, and says "unknown" (never "ok") when the chain cannot be read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import urlparse

from core.config import AppSettings
from core.views.overview import ExpectedSupply

T = TypeVar("T")
# Long enough for a healthy remote RPC, short enough that a page stays under a second
# or two when the node is down.
READ_TIMEOUT_SECS = 2.0
# Host name fragment -> Explorer's cluster parameter (mainnet needs none).
_EXPLORER_CLUSTERS = (("devnet", "devnet"), ("testnet", "testnet"), ("mainnet", ""))


@dataclass(frozen=True, slots=True)
class ChainRead(Generic[T]):
    value: T | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ReconcileState(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    UNKNOWN = "unknown"  # the chain could not be read
    NO_MINT = "no_mint"  # no GRX mint recorded yet


@dataclass(frozen=True, slots=True)
class Reconcile:
    state: ReconcileState
    expected: int | None
    onchain: int | None
    detail: str

    @property
    def difference(self) -> int | None:
        if self.expected is None or self.onchain is None:
            return None
        return self.onchain - self.expected


class ChainReader:
    """Read-only chain access for the dashboard (health, supply, a wallet's GRX)."""

    def __init__(
        self,
        rpc_url: str,
        *,
        commitment: str = "confirmed",
        timeout: float = READ_TIMEOUT_SECS,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.rpc_url = rpc_url
        self._commitment = commitment
        self._timeout = timeout
        self._factory = client_factory
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: AppSettings) -> ChainReader:
        return cls(settings.effective_rpc_url, commitment=settings.solana_commitment)

    def _get_client(self) -> Any:
        if self._client is None:
            if self._factory is not None:
                self._client = self._factory()
            else:
                # Imported here: the dashboard still renders where solana-py is broken.
                from core.chain.client import ChainClient

                self._client = ChainClient(
                    self.rpc_url, commitment=self._commitment, timeout=self._timeout
                )
        return self._client

    def _read(self, call: Callable[[Any], T]) -> ChainRead[T]:
        try:
            return ChainRead(value=call(self._get_client()))
        except Exception as exc:  # any failure is shown as "chain unavailable", never raised
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            return ChainRead(error=f"chain unavailable: {message}")

    def health(self) -> ChainRead[str]:
        return self._read(lambda client: client.health())

    def supply(self, mint_address: str) -> ChainRead[int]:
        from solders.pubkey import Pubkey

        return self._read(lambda client: int(client.token_supply(Pubkey.from_string(mint_address))))

    def wallet_balance(self, wallet: str, mint_address: str, token_program: str) -> ChainRead[int]:
        """GRX base units in the wallet's associated token account (0 when it has none)."""

        def read(client: Any) -> int:
            from solders.pubkey import Pubkey

            from core.chain.instructions import associated_token_address, token_program_id

            account = associated_token_address(
                Pubkey.from_string(wallet),
                Pubkey.from_string(mint_address),
                token_program_id(token_program),
            )
            if client.account(account) is None:
                return 0  # never minted to: the account is created with the first mint
            return int(client.token_balance(account))

        return self._read(read)

    def close(self) -> None:
        if self._client is not None and hasattr(self._client, "close"):
            self._client.close()
        self._client = None


def reconcile(expected: ExpectedSupply | None, onchain: ChainRead[int]) -> Reconcile:
    """Compare the mint's supply with the database; a mismatch is shown, never hidden."""
    if expected is None:
        return Reconcile(ReconcileState.NO_MINT, None, None, "no GRX mint recorded yet")
    if not onchain.ok or onchain.value is None:
        return Reconcile(
            ReconcileState.UNKNOWN, expected.expected, None, onchain.error or "not read"
        )
    if onchain.value == expected.expected:
        return Reconcile(ReconcileState.MATCH, expected.expected, onchain.value, "supply matches")
    return Reconcile(
        ReconcileState.MISMATCH,
        expected.expected,
        onchain.value,
        "on-chain supply differs from bootstrap supply + minted readings",
    )


def explorer_url(signature: str, rpc_url: str) -> str | None:
    """A Solana Explorer link when the cluster is a public one; None for local nodes."""
    host = urlparse(rpc_url).hostname or ""
    for name, cluster in _EXPLORER_CLUSTERS:
        if name in host:
            suffix = f"?cluster={cluster}" if cluster else ""
            return f"https://explorer.solana.com/tx/{signature}{suffix}"
    return None
