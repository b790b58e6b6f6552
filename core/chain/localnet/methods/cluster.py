"""Cluster-wide methods: health, version, time (slot, height, blockhash), fees, rent."""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

from solders.epoch_info import EpochInfo
from solders.hash import Hash
from solders.message import from_bytes_versioned
from solders.rpc.responses import (
    GetBlockHeightResp,
    GetEpochInfoResp,
    GetFeeForMessageResp,
    GetGenesisHashResp,
    GetHealthResp,
    GetLatestBlockhashResp,
    GetMinimumBalanceForRentExemptionResp,
    GetSlotResp,
    GetVersionResp,
    IsBlockhashValidResp,
    RpcBlockhash,
    RpcResponseContext,
    RpcVersionInfo,
)

from core.chain.localnet import params
from core.chain.localnet.clock import MAX_PROCESSING_AGE, SLOTS_PER_EPOCH
from core.chain.localnet.errors import invalid_params
from core.chain.localnet.execution import fee_for
from core.chain.localnet.node import Node
from core.chain.localnet.rpc import result_of

# LiteSVM 0.26 executes with the agave 2.2 runtime; report that line of releases.
SOLANA_CORE_VERSION = "2.2.0"
FEATURE_SET = zlib.crc32(b"litesvm-0.26")
# getRecentPrioritizationFees answers for at most this many recent slots, as agave does.
_PRIORITIZATION_FEE_SLOTS = 150


def context(slot: int) -> RpcResponseContext:
    return RpcResponseContext(slot, SOLANA_CORE_VERSION)


def _view_slot(node: Node, raw_params: Any, index: int = 0, allowed: int = 1) -> int:
    args = params.positional(raw_params, 0, allowed)
    return node.clock.view_slot(params.commitment(params.config(args[index])))


def get_health(node: Node, raw_params: Any) -> str:
    params.positional(raw_params, 0)
    return result_of(GetHealthResp("ok"))


def get_version(node: Node, raw_params: Any) -> str:
    params.positional(raw_params, 0)
    return result_of(GetVersionResp(RpcVersionInfo(SOLANA_CORE_VERSION, FEATURE_SET)))


def get_slot(node: Node, raw_params: Any) -> str:
    return result_of(GetSlotResp(_view_slot(node, raw_params)))


def get_block_height(node: Node, raw_params: Any) -> str:
    # Block height equals slot: this node never skips a slot.
    return result_of(GetBlockHeightResp(_view_slot(node, raw_params)))


def get_latest_blockhash(node: Node, raw_params: Any) -> str:
    slot = _view_slot(node, raw_params)
    value = RpcBlockhash(node.clock.blockhash(slot), slot + MAX_PROCESSING_AGE)
    return result_of(GetLatestBlockhashResp(value, context(slot)))


def is_blockhash_valid(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    blockhash = params.blockhash(args[0])
    slot = node.clock.view_slot(params.commitment(params.config(args[1])))
    return result_of(IsBlockhashValidResp(node.clock.is_valid(blockhash, slot), context(slot)))


def get_epoch_info(node: Node, raw_params: Any) -> str:
    slot = _view_slot(node, raw_params)
    info = EpochInfo(
        epoch=slot // SLOTS_PER_EPOCH,
        slot_index=slot % SLOTS_PER_EPOCH,
        slots_in_epoch=SLOTS_PER_EPOCH,
        absolute_slot=slot,
        block_height=slot,
        transaction_count=node.ledger.transaction_count,
    )
    return result_of(GetEpochInfoResp(info))


def get_genesis_hash(node: Node, raw_params: Any) -> str:
    params.positional(raw_params, 0)
    return result_of(GetGenesisHashResp(Hash(node.genesis_hash)))


def get_fee_for_message(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    slot = node.clock.view_slot(params.commitment(params.config(args[1])))
    if not isinstance(args[0], str):
        raise invalid_params("Invalid params: expected a base-64 encoded message")
    try:
        message = from_bytes_versioned(base64.b64decode(args[0], validate=True))
    except (binascii.Error, ValueError) as exc:
        raise invalid_params(f"invalid base64 encoding: {exc}") from None
    # A node knows no fee for a message whose blockhash has expired: null.
    fee = fee_for(message) if node.clock.is_valid(message.recent_blockhash) else None
    return result_of(GetFeeForMessageResp(fee, context(slot)))


def get_recent_prioritization_fees(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    if args[0] is not None:
        if not isinstance(args[0], list):
            raise invalid_params("Invalid params: expected an array of account addresses")
        for address in args[0]:
            params.pubkey(address)
    # Nobody bids for block space here, so every recent slot's minimum fee is zero.
    newest = node.clock.slot
    slots = range(max(0, newest - _PRIORITIZATION_FEE_SLOTS + 1), newest + 1)
    return "[" + ",".join(f'{{"slot":{s},"prioritizationFee":0}}' for s in slots) + "]"


def get_minimum_balance_for_rent_exemption(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    size = params.unsigned(args[0], "data length")
    params.commitment(params.config(args[1]))
    lamports = node.svm.minimum_balance_for_rent_exemption(size)
    return result_of(GetMinimumBalanceForRentExemptionResp(lamports))


METHODS = {
    "getHealth": get_health,
    "getVersion": get_version,
    "getSlot": get_slot,
    "getBlockHeight": get_block_height,
    "getLatestBlockhash": get_latest_blockhash,
    "isBlockhashValid": is_blockhash_valid,
    "getEpochInfo": get_epoch_info,
    "getGenesisHash": get_genesis_hash,
    "getFeeForMessage": get_fee_for_message,
    "getRecentPrioritizationFees": get_recent_prioritization_fees,
    "getMinimumBalanceForRentExemption": get_minimum_balance_for_rent_exemption,
}
