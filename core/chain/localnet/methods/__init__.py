"""The JSON-RPC methods the node answers, by name."""

from __future__ import annotations

from core.chain.localnet.methods import (
    accounts,
    cluster,
    history,
    programs,
    transactions,
    validators,
)
from core.chain.localnet.rpc import Handler

METHODS: dict[str, Handler] = {
    **cluster.METHODS,
    **accounts.METHODS,
    **transactions.METHODS,
    **history.METHODS,
    **programs.METHODS,
    **validators.METHODS,
}
