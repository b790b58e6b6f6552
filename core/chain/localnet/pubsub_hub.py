"""Subscriptions and their notifications, at the commitment each one asked for.

The node reports every landing and every new slot (node.ChainObserver). A
`processed` subscriber hears of a transaction as soon as its ledger commit is
done; `confirmed` ones when the next slot begins, `finalized` ones 32 slots
later, with the state the account had at the end of that slot (the last
`FINALIZATION_DEPTH` slots of landings are kept in memory for this). As agave
does, a signature subscription ends with its notification and only hears of
transactions processed after it was made.

No notification leaves before the ledger commit of everything it describes:
notifications wait in one ordered outbox behind the writer's barrier, just as
HTTP answers do, so no subscriber learns of state a crash could take back.
Rendering is done once per subscription, on the node's thread; delivery only
appends to each connection's bounded queue, so a slow client costs the node
nothing but its own queue (and is dropped when that is full).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID

from core.chain.localnet.clock import FINALIZATION_DEPTH
from core.chain.localnet.errors import INTERNAL_ERROR, RpcError
from core.chain.localnet.execution import AccountWrites
from core.chain.localnet.methods.accounts import render_account
from core.chain.localnet.methods.history import block_json
from core.chain.localnet.node import Node
from core.chain.localnet.pubsub_params import SUBSCRIBE, Wanted, read
from core.chain.localnet.records import TransactionRecord

MAX_SUBSCRIPTIONS = 1_000_000  # agave's MAX_ACTIVE_SUBSCRIPTIONS
_CLOSED = Account(0, b"", SYSTEM_PROGRAM_ID)  # how agave shows an account that is gone


class Subscriber(Protocol):
    """A connection: it takes rendered notifications in order, or drops itself when full."""

    def push(self, text: str) -> None: ...


@dataclass(eq=False)
class Subscription:
    id: int
    method: str
    wanted: Wanted
    subscriber: Subscriber


@dataclass(frozen=True, slots=True)
class Landed:
    record: TransactionRecord
    keys: list[Pubkey]
    writes: AccountWrites


def _notification(method: str, sub_id: int, result: str) -> str:
    params = f'{{"result":{result},"subscription":{sub_id}}}'
    return f'{{"jsonrpc":"2.0","method":"{method}","params":{params}}}'


def _in_context(slot: int, value: Any) -> str:
    return f'{{"context":{{"slot":{slot}}},"value":{json.dumps(value, separators=(",", ":"))}}}'


class Hub:
    def __init__(self, node: Node, loop: asyncio.AbstractEventLoop) -> None:
        self._node = node
        self._loop = loop
        self._ids = itertools.count()
        self._by_id: dict[int, Subscription] = {}
        # Subscriptions indexed by what they watch: kind -> key -> subscriptions.
        self._index: dict[str, dict[Any, list[Subscription]]] = defaultdict(dict)
        self._slots: dict[int, list[Landed]] = {}
        self._outbox: deque[tuple[Future[None] | None, list[tuple[Subscriber, str]]]] = deque()
        self._armed = False
        self._root = node.clock.view_slot("finalized")
        # Subscriptions per commitment: a commitment nobody asked for costs no matching.
        self._at: dict[str, int] = {"processed": 0, "confirmed": 0, "finalized": 0}

    # Subscribing

    def subscribe(self, subscriber: Subscriber, method: str, raw_params: Any) -> int:
        wanted = read(method, raw_params)
        if len(self._by_id) >= MAX_SUBSCRIPTIONS:
            raise RpcError(
                INTERNAL_ERROR,
                "Internal Error: Subscription refused. Node subscription limit reached",
            )
        sub = Subscription(next(self._ids), SUBSCRIBE[method][1], wanted, subscriber)
        self._by_id[sub.id] = sub
        self._index[wanted.kind].setdefault(self._index_key(wanted), []).append(sub)
        if wanted.commitment is not None:
            self._at[wanted.commitment] += 1
        return sub.id

    def unsubscribe(self, subscriber: Subscriber, sub_id: Any) -> bool:
        sub = self._by_id.get(sub_id) if isinstance(sub_id, int) else None
        if sub is None or sub.subscriber is not subscriber:
            raise RpcError(-32602, "Invalid subscription id.")
        self._remove(sub)
        return True

    def drop(self, subscriber: Subscriber) -> None:
        for sub in [s for s in self._by_id.values() if s.subscriber is subscriber]:
            self._remove(sub)

    def close(self) -> None:
        self._by_id.clear()
        self._index.clear()
        self._at = dict.fromkeys(self._at, 0)

    @property
    def count(self) -> int:
        return len(self._by_id)

    @staticmethod
    def _index_key(wanted: Wanted) -> Any:
        return wanted.signature if wanted.kind == "signature" else wanted.key

    def _remove(self, sub: Subscription) -> None:
        if self._by_id.pop(sub.id, None) is not None and sub.wanted.commitment is not None:
            self._at[sub.wanted.commitment] -= 1
        bucket = self._index[sub.wanted.kind]
        key = self._index_key(sub.wanted)
        subs = bucket.get(key, [])
        if sub in subs:
            subs.remove(sub)
        if not subs:
            bucket.pop(key, None)

    def _watching(self, kind: str, key: Any) -> list[Subscription]:
        bucket = self._index.get(kind)
        return bucket.get(key, []) if bucket else []

    # What the node reports

    def received(self, signature: bytes, slot: int) -> None:
        subs = [s for s in self._watching("signature", signature) if s.wanted.received]
        if subs:
            result = _in_context(slot, "receivedSignature")
            self._emit([(s.subscriber, _notification(s.method, s.id, result)) for s in subs])

    def landed(self, record: TransactionRecord, keys: list[Pubkey], writes: AccountWrites) -> None:
        landed = Landed(record, keys, writes)
        self._slots.setdefault(record.slot, []).append(landed)
        if self._by_id:
            self._emit(self._for_landings(record.slot, [landed], "processed"))

    def slots_advanced(self, before: int, now: int) -> None:
        out: list[tuple[Subscriber, str]] = []
        for slot in range(max(before + 1, now - FINALIZATION_DEPTH - 1), now + 1):
            root = max(0, slot - FINALIZATION_DEPTH)
            info = json.dumps({"parent": max(0, slot - 1), "root": root, "slot": slot})
            for sub in self._watching("slot", None):
                out.append((sub.subscriber, _notification(sub.method, sub.id, info)))
            confirmed = slot - 1
            if confirmed >= 0:
                out += self._for_landings(confirmed, self._slots.get(confirmed, []), "confirmed")
                out += self._blocks(confirmed, "confirmed")
            if root > self._root:
                out += self._for_landings(root, self._slots.get(root, []), "finalized")
                out += self._blocks(root, "finalized")
                for sub in self._watching("root", None):
                    out.append((sub.subscriber, _notification(sub.method, sub.id, str(root))))
                self._root = root
        for old in [s for s in self._slots if s < now - FINALIZATION_DEPTH - 1]:
            del self._slots[old]
        self._emit(out)

    # Matching and rendering

    def _for_landings(
        self, slot: int, landings: list[Landed], commitment: str
    ) -> list[tuple[Subscriber, str]]:
        out: list[tuple[Subscriber, str]] = []
        if not landings or not self._at[commitment]:
            return out
        last_state: dict[Pubkey, Account] = {}
        for landed in landings:
            record = landed.record
            for sub in list(self._watching("signature", record.signature)):
                if sub.wanted.commitment == commitment:
                    err = json.loads(record.meta_json).get("err") if record.failed else None
                    result = _in_context(slot, {"err": err})
                    out.append((sub.subscriber, _notification(sub.method, sub.id, result)))
                    self._remove(sub)  # a signature subscription ends with its notification
            out += self._logs(slot, landed, commitment)
            for key, account in landed.writes:
                last_state[key] = account
        for key, account in last_state.items():
            out += self._accounts(slot, key, account, commitment)
        return out

    def _logs(self, slot: int, landed: Landed, commitment: str) -> list[tuple[Subscriber, str]]:
        bucket = self._index.get("logs")
        if not bucket:
            return []
        subs = [s for s in bucket.get(None, ()) if s.wanted.commitment == commitment]
        if len(bucket) > (None in bucket):
            for key in landed.keys:
                subs += [s for s in bucket.get(key, ()) if s.wanted.commitment == commitment]
        if not subs:
            return []
        meta = json.loads(landed.record.meta_json)
        value = {
            "signature": str(Signature.from_bytes(landed.record.signature)),
            "err": meta.get("err"),
            "logs": meta.get("logMessages") or [],
        }
        result = _in_context(slot, value)
        return [(s.subscriber, _notification(s.method, s.id, result)) for s in subs]

    def _accounts(
        self, slot: int, key: Pubkey, account: Account, commitment: str
    ) -> list[tuple[Subscriber, str]]:
        out = []
        shown = account if account.lamports else _CLOSED
        for sub in self._watching("account", key):
            if sub.wanted.commitment == commitment:
                value = self._render(shown, sub.wanted)
                out.append(
                    (sub.subscriber, _notification(sub.method, sub.id, _in_context(slot, value)))
                )
        if account.lamports:
            for sub in self._watching("program", account.owner):
                wanted = sub.wanted
                if wanted.commitment == commitment and all(
                    f.allows(account) for f in wanted.filters
                ):
                    value = {"pubkey": str(key), "account": self._render(account, wanted)}
                    out.append(
                        (
                            sub.subscriber,
                            _notification(sub.method, sub.id, _in_context(slot, value)),
                        )
                    )
        return out

    def _render(self, account: Account, wanted: Wanted) -> dict[str, Any]:
        return render_account(self._node, account, wanted.encoding, wanted.data_slice, strict=False)

    def _blocks(self, slot: int, commitment: str) -> list[tuple[Subscriber, str]]:
        subs = [
            sub
            for bucket in self._index.get("block", {}).values()
            for sub in bucket
            if sub.wanted.commitment == commitment
        ]
        out = []
        landings = self._slots.get(slot, [])
        for sub in subs:
            wanted = sub.wanted
            records = [x.record for x in landings if wanted.key is None or wanted.key in x.keys]
            if wanted.key is not None and not records:
                continue
            try:
                block = block_json(
                    self._node, slot, records, show_rewards=wanted.show_rewards, **wanted.block
                )
                value = {"slot": slot, "block": block, "err": None}
            except RpcError:  # a version the subscriber cannot take
                value = {"slot": slot, "block": None, "err": {"UnsupportedTransactionVersion": 0}}
            out.append(
                (sub.subscriber, _notification(sub.method, sub.id, _in_context(slot, value)))
            )
        return out

    # The outbox: in order, each batch after the ledger commit it depends on

    def _emit(self, deliveries: list[tuple[Subscriber, str]]) -> None:
        if not deliveries:
            return
        barrier = self._node.ledger.barrier()
        if barrier is None and not self._outbox:
            self._deliver(deliveries)
            return
        self._outbox.append((barrier, deliveries))
        self._arm()

    def _arm(self) -> None:
        if self._armed or not self._outbox:
            return
        self._armed = True
        head = self._outbox[0][0]
        if head is None:
            self._loop.call_soon(self._flush)
        else:
            head.add_done_callback(lambda _: self._loop.call_soon_threadsafe(self._flush))

    def _flush(self) -> None:
        self._armed = False
        while self._outbox and (self._outbox[0][0] is None or self._outbox[0][0].done()):
            self._deliver(self._outbox.popleft()[1])
        self._arm()

    @staticmethod
    def _deliver(deliveries: Iterable[tuple[Subscriber, str]]) -> None:
        for subscriber, text in deliveries:
            subscriber.push(text)
