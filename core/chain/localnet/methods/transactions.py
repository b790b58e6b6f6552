"""Transaction methods: send, simulate, statuses, history and airdrops."""

from __future__ import annotations

import json
from typing import Any

from solders.rpc.responses import (
    GetSignatureStatusesResp,
    RequestAirdropResp,
    RpcSimulateTransactionResult,
    SendTransactionResp,
)
from solders.transaction_status import (
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionStatus,
    UiTransactionStatusMeta,
)

from core.chain.localnet import params
from core.chain.localnet.clock import FINALIZATION_DEPTH, MAX_PROCESSING_AGE
from core.chain.localnet.encoding import encode_with_meta, transaction_encoding
from core.chain.localnet.errors import (
    invalid_params,
    signature_verification_failure,
)
from core.chain.localnet.methods.accounts import render_account
from core.chain.localnet.methods.cluster import context
from core.chain.localnet.node import Node
from core.chain.localnet.rpc import result_of

_MAX_SIGNATURE_STATUSES = 256
_CONFIRMATION = {
    "processed": TransactionConfirmationStatus.Processed,
    "confirmed": TransactionConfirmationStatus.Confirmed,
    "finalized": TransactionConfirmationStatus.Finalized,
}


def send_transaction(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    cfg = params.config(args[1])
    params.commitment(cfg, "preflightCommitment")
    wire, tx = params.transaction(args[0], cfg.get("encoding"))
    signature = node.send(wire, tx, skip_preflight=bool(cfg.get("skipPreflight")))
    return result_of(SendTransactionResp(signature))


def simulate_transaction(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    cfg = params.config(args[1])
    slot = node.clock.view_slot(params.commitment(cfg))
    _, tx = params.transaction(args[0], cfg.get("encoding"))
    replace = bool(cfg.get("replaceRecentBlockhash"))
    if replace and cfg.get("sigVerify"):
        raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
    if cfg.get("sigVerify") and not all(tx.verify_with_results()):
        raise signature_verification_failure()
    wanted = (cfg.get("accounts") or {}).get("addresses") or []
    account_encoding = (cfg.get("accounts") or {}).get("encoding") or "base64"
    keys = [params.pubkey(address) for address in wanted]

    if not replace and not node.clock.is_valid(tx.message.recent_blockhash):
        value = _simulation(TransactionErrorFieldless.BlockhashNotFound)
    elif not replace and node.status(tx.signatures[0]) is not None:
        value = _simulation(TransactionErrorFieldless.AlreadyProcessed)
    else:
        outcome = node.simulate(tx)
        meta = outcome.meta()
        err = getattr(outcome, "err", lambda: None)()
        value = _simulation(err, meta.logs(), meta.compute_units_consumed())
        if keys:
            written = dict(outcome.post_accounts()) if err is None else {}
            value["accounts"] = [
                None
                if (account := written.get(key) or node.account(key)) is None
                else render_account(node, account, account_encoding)
                for key in keys
            ]
    if replace:
        latest = node.clock.view_slot("processed")
        value["replacementBlockhash"] = {
            "blockhash": str(node.clock.blockhash(latest)),
            "lastValidBlockHeight": latest + MAX_PROCESSING_AGE,
        }
    return json.dumps(
        {"context": json.loads(context(slot).to_json()), "value": value}, separators=(",", ":")
    )


def _simulation(err: Any, logs: list[str] | None = None, units: int = 0) -> dict[str, Any]:
    result = RpcSimulateTransactionResult(err=err, logs=logs or [], units_consumed=units)
    value: dict[str, Any] = json.loads(result.to_json())
    return value


def get_signature_statuses(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    if not isinstance(args[0], list):
        raise invalid_params("Invalid params: expected an array of signatures")
    if len(args[0]) > _MAX_SIGNATURE_STATUSES:
        raise invalid_params(f"Too many inputs provided; max {_MAX_SIGNATURE_STATUSES}")
    signatures = [params.signature(item) for item in args[0]]
    search_history = bool(params.config(args[1]).get("searchTransactionHistory"))
    statuses: list[TransactionStatus | None] = []
    for signature in signatures:
        status = node.status(signature)
        # Without searchTransactionHistory a node answers from its recent status cache only.
        if status is None or not (search_history or node.clock.in_status_cache(status.slot)):
            statuses.append(None)
            continue
        confirmations, level = node.clock.confirmation(status.slot)
        err = None
        if status.failed:
            meta_json = node.ledger.meta_json(bytes(signature))
            err = None if meta_json is None else UiTransactionStatusMeta.from_json(meta_json).err
        statuses.append(
            TransactionStatus(status.slot, confirmations, err, err, _CONFIRMATION[level])
        )
    return result_of(GetSignatureStatusesResp(statuses, context(node.clock.slot)))


def get_transaction(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    signature = params.signature(args[0])
    # Older clients pass the encoding itself as the second parameter.
    cfg = {"encoding": args[1]} if isinstance(args[1], str) else params.config(args[1])
    commitment = params.commitment(cfg)
    if commitment == "processed":
        raise invalid_params("Method does not support commitment below `confirmed`")
    encoding = transaction_encoding(cfg)
    max_version = cfg.get("maxSupportedTransactionVersion")
    record = node.ledger.transaction(bytes(signature))
    if record is None:
        return "null"
    depth = node.clock.slot - record.slot
    if depth < (FINALIZATION_DEPTH if commitment == "finalized" else 1):
        return "null"  # not yet at the asked commitment
    encoded = encode_with_meta(record, encoding, max_version, node.decimals_of)
    result: dict[str, Any] = {"slot": record.slot, **encoded, "blockTime": record.block_time}
    return json.dumps(result, separators=(",", ":"))


def request_airdrop(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 2, 3)
    to = params.pubkey(args[0])
    lamports = params.unsigned(args[1], "lamports")
    params.commitment(params.config(args[2]))
    return result_of(RequestAirdropResp(node.airdrop(to, lamports)))


METHODS = {
    "sendTransaction": send_transaction,
    "simulateTransaction": simulate_transaction,
    "getSignatureStatuses": get_signature_statuses,
    "getTransaction": get_transaction,
    "requestAirdrop": request_airdrop,
}
