"""The JSON-RPC methods the node answers, by name."""

from __future__ import annotations

from core.chain.localnet.methods import accounts, cluster, transactions
from core.chain.localnet.rpc import Handler

METHODS: dict[str, Handler] = {**cluster.METHODS, **accounts.METHODS, **transactions.METHODS}
