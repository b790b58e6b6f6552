"""Links to a transaction on Solana Explorer, for the public clusters only."""

from __future__ import annotations

from urllib.parse import urlparse

# Host name fragment -> Explorer's cluster parameter (mainnet needs none).
_EXPLORER_CLUSTERS = (("devnet", "devnet"), ("testnet", "testnet"), ("mainnet", ""))


def explorer_url(signature: str, rpc_url: str) -> str | None:
    """A Solana Explorer link when the cluster is a public one; None for local nodes."""
    host = urlparse(rpc_url).hostname or ""
    for name, cluster in _EXPLORER_CLUSTERS:
        if name in host:
            suffix = f"?cluster={cluster}" if cluster else ""
            return f"https://explorer.solana.com/tx/{signature}{suffix}"
    return None
