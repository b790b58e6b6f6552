"""Read-only chain access with short timeouts, where failure is a value.

A page must render when the cluster is down, so every read returns a `ChainRead`
carrying either the value or why it is unavailable; nothing here raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from core.config import AppSettings

T = TypeVar("T")
# Long enough for a healthy remote RPC, short enough that a page stays under a second
# or two when the node is down.
READ_TIMEOUT_SECS = 2.0


@dataclass(frozen=True, slots=True)
class ChainRead(Generic[T]):
    value: T | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ChainReader:
    """Read-only chain access for pages (health, supply, a wallet's GRX)."""

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
