"""The node: one LiteSVM, the slot clock, the blockhash window and the durable ledger.

LiteSVM runs with its own blockhash check off, so this class decides what a real
leader would: a transaction lands only with a blockhash from the last 150 blocks
and only if its signature was never processed before (the ledger, not LiteSVM's
bounded in-memory history, is the authority, so this holds across restarts).

Order of a landing: simulate (no state change) -> queue the writes and the
signature to the ledger -> apply the writes to LiteSVM -> (commit) -> answer.
The answer waits for the commit, so whatever a client was told is on disk; a
crash before it leaves nothing that anyone saw, and the transaction may land
once after the restart. Not thread-safe: one thread (the event loop) owns a Node.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol, TypeVar

from solders.account import Account
from solders.clock import Clock
from solders.compute_budget import set_compute_unit_limit
from solders.epoch_schedule import EpochSchedule
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import (
    FailedTransactionMetadata,
    SimulatedTransactionInfo,
    TransactionMetadata,
)
from solders.transaction_status import TransactionErrorFieldless, TransactionErrorType

from core.chain.localnet.clock import SLOTS_PER_EPOCH, SlotClock
from core.chain.localnet.errors import (
    INTERNAL_ERROR,
    RpcError,
    preflight_failure,
    signature_verification_failure,
)
from core.chain.localnet.execution import (
    AccountWrites,
    ResolvedKeys,
    bill_priority_fee,
    fee_for,
    resolve_keys,
    status_meta_json,
)
from core.chain.localnet.ledger import Ledger, SignatureStatus, TransactionRecord, ledger_path
from core.chain.localnet.ledger_index import SlotStart
from core.chain.localnet.rent import rent_violation
from core.chain.localnet.tokens import balance_snapshot, parse_mint

# The faucet behind requestAirdrop: 500 million SOL, like solana-test-validator's.
FAUCET_LAMPORTS = 500_000_000 * 1_000_000_000
_SLOT_HASHES_KEPT = 512  # the SlotHashes sysvar's length on a cluster
T = TypeVar("T")
log = logging.getLogger(__name__)
_AIRDROP_UNITS = 10_000
_MAX_IDENTICAL_AIRDROPS = 10_000


def _guarded(run: Callable[[VersionedTransaction], T], tx: VersionedTransaction) -> T:
    """Run LiteSVM on a transaction; a Rust panic becomes an RPC error, not a dead node."""
    try:
        return run(tx)
    except BaseException as exc:
        # pyo3's PanicException is a BaseException with no importable class.
        if type(exc).__name__ != "PanicException":
            raise
        log.warning("localnet: LiteSVM panicked on %s: %s", tx.signatures[0], exc)
        raise RpcError(
            INTERNAL_ERROR, f"Internal error: LiteSVM panicked executing the transaction: {exc}"
        ) from None


class ChainObserver(Protocol):
    """What the node reports as it happens, on its own thread, before any commit is done."""

    def received(self, signature: bytes, slot: int) -> None: ...

    def landed(
        self, record: TransactionRecord, keys: list[Pubkey], writes: AccountWrites
    ) -> None: ...

    def slots_advanced(self, before: int, now: int) -> None: ...


class Node:
    """The chain: state in LiteSVM, time in the clock, history in the ledger."""

    def __init__(self, ledger: Ledger, slot_ms: int, wall_clock: Callable[[], float] = time.time):
        self.ledger = ledger
        self._wall_clock = wall_clock
        # LiteSVM() brings SPL Token, Token-2022, ATA and Memo; .default() would not.
        self.svm = LiteSVM().with_blockhash_check(False).with_transaction_history(0)
        # Signatures are verified here, as a node does before preflight, so that
        # simulateTransaction can run unsigned transactions when sigVerify is false.
        self.svm = self.svm.with_sigverify(False)
        self.svm.set_epoch_schedule(EpochSchedule.without_warmup())
        for key, account in ledger.accounts():
            self.svm.set_account(key, account)
        seed = ledger.seed
        self.genesis_hash = hashlib.sha256(seed + b"genesis").digest()
        self.faucet = Keypair.from_seed(hashlib.sha256(seed + b"faucet").digest())
        # The one validator of this cluster: it leads every slot.
        self.identity = Keypair.from_seed(hashlib.sha256(seed + b"identity").digest()).pubkey()
        if ledger.is_new:
            funded = Account(FAUCET_LAMPORTS, b"", SYSTEM_PROGRAM_ID)
            ledger.save_accounts([(self.faucet.pubkey(), funded)]).result()
            self.svm.set_account(self.faucet.pubkey(), funded)
        # After a restart a new slot begins: nothing lands twice in one slot number.
        start = 0 if ledger.is_new else ledger.slot + 1
        self.clock = SlotClock(seed, start, slot_ms)
        # Each run's start, so that any slot's blockTime is known, across restarts too.
        self._slot_starts = [s for s in ledger.index.slot_starts() if s.slot < start]
        run = SlotStart(start, int(self._wall_clock() * 1000), slot_ms)
        self._slot_starts.append(run)
        ledger.save_slot_start(run.slot, run.unix_ms, run.slot_ms)
        self._slot_hashes: deque[tuple[int, Hash]] = deque(maxlen=_SLOT_HASHES_KEPT)
        self._sync_sysvars()
        ledger.save_slot(start)
        # Told of what happens on chain (the pubsub service), when one is attached.
        self.observer: ChainObserver | None = None
        # Where clients reach this node (getClusterNodes); the server fills them in.
        self.rpc_address: str | None = None
        self.pubsub_address: str | None = None
        # Executed and applied, not yet committed: duplicates must see these too.
        self._uncommitted: dict[bytes, Future[None]] = {}

    @classmethod
    def open(cls, data_dir: Path, slot_ms: int) -> Node:
        return cls(Ledger(ledger_path(data_dir)), slot_ms)

    def close(self) -> None:
        self.ledger.save_slot(self.clock.slot)
        self.ledger.close()

    # Time

    def tick(self) -> None:
        """Move to the wall-clock slot; persist it so a restart continues from here."""
        before = self.clock.slot
        if self.clock.advance():
            self._sync_sysvars()
            self.ledger.save_slot(self.clock.slot)
            if self.observer is not None:
                self.observer.slots_advanced(before, self.clock.slot)
        if self._uncommitted:
            self._uncommitted = {s: f for s, f in self._uncommitted.items() if not f.done()}

    def _sync_sysvars(self) -> None:
        # Programs read Clock; address lookup tables check recent slots in SlotHashes.
        slot = self.clock.slot
        epoch = slot // SLOTS_PER_EPOCH
        now = self.block_time(slot)
        self.svm.set_clock(Clock(slot, now, epoch, epoch + 1, now))
        newest = self._slot_hashes[0][0] if self._slot_hashes else -1
        for missing in range(max(newest + 1, slot - _SLOT_HASHES_KEPT + 1), slot + 1):
            self._slot_hashes.appendleft((missing, self.clock.blockhash(missing)))
        self.svm.set_slot_hashes(list(self._slot_hashes))

    def block_time(self, slot: int) -> int:
        """Unix time (s) at which `slot` began; the Clock sysvar and blockTime agree on it."""
        run = self._slot_starts[0]
        for candidate in self._slot_starts:
            if candidate.slot <= slot:
                run = candidate
        return (run.unix_ms + (slot - run.slot) * run.slot_ms) // 1000

    # Reads

    def account(self, key: Pubkey) -> Account | None:
        account = self.svm.get_account(key)
        # LiteSVM keeps closed accounts as zero-lamport husks; a cluster has none.
        return account if account is not None and account.lamports else None

    def balance(self, key: Pubkey) -> int:
        account = self.account(key)
        return 0 if account is None else account.lamports

    def decimals_of(self, mint: Pubkey) -> int | None:
        mint_state = parse_mint(self.account(mint))
        return None if mint_state is None else mint_state.decimals

    def status(self, signature: Signature) -> SignatureStatus | None:
        return self.ledger.status(bytes(signature))

    # Transactions

    def send(self, raw: bytes, tx: VersionedTransaction, *, skip_preflight: bool) -> Signature:
        """Process a transaction as a leader would; raise RpcError for a preflight failure.

        With skip_preflight a transaction a leader would drop (bad signature,
        expired blockhash, duplicate) is answered with its signature and never lands.
        """
        signature = tx.signatures[0]
        rejection = self._rejection(tx)
        if rejection is not None:
            if skip_preflight:
                return signature
            raise rejection
        if self.observer is not None:
            self.observer.received(bytes(signature), self.clock.slot)
        outcome = _guarded(self.svm.simulate_transaction, tx)
        if isinstance(outcome, SimulatedTransactionInfo):
            payer = tx.message.account_keys[0]
            writes = bill_priority_fee(tx.message, payer, list(outcome.post_accounts()))
            if writes is None:
                if skip_preflight:
                    return signature
                raise preflight_failure(TransactionErrorFieldless.InsufficientFundsForFee)
            violation = rent_violation(self.svm, tx, outcome)
            if violation is None:
                self._land(raw, tx, outcome, writes)
            elif skip_preflight:
                self._land_fee_only(raw, tx, outcome, violation)
            else:
                meta = outcome.meta()
                raise preflight_failure(violation, meta.logs(), meta.compute_units_consumed())
        elif skip_preflight:
            self._land_failed(raw, tx)
        else:
            meta = outcome.meta()
            raise preflight_failure(outcome.err(), meta.logs(), meta.compute_units_consumed())
        return signature

    def _rejection(self, tx: VersionedTransaction) -> RpcError | None:
        """Why a leader would refuse this transaction before executing it, if it would."""
        if not all(tx.verify_with_results()):
            return signature_verification_failure()
        if not self.clock.is_valid(tx.message.recent_blockhash):
            return preflight_failure(TransactionErrorFieldless.BlockhashNotFound)
        if self._processed(bytes(tx.signatures[0])):
            return preflight_failure(TransactionErrorFieldless.AlreadyProcessed)
        return None

    def _processed(self, signature: bytes) -> bool:
        return signature in self._uncommitted or self.ledger.status(signature) is not None

    def simulate(
        self, tx: VersionedTransaction
    ) -> SimulatedTransactionInfo | FailedTransactionMetadata:
        return _guarded(self.svm.simulate_transaction, tx)

    def _land(
        self,
        raw: bytes,
        tx: VersionedTransaction,
        outcome: SimulatedTransactionInfo,
        writes: AccountWrites,
    ) -> None:
        written = dict(writes)
        keys = resolve_keys(self.svm, tx.message)
        pre = [self.svm.get_account(key) for key in keys.keys]
        post = [written.get(key, before) for key, before in zip(keys.keys, pre, strict=True)]
        self._commit(tx, raw, keys, pre, post, outcome.meta(), None, writes)
        for key, account in writes:
            self.svm.set_account(key, account)

    def _land_fee_only(
        self,
        raw: bytes,
        tx: VersionedTransaction,
        outcome: SimulatedTransactionInfo,
        err: TransactionErrorType,
    ) -> None:
        """A transaction that executed but broke a post-execution rule: only the fee stays."""
        keys = resolve_keys(self.svm, tx.message)
        pre = [self.svm.get_account(key) for key in keys.keys]
        payer = pre[0]
        assert payer is not None  # simulation succeeded, so the fee payer exists
        fee = fee_for(tx.message)
        charged = Account(
            payer.lamports - fee, payer.data, payer.owner, payer.executable, payer.rent_epoch
        )
        post = [charged, *pre[1:]]
        self._commit(tx, raw, keys, pre, post, outcome.meta(), err, [(keys.keys[0], charged)])
        self.svm.set_account(keys.keys[0], charged)

    def _land_failed(self, raw: bytes, tx: VersionedTransaction) -> None:
        """A failed transaction sent without preflight: it lands if the fee is charged."""
        keys = resolve_keys(self.svm, tx.message)
        pre = [self.svm.get_account(key) for key in keys.keys]
        result = _guarded(self.svm.send_transaction, tx)
        post = [self.svm.get_account(key) for key in keys.keys]
        if post[0] is not None and post[0] != pre[0]:  # the signature fee was taken
            billed = bill_priority_fee(tx.message, keys.keys[0], [(keys.keys[0], post[0])])
            if billed is not None:
                post[0] = billed[0][1]
                self.svm.set_account(keys.keys[0], post[0])
        writes = [
            (key, after)
            for key, before, after in zip(keys.keys, pre, post, strict=True)
            if after is not None and after != before
        ]
        if not writes:  # no fee charged: a leader drops such a transaction
            return
        failed = isinstance(result, FailedTransactionMetadata)
        err = result.err() if failed else None
        metadata = result.meta() if failed else result
        self._commit(tx, raw, keys, pre, post, metadata, err, writes)

    def _commit(
        self,
        tx: VersionedTransaction,
        raw: bytes,
        keys: ResolvedKeys,
        pre: Sequence[Account | None],
        post: Sequence[Account | None],
        metadata: TransactionMetadata,
        err: TransactionErrorType | None,
        writes: AccountWrites,
    ) -> None:
        record = TransactionRecord(
            signature=bytes(tx.signatures[0]),
            slot=self.clock.slot,
            block_time=self.block_time(self.clock.slot),
            failed=err is not None,
            meta_json=status_meta_json(tx, keys, pre, post, metadata, err),
            raw=raw,
            pre_tokens=balance_snapshot(pre),
            post_tokens=balance_snapshot(post),
            addresses=tuple(bytes(key) for key in keys.keys),
        )
        # Applied in memory at once, committed by the writer thread; the server
        # answers only after the commit (rpc.Dispatcher awaits ledger.barrier()).
        self._uncommitted[record.signature] = self.ledger.commit_transaction(record, writes)
        if self.observer is not None:
            self.observer.landed(record, keys.keys, writes)

    def airdrop(self, to: Pubkey, lamports: int) -> Signature:
        """A transfer from the faucet, landed like any transaction (so it has a status).

        The same request twice in one slot would sign the same bytes, so a repeat
        carries a compute-unit limit that differs (it changes nothing else).
        """
        instruction = transfer(
            TransferParams(from_pubkey=self.faucet.pubkey(), to_pubkey=to, lamports=lamports)
        )
        blockhash = self.clock.blockhash(self.clock.slot)
        for repeat in range(_MAX_IDENTICAL_AIRDROPS):
            extra = [set_compute_unit_limit(_AIRDROP_UNITS + repeat)] if repeat else []
            message = Message.new_with_blockhash(
                [*extra, instruction], self.faucet.pubkey(), blockhash
            )
            tx = VersionedTransaction(message, [self.faucet])
            if not self._processed(bytes(tx.signatures[0])):
                return self.send(bytes(tx), tx, skip_preflight=False)
        raise RpcError(INTERNAL_ERROR, "airdrop request failed: too many identical requests")
