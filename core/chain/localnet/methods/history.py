"""History: signatures by address, blocks, block times and transaction counts.

Every slot of this node is a block (it never skips one), possibly empty; blocks
are kept from slot 0, so the first available block and the minimum ledger slot
are 0. Like getTransaction, these refuse `processed` as agave does.
"""

from __future__ import annotations

import json
from typing import Any

from solders.hash import Hash
from solders.transaction import VersionedTransaction

from core.chain.localnet import params
from core.chain.localnet.clock import FINALIZATION_DEPTH
from core.chain.localnet.encoding import encode_with_meta, transaction_encoding
from core.chain.localnet.errors import block_not_available, invalid_params
from core.chain.localnet.instruction_parsers import MEMO_PROGRAMS
from core.chain.localnet.node import Node
from core.chain.localnet.records import TransactionRecord

MAX_SIGNATURES_LIMIT = 1000
MAX_BLOCKS_RANGE = 500_000
MAX_PERFORMANCE_SAMPLES = 720
_SAMPLE_SECS = 60
_DETAILS = ("full", "accounts", "signatures", "none")


def _at_least_confirmed(cfg: dict[str, Any]) -> str:
    commitment = params.commitment(cfg)
    if commitment == "processed":
        raise invalid_params("Method does not support commitment below `confirmed`")
    return commitment


def _optional_signature_position(node: Node, value: Any) -> tuple[int, int] | bool | None:
    """Ledger position of `before`/`until`; False when given but never processed here."""
    if value is None:
        return None
    position = node.ledger.index.position(bytes(params.signature(value)))
    return False if position is None else position


def memo_of(tx: VersionedTransaction) -> str | None:
    """agave's extract_and_fmt_memos: "[len] text" per memo instruction, joined by "; "."""
    keys = tx.message.account_keys
    memos = []
    for ix in tx.message.instructions:
        if keys[ix.program_id_index] in MEMO_PROGRAMS:
            data = bytes(ix.data)
            memos.append(f"[{len(data)}] {data.decode(errors='replace')}")
    return "; ".join(memos) if memos else None


def get_signatures_for_address(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    address = params.pubkey(args[0])
    cfg = params.config(args[1])
    commitment = _at_least_confirmed(cfg)
    limit = cfg.get("limit", MAX_SIGNATURES_LIMIT)
    if limit is None:
        limit = MAX_SIGNATURES_LIMIT
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 0 < limit <= MAX_SIGNATURES_LIMIT
    ):
        raise invalid_params(f"Invalid limit; max {MAX_SIGNATURES_LIMIT}")
    before = _optional_signature_position(node, cfg.get("before"))
    until = _optional_signature_position(node, cfg.get("until"))
    if before is False:
        return "[]"  # agave: a `before` it does not know ends the search
    found = node.ledger.index.signatures_for(
        address,
        before=None if before is None else before[0],
        until=None if until in (None, False) else until[0],
        max_slot=node.clock.view_slot(commitment),
        limit=limit,
    )
    entries = []
    for item in found:
        record = item.record
        meta = json.loads(record.meta_json)
        _, level = node.clock.confirmation(record.slot)
        entries.append(
            {
                "signature": str(VersionedTransaction.from_bytes(record.raw).signatures[0]),
                "slot": record.slot,
                "err": meta.get("err"),
                "memo": memo_of(VersionedTransaction.from_bytes(record.raw)),
                "blockTime": record.block_time,
                "confirmationStatus": level,
            }
        )
    return json.dumps(entries, separators=(",", ":"))


def _slot(value: Any, name: str = "slot") -> int:
    return params.unsigned(value, name)


def _block_config(value: Any) -> dict[str, Any]:
    # Older clients pass the encoding itself as the second parameter.
    return {"encoding": value} if isinstance(value, str) else params.config(value)


def block_json(
    node: Node,
    slot: int,
    records: list[TransactionRecord],
    *,
    encoding: str,
    details: str,
    show_rewards: bool,
    max_version: int | None,
) -> dict[str, Any]:
    """A UiConfirmedBlock for `slot` holding `records`."""
    previous = Hash.default() if slot == 0 else node.clock.blockhash(slot - 1)
    block: dict[str, Any] = {
        "blockHeight": slot,
        "blockTime": node.block_time(slot),
        "blockhash": str(node.clock.blockhash(slot)),
        "parentSlot": max(0, slot - 1),
        "previousBlockhash": str(previous),
    }
    if details in ("full", "accounts"):
        block["transactions"] = [
            encode_with_meta(
                record,
                encoding,
                max_version,
                node.decimals_of,
                details=details,
                show_rewards=show_rewards,
            )
            for record in records
        ]
    elif details == "signatures":
        block["signatures"] = [
            str(VersionedTransaction.from_bytes(record.raw).signatures[0]) for record in records
        ]
    if show_rewards:
        block["rewards"] = []
    return block


