"""The cluster as one validator: identity, nodes, schedules, stake, inflation, snapshots.

This node is a one-validator cluster: its identity leads every slot, it holds
no stake or vote accounts, and it takes no snapshots. The answers keep a real
node's shapes and say exactly that (empty vote accounts, agave's "No snapshot").
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from core.chain.localnet import params
from core.chain.localnet.clock import SLOTS_PER_EPOCH
from core.chain.localnet.errors import NO_SNAPSHOT, RpcError, block_not_available, invalid_params
from core.chain.localnet.methods.accounts import with_context
from core.chain.localnet.methods.cluster import FEATURE_SET, SOLANA_CORE_VERSION
from core.chain.localnet.node import Node

MAX_SLOT_LEADERS = 5000
# agave's Inflation::default(), reported as a fresh cluster's.
_INITIAL, _TERMINAL, _TAPER, _FOUNDATION, _FOUNDATION_TERM = 0.08, 0.015, 0.15, 0.05, 7.0
_SLOTS_PER_YEAR = 365.25 * 24 * 60 * 60 / 0.4
# One lamport: the minimum before the 1-SOL stake minimum feature, as agave 2.2 clusters run.
STAKE_MINIMUM_DELEGATION = 1
SHRED_VERSION = 1


def _no_params(raw_params: Any) -> None:
    params.positional(raw_params, 0)


def get_identity(node: Node, raw_params: Any) -> str:
    _no_params(raw_params)
    return json.dumps({"identity": str(node.identity)})


def get_cluster_nodes(node: Node, raw_params: Any) -> str:
    _no_params(raw_params)
    info = {
        "pubkey": str(node.identity),
        "gossip": None,
        "tvu": None,
        "tpu": None,
        "tpuQuic": None,
        "tpuForwards": None,
        "tpuForwardsQuic": None,
        "tpuVote": None,
        "serveRepair": None,
        "rpc": node.rpc_address,
        "pubsub": node.pubsub_address,
        "version": SOLANA_CORE_VERSION,
        "featureSet": FEATURE_SET,
        "shredVersion": SHRED_VERSION,
    }
    return json.dumps([info], separators=(",", ":"))


def get_epoch_schedule(node: Node, raw_params: Any) -> str:
    _no_params(raw_params)
    return json.dumps(
        {
            "slotsPerEpoch": SLOTS_PER_EPOCH,
            "leaderScheduleSlotOffset": SLOTS_PER_EPOCH,
            "warmup": False,
            "firstNormalEpoch": 0,
            "firstNormalSlot": 0,
        }
    )


@lru_cache(maxsize=4)
def _every_slot_of_an_epoch(identity: str) -> str:
    return json.dumps({identity: list(range(SLOTS_PER_EPOCH))}, separators=(",", ":"))


def get_leader_schedule(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 2)
    # The slot may be left out and the config given in its place.
    slot_arg, cfg_arg = (None, args[0]) if isinstance(args[0], dict) else (args[0], args[1])
    cfg = params.config(cfg_arg)
    view = node.clock.view_slot(params.commitment(cfg))
    slot = view if slot_arg is None else params.unsigned(slot_arg, "slot")
    identity = cfg.get("identity")
    if identity is not None:
        params.pubkey(identity)
    # A leader schedule is known for the current epoch and the next one.
    if slot // SLOTS_PER_EPOCH > view // SLOTS_PER_EPOCH + 1:
        return "null"
    if identity is not None and identity != str(node.identity):
        return "{}"
    return _every_slot_of_an_epoch(str(node.identity))


def get_slot_leader(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    params.commitment(params.config(args[0]))
    return json.dumps(str(node.identity))


def get_slot_leaders(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 2)
    params.unsigned(args[0], "start_slot")
    limit = params.unsigned(args[1], "limit")
    if limit > MAX_SLOT_LEADERS:
        raise invalid_params(f"Invalid limit; max {MAX_SLOT_LEADERS}")
    return json.dumps([str(node.identity)] * limit)


def get_vote_accounts(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    cfg = params.config(args[0])
    params.commitment(cfg)
    if cfg.get("votePubkey") is not None:
        params.pubkey(cfg["votePubkey"])
    return '{"current":[],"delinquent":[]}'


def get_inflation_governor(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    params.commitment(params.config(args[0]))
    return json.dumps(
        {
            "initial": _INITIAL,
            "terminal": _TERMINAL,
            "taper": _TAPER,
            "foundation": _FOUNDATION,
            "foundationTerm": _FOUNDATION_TERM,
        }
    )


def get_inflation_rate(node: Node, raw_params: Any) -> str:
    _no_params(raw_params)
    epoch = node.clock.slot // SLOTS_PER_EPOCH
    year = epoch * SLOTS_PER_EPOCH / _SLOTS_PER_YEAR
    total = max(_INITIAL * (1 - _TAPER) ** year, _TERMINAL)
    foundation = total * _FOUNDATION if year < _FOUNDATION_TERM else 0.0
    return json.dumps(
        {"total": total, "validator": total - foundation, "foundation": foundation, "epoch": epoch}
    )


def get_inflation_reward(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    if not isinstance(args[0], list):
        raise invalid_params("Invalid params: expected an array of addresses")
    addresses = [params.pubkey(address) for address in args[0]]
    cfg = params.config(args[1])
    view = node.clock.view_slot(params.commitment(cfg))
    current_epoch = view // SLOTS_PER_EPOCH
    epoch = cfg.get("epoch")
    epoch = max(0, current_epoch - 1) if epoch is None else params.unsigned(epoch, "epoch")
    # Rewards of an epoch are paid in the first block of the next: agave answers -32004 before.
    first_slot_after = (epoch + 1) * SLOTS_PER_EPOCH
    if first_slot_after > view:
        raise block_not_available(first_slot_after)
    return json.dumps([None] * len(addresses))


def get_highest_snapshot_slot(node: Node, raw_params: Any) -> str:
    _no_params(raw_params)
    raise RpcError(NO_SNAPSHOT, "No snapshot")


def get_stake_minimum_delegation(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    slot = node.clock.view_slot(params.commitment(params.config(args[0])))
    return with_context(slot, STAKE_MINIMUM_DELEGATION)


def get_max_slot(node: Node, raw_params: Any) -> str:
    _no_params(raw_params)
    return str(node.clock.slot)


def get_block_production(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    cfg = params.config(args[0])
    slot = node.clock.view_slot(params.commitment(cfg))
    wanted = cfg.get("range") or {}
    first = params.unsigned(wanted.get("firstSlot", slot - slot % SLOTS_PER_EPOCH), "firstSlot")
    last = params.unsigned(wanted.get("lastSlot", slot), "lastSlot")
    if last < first:
        raise invalid_params(f"lastSlot, {last}, cannot be less than firstSlot, {first}")
    last = min(last, slot)
    produced = max(0, last - first + 1)
    by_identity = {} if produced == 0 else {str(node.identity): [produced, produced]}
    identity = cfg.get("identity")
    if identity is not None and identity != str(node.identity):
        by_identity = {}
    value = {"byIdentity": by_identity, "range": {"firstSlot": first, "lastSlot": last}}
    return with_context(slot, value)


METHODS = {
    "getIdentity": get_identity,
    "getClusterNodes": get_cluster_nodes,
    "getEpochSchedule": get_epoch_schedule,
    "getLeaderSchedule": get_leader_schedule,
    "getSlotLeader": get_slot_leader,
    "getSlotLeaders": get_slot_leaders,
    "getVoteAccounts": get_vote_accounts,
    "getInflationGovernor": get_inflation_governor,
    "getInflationRate": get_inflation_rate,
    "getInflationReward": get_inflation_reward,
    "getHighestSnapshotSlot": get_highest_snapshot_slot,
    "getStakeMinimumDelegation": get_stake_minimum_delegation,
    "getMaxRetransmitSlot": get_max_slot,
    "getMaxShredInsertSlot": get_max_slot,
    "getBlockProduction": get_block_production,
}
