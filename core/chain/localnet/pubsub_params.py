"""The subscribe methods' params, read as agave's rpc_pubsub reads them, with its errors.

Defaults follow agave: commitment finalized; account and program data in the
legacy base-58 `binary` encoding; blocks in base64 with full transaction
details and no rewards, at confirmed commitment or above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from solders.pubkey import Pubkey
from solders.signature import Signature

from core.chain.localnet import params
from core.chain.localnet.errors import invalid_params
from core.chain.localnet.methods.accounts import account_encoding, data_slice
from core.chain.localnet.methods.history import block_options
from core.chain.localnet.methods.programs import Filter, parse_filters

# subscribe method -> (kind, notification method)
SUBSCRIBE = {
    "accountSubscribe": ("account", "accountNotification"),
    "programSubscribe": ("program", "programNotification"),
    "signatureSubscribe": ("signature", "signatureNotification"),
    "logsSubscribe": ("logs", "logsNotification"),
    "slotSubscribe": ("slot", "slotNotification"),
    "rootSubscribe": ("root", "rootNotification"),
    "blockSubscribe": ("block", "blockNotification"),
}
UNSUBSCRIBE = {
    "accountUnsubscribe",
    "programUnsubscribe",
    "signatureUnsubscribe",
    "logsUnsubscribe",
    "slotUnsubscribe",
    "rootUnsubscribe",
    "blockUnsubscribe",
}


@dataclass
class Wanted:
    """What one subscription asks for."""

    kind: str
    commitment: str | None = None
    key: Pubkey | None = None  # account, program, logs mentions, block mentions
    signature: bytes | None = None
    received: bool = False  # signatureSubscribe's enableReceivedNotification
    encoding: str = "binary"
    data_slice: tuple[int, int] | None = None
    filters: list[Filter] = field(default_factory=list)
    block: dict[str, Any] = field(default_factory=dict)  # encoding, details, max_version
    show_rewards: bool = False


def _key(value: Any, thing: str) -> Pubkey:
    if isinstance(value, str):
        try:
            return Pubkey.from_string(value)
        except ValueError:
            pass
    raise invalid_params(f"Invalid Request: Invalid {thing} provided")


def read(method: str, raw: Any) -> Wanted:
    """Parse a subscribe call's params; RpcError (-32602) as agave answers bad ones."""
    kind = SUBSCRIBE[method][0]
    if kind in ("slot", "root"):
        params.positional(raw, 0)
        return Wanted(kind)
    if kind == "account":
        args = params.positional(raw, 1, 2)
        key = _key(args[0], "pubkey")
        cfg = params.config(args[1])
        return Wanted(
            kind,
            params.commitment(cfg),
            key,
            encoding=account_encoding(cfg),
            data_slice=data_slice(cfg),
        )
    if kind == "program":
        args = params.positional(raw, 1, 2)
        key = _key(args[0], "pubkey")
        cfg = params.config(args[1])
        filters = parse_filters(cfg.get("filters"))
        return Wanted(
            kind,
            params.commitment(cfg),
            key,
            encoding=account_encoding(cfg),
            data_slice=data_slice(cfg),
            filters=filters,
        )
    if kind == "signature":
        args = params.positional(raw, 1, 2)
        if not isinstance(args[0], str):
            raise invalid_params("Invalid Request: Invalid signature provided")
        try:
            signature = bytes(Signature.from_string(args[0]))
        except ValueError:
            raise invalid_params("Invalid Request: Invalid signature provided") from None
        cfg = params.config(args[1])
        received = bool(cfg.get("enableReceivedNotification"))
        return Wanted(kind, params.commitment(cfg), signature=signature, received=received)
    if kind == "logs":
        args = params.positional(raw, 1, 2)
        wanted = Wanted(kind, params.commitment(params.config(args[1])))
        selector = args[0]
        if selector in ("all", "allWithVotes"):
            return wanted  # no votes exist here: both mean every transaction
        if isinstance(selector, dict) and set(selector) == {"mentions"}:
            mentions = selector["mentions"]
            if not isinstance(mentions, list) or len(mentions) != 1:
                raise invalid_params("Invalid Request: Only 1 address supported")
            wanted.key = _key(mentions[0], "mentions")
            return wanted
        raise invalid_params(
            "Invalid params: unknown variant, expected `all`, `allWithVotes` or `mentions`"
        )
    args = params.positional(raw, 1, 2)  # blockSubscribe
    cfg = params.config(args[1])
    commitment = params.commitment(cfg)
    if commitment == "processed":
        raise invalid_params("Method does not support commitment below `confirmed`")
    wanted = Wanted(kind, commitment, block=block_options(cfg, "base64"))
    wanted.show_rewards = bool(cfg.get("showRewards"))
    selector = args[0]
    if isinstance(selector, dict) and set(selector) == {"mentionsAccountOrProgram"}:
        wanted.key = _key(selector["mentionsAccountOrProgram"], "mentions_account_or_program")
    elif selector != "all":
        raise invalid_params(
            "Invalid params: unknown variant, expected `all` or `mentionsAccountOrProgram`"
        )
    return wanted
