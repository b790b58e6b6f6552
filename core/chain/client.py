"""The one module that talks to a Solana JSON-RPC node (solana-py's sync Client).

Every failure leaves as a core.chain.errors exception raised `from` the
original, so callers never import solana-py, httpx or solders.rpc. Amounts are
ints parsed from the RPC's `amount` strings, never from `uiAmount` floats.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from solana.exceptions import SolanaRpcException
from solana.rpc.api import Client
from solana.rpc.core import RPCException, RPCNoResultException
from solana.rpc.types import DataSliceOpts, TxOpts
from solders.address_lookup_table_account import ID as LOOKUP_TABLE_PROGRAM_ID
from solders.errors import SerdeJSONError
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.rpc.errors import NodeUnhealthyMessage, SendTransactionPreflightFailureMessage
from solders.signature import Signature
from solders.token.state import Mint
from solders.transaction import VersionedTransaction

from core.chain.errors import (
    AlreadyProcessed,
    BlockhashExpired,
    ChainError,
    MintMismatch,
    MintNotFound,
    NotYetConfirmed,
    RpcError,
    RpcUnavailable,
    TransactionFailed,
)
from core.chain.instructions import MINT_SIZE, token_program_name
from core.chain.lookup_tables import LookupTable
from core.chain.status import (
    AccountData,
    BalanceChange,
    Confirmation,
    ConfirmationState,
    MintInfo,
    SignatureStatus,
    TransactionCost,
    transaction_error,
)

_STATUS_BATCH = 256  # getSignatureStatuses accepts at most 256 signatures
_ACCOUNTS_BATCH = 100  # getMultipleAccounts accepts at most 100 keys


def _rpc_error(error: Any, endpoint: str) -> ChainError:
    if isinstance(error, SendTransactionPreflightFailureMessage):
        logs = tuple(error.data.logs or ())
        if error.data.err is not None:
            return transaction_error(error.data.err, error.message, logs)
        return TransactionFailed(error.message, error="PreflightFailure", logs=logs)
    if isinstance(error, NodeUnhealthyMessage):
        return RpcUnavailable(f"{endpoint} is unhealthy: {error.message}")
    message = str(getattr(error, "message", None) or error)
    # Outside preflight, nodes only phrase these in the message text.
    if "blockhash not found" in message.lower():
        return BlockhashExpired(message)
    if "already been processed" in message.lower():
        return AlreadyProcessed(message)
    return RpcError(f"{endpoint} answered with an error: {message}")


def _http_error(exc: BaseException, endpoint: str) -> ChainError:
    if isinstance(exc, httpx.TimeoutException):
        return RpcUnavailable(f"{endpoint} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status >= 500 or status == 429:
            return RpcUnavailable(f"{endpoint} answered HTTP {status}; retry later")
        return RpcError(f"{endpoint} answered HTTP {status}")
    if isinstance(exc, httpx.TransportError):
        return RpcUnavailable(f"cannot reach {endpoint}: {exc or type(exc).__name__}")
    return RpcError(f"request to {endpoint} failed: {exc}")


class ChainClient:
    """Solana JSON-RPC for this project; `commitment` applies to reads and confirmations.

    Safe to share between threads: solana-py's Client sends through one httpx.Client.
    """

    def __init__(self, url: str, *, commitment: str = "confirmed", timeout: float = 10.0) -> None:
        self.url = url
        self.commitment = commitment
        self._rpc = Client(url, commitment=commitment, timeout=timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self._rpc._provider.session.close()  # solana-py's Client has no public close

    def __enter__(self) -> ChainClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except ChainError:
            raise
        except RPCException as exc:
            raise _rpc_error(exc.args[0] if exc.args else exc, self.url) from exc
        except SolanaRpcException as exc:
            raise _http_error(exc.__cause__ or exc, self.url) from exc
        except httpx.HTTPError as exc:
            raise _http_error(exc, self.url) from exc
        except RPCNoResultException as exc:
            raise RpcError(f"{self.url} returned no result: {exc}") from exc
        except SerdeJSONError as exc:
            raise RpcError(f"{self.url} answered with something that is not JSON-RPC") from exc

    def _value(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        with self._translated():
            response = call(*args, **kwargs)
        if not hasattr(response, "value"):  # solders parses unknown error codes to bare ints
            raise RpcError(f"{self.url} answered {call.__name__} unexpectedly: {response!r}")
        return response.value

    # --- cluster -----------------------------------------------------------------------

    def health(self) -> str:
        """Return "ok", or raise RpcUnavailable saying why the node cannot serve."""
        with self._translated():
            healthy = self._rpc.is_connected()
        if not healthy:
            raise RpcUnavailable(f"{self.url} reports that it is not healthy")
        return "ok"

    def latest_blockhash(self) -> tuple[Hash, int]:
        """(blockhash, last_valid_block_height): sign with it, and give up after that height."""
        value = self._value(self._rpc.get_latest_blockhash, self.commitment)
        return value.blockhash, value.last_valid_block_height

    def block_height(self) -> int:
        return int(self._value(self._rpc.get_block_height, self.commitment))

    def slot(self) -> int:
        """The newest slot at the client's commitment."""
        return int(self._value(self._rpc.get_slot, self.commitment))

    def minimum_balance_for_rent_exemption(self, size: int) -> int:
        return int(self._value(self._rpc.get_minimum_balance_for_rent_exemption, size))

    # --- transactions ------------------------------------------------------------------

    def send_raw(self, raw: bytes, *, skip_preflight: bool = False) -> Signature:
        """Submit signed bytes; resending the same bytes can never mint twice.

        With preflight, a duplicate raises AlreadyProcessed, an old blockhash
        BlockhashExpired and a program error TransactionFailed (with its logs).
        """
        opts = TxOpts(
            skip_confirmation=True,
            skip_preflight=skip_preflight,
            preflight_commitment=self.commitment,  # type: ignore[arg-type]
        )
        return self._value(self._rpc.send_raw_transaction, raw, opts)

    def signature_statuses(self, signatures: Sequence[Signature]) -> list[SignatureStatus | None]:
        """Each signature's status (None: never seen), searching the whole history."""
        statuses: list[SignatureStatus | None] = []
        for start in range(0, len(signatures), _STATUS_BATCH):
            chunk = list(signatures[start : start + _STATUS_BATCH])
            values = self._value(self._rpc.get_signature_statuses, chunk, True)
            statuses += [None if v is None else SignatureStatus.from_solders(v) for v in values]
        return statuses

    def confirmations(self, pending: Sequence[tuple[Signature, int | None]]) -> list[Confirmation]:
        """One look at each (signature, last_valid_block_height); None never expires.

        The height is read before the statuses: see Confirmation.judge.
        """
        height = self.block_height()
        statuses = self.signature_statuses([signature for signature, _ in pending])
        return [
            Confirmation.judge(
                status,
                commitment=self.commitment,
                block_height_before=height,
                last_valid_block_height=height if last_valid is None else last_valid,
            )
            for (_, last_valid), status in zip(pending, statuses, strict=True)
        ]

    def transaction_cost(self, signature: Signature) -> TransactionCost | None:
        """Fee, compute units and lamport movements of a landed transaction; None if unknown.

        Asked at `confirmed` (getTransaction serves nothing below it), any version.
        """
        value = self._value(self._rpc.get_transaction, signature, "base64", "confirmed", 0)
        if value is None or value.transaction.meta is None:
            return None
        meta = value.transaction.meta
        tx = value.transaction.transaction
        if not isinstance(tx, VersionedTransaction):
            raise RpcError(f"{self.url} answered getTransaction without the transaction bytes")
        keys = list(tx.message.account_keys)
        loaded = meta.loaded_addresses
        if loaded is not None:
            keys += list(loaded.writable) + list(loaded.readonly)
        changes = tuple(
            BalanceChange(key, before, after)
            for key, before, after in zip(keys, meta.pre_balances, meta.post_balances, strict=True)
            if before != after
        )
        return TransactionCost(
            signature=str(signature),
            slot=int(value.slot),
            fee=int(meta.fee),
            compute_units=meta.compute_units_consumed,
            failed=meta.err is not None,
            fee_payer=keys[0],
            changes=changes,
        )

    def wait_for_confirmations(
        self,
        pending: Sequence[tuple[Signature, int | None]],
        *,
        timeout: float = 60.0,
        poll_interval: float = 0.1,
    ) -> list[SignatureStatus]:
        """Poll until every transaction is confirmed, raising on the first final failure.

        TransactionFailed: landed with an error. BlockhashExpired: can never
        land. NotYetConfirmed: still possible, but not within `timeout`.
        """
        deadline = time.monotonic() + timeout
        done: dict[int, SignatureStatus] = {}
        while True:
            open_items = [i for i in range(len(pending)) if i not in done]
            results = self.confirmations([pending[i] for i in open_items])
            for index, result in zip(open_items, results, strict=True):
                signature = pending[index][0]
                if result.state is ConfirmationState.FAILED and result.status is not None:
                    error = result.status.error or ""
                    raise TransactionFailed(f"{signature} failed: {error}", error=error)
                if result.state is ConfirmationState.EXPIRED:
                    raise BlockhashExpired(f"{signature} expired before it was processed")
                if result.state is ConfirmationState.CONFIRMED and result.status is not None:
                    done[index] = result.status
            if len(done) == len(pending):
                return [done[i] for i in range(len(pending))]
            if time.monotonic() >= deadline:
                raise NotYetConfirmed(
                    f"{len(pending) - len(done)} transaction(s) not {self.commitment} "
                    f"after {timeout:.0f}s; they may still land"
                )
            time.sleep(poll_interval)

    def wait_for_confirmation(
        self, signature: Signature, last_valid_block_height: int | None, *, timeout: float = 60.0
    ) -> SignatureStatus:
        pending = [(signature, last_valid_block_height)]
        return self.wait_for_confirmations(pending, timeout=timeout)[0]

    # --- accounts ----------------------------------------------------------------------

    def accounts_exist(self, pubkeys: Sequence[Pubkey]) -> list[bool]:
        exists: list[bool] = []
        for start in range(0, len(pubkeys), _ACCOUNTS_BATCH):
            chunk = list(pubkeys[start : start + _ACCOUNTS_BATCH])
            # A zero-length data slice: existence needs no account data.
            values = self._value(
                self._rpc.get_multiple_accounts,
                chunk,
                self.commitment,
                "base64",
                DataSliceOpts(offset=0, length=0),
            )
            exists += [value is not None for value in values]
        return exists

    def account(self, pubkey: Pubkey) -> AccountData | None:
        """The account's owner, lamports and data; None when it does not exist."""
        value = self._value(self._rpc.get_account_info, pubkey, self.commitment)
        if value is None:
            return None
        return AccountData(owner=value.owner, lamports=value.lamports, data=bytes(value.data))

    def lookup_tables(self, addresses: Sequence[Pubkey]) -> list[LookupTable | None]:
        """Each address lookup table as the chain holds it (None: no such table)."""
        tables: list[LookupTable | None] = []
        for start in range(0, len(addresses), _ACCOUNTS_BATCH):
            chunk = list(addresses[start : start + _ACCOUNTS_BATCH])
            values = self._value(self._rpc.get_multiple_accounts, chunk, self.commitment, "base64")
            for address, value in zip(chunk, values, strict=True):
                tables.append(
                    None
                    if value is None or value.owner != LOOKUP_TABLE_PROGRAM_ID
                    else LookupTable.from_account_data(address, bytes(value.data))
                )
        return tables

    def sol_balance(self, pubkey: Pubkey) -> int:
        """Lamports."""
        return int(self._value(self._rpc.get_balance, pubkey, self.commitment))

    def token_balance(self, token_account: Pubkey) -> int:
        """Base units held by a token account (RpcError when it does not exist)."""
        value = self._value(self._rpc.get_token_account_balance, token_account, self.commitment)
        return int(value.amount)

    def token_supply(self, mint: Pubkey) -> int:
        """The mint's total supply in base units."""
        return int(self._value(self._rpc.get_token_supply, mint, self.commitment).amount)

    def mint_info(self, mint: Pubkey) -> MintInfo:
        """The mint's authority, decimals, supply and freeze authority, read from its account.

        MintNotFound when no account exists; MintMismatch when the account is not a mint.
        """
        account = self._value(self._rpc.get_account_info, mint, self.commitment)
        if account is None:
            raise MintNotFound(f"no account {mint} on {self.url}")
        if token_program_name(account.owner) is None or len(account.data) < MINT_SIZE:
            raise MintMismatch(f"{mint} is not a token mint (owner {account.owner})")
        # Token-2022 mints keep the base layout in their first 82 bytes.
        state = Mint.from_bytes(bytes(account.data[:MINT_SIZE]))
        if not state.is_initialized:
            raise MintMismatch(f"{mint} is an uninitialized mint account")
        return MintInfo(
            address=mint,
            mint_authority=state.mint_authority,
            decimals=state.decimals,
            supply=state.supply,
            freeze_authority=state.freeze_authority,
            token_program=account.owner,
        )

    def request_airdrop(self, pubkey: Pubkey, lamports: int, *, timeout: float = 30.0) -> Signature:
        """Ask the cluster's faucet for lamports and wait until the airdrop is confirmed."""
        signature = self._value(self._rpc.request_airdrop, pubkey, lamports, self.commitment)
        self.wait_for_confirmation(signature, None, timeout=timeout)
        return signature