def block_options(cfg: dict[str, Any], default_encoding: str) -> dict[str, Any]:
    details = cfg.get("transactionDetails") or "full"
    if details not in _DETAILS:
        raise invalid_params(
            f"Invalid params: unknown variant `{details}`, expected one of "
            "`full`, `signatures`, `none`, `accounts`"
        )
    max_version = cfg.get("maxSupportedTransactionVersion")
    if max_version is not None:
        params.unsigned(max_version, "maxSupportedTransactionVersion")
    return {
        "encoding": transaction_encoding(cfg, default_encoding),
        "details": details,
        "max_version": max_version,
    }


def get_block(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    slot = _slot(args[0])
    cfg = _block_config(args[1])
    commitment = _at_least_confirmed(cfg)
    options = block_options(cfg, "json")
    show_rewards = cfg.get("rewards", True) is not False
    if slot > node.clock.view_slot(commitment):
        raise block_not_available(slot)
    block = block_json(
        node, slot, node.ledger.index.in_slot(slot), show_rewards=show_rewards, **options
    )
    return json.dumps(block, separators=(",", ":"))


def get_block_time(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1)
    slot = _slot(args[0])
    if slot > node.clock.slot:
        raise block_not_available(slot)
    return str(node.block_time(slot))


def _blocks_until(node: Node, cfg: dict[str, Any]) -> int:
    return node.clock.view_slot(_at_least_confirmed(cfg))


def get_blocks(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 3)
    start = _slot(args[0], "start_slot")
    # The end slot may be left out and the config given in its place.
    end_arg, cfg_arg = (None, args[1]) if isinstance(args[1], dict) else (args[1], args[2])
    cfg = params.config(cfg_arg)
    newest = _blocks_until(node, cfg)
    end = start + MAX_BLOCKS_RANGE if end_arg is None else _slot(end_arg, "end_slot")
    end = min(end, newest)
    if end < start:
        return "[]"
    if end - start > MAX_BLOCKS_RANGE:
        raise invalid_params(f"Slot range too large; max {MAX_BLOCKS_RANGE}")
    return json.dumps(list(range(start, end + 1)), separators=(",", ":"))


def get_blocks_with_limit(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 2, 3)
    start = _slot(args[0], "start_slot")
    limit = params.unsigned(args[1], "limit")
    if limit > MAX_BLOCKS_RANGE:
        raise invalid_params(f"Limit too large; max {MAX_BLOCKS_RANGE}")
    newest = _blocks_until(node, params.config(args[2]))
    return json.dumps(list(range(start, min(start + limit, newest + 1))), separators=(",", ":"))


def get_transaction_count(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    params.commitment(params.config(args[0]))
    return str(node.ledger.transaction_count)


def get_first_available_block(node: Node, raw_params: Any) -> str:
    params.positional(raw_params, 0)
    return "0"


def minimum_ledger_slot(node: Node, raw_params: Any) -> str:
    params.positional(raw_params, 0)
    return "0"


def get_recent_performance_samples(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    limit = MAX_PERFORMANCE_SAMPLES if args[0] is None else params.unsigned(args[0], "limit")
    if limit > MAX_PERFORMANCE_SAMPLES:
        raise invalid_params(f"Invalid limit; max {MAX_PERFORMANCE_SAMPLES}")
    # One sample per whole minute of slots, newest first, as a validator samples them.
    slots_per_sample = max(1, _SAMPLE_SECS * 1000 // node.clock.slot_ms)
    samples = []
    last = node.clock.slot
    while len(samples) < limit and last - slots_per_sample + 1 >= 0:
        first = last - slots_per_sample + 1
        count = node.ledger.index.count_between(first, last)
        samples.append(
            {
                "slot": last,
                "numTransactions": count,
                "numNonVoteTransactions": count,
                "numSlots": slots_per_sample,
                "samplePeriodSecs": _SAMPLE_SECS,
            }
        )
        last = first - 1
    return json.dumps(samples, separators=(",", ":"))


def get_block_commitment(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1)
    slot = _slot(args[0])
    depth = node.clock.slot - slot
    # One validator holds all the stake; its vote lockouts reach 32 deep.
    commitment: list[int] | None = None
    if 0 <= depth < FINALIZATION_DEPTH:
        commitment = [0] * (FINALIZATION_DEPTH + 1)
        commitment[min(depth, FINALIZATION_DEPTH)] = 1
    return json.dumps({"commitment": commitment, "totalStake": 1}, separators=(",", ":"))


METHODS = {
    "getSignaturesForAddress": get_signatures_for_address,
    "getBlock": get_block,
    "getBlockTime": get_block_time,
    "getBlocks": get_blocks,
    "getBlocksWithLimit": get_blocks_with_limit,
    "getTransactionCount": get_transaction_count,
    "getFirstAvailableBlock": get_first_available_block,
    "minimumLedgerSlot": minimum_ledger_slot,
    "getRecentPerformanceSamples": get_recent_performance_samples,
    "getBlockCommitment": get_block_commitment,
}
