"""`python -m core.chain.localnet [--port N] [--data-dir DIR] [--slot-ms MS]`.

Settings come from core.config (DATA_DIR, LOCALNET_PORT, LOCALNET_SLOT_MS); the
flags override them so tests can run several nodes side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from core.config import ConfigError, load_settings

log = logging.getLogger("core.chain.localnet")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.chain.localnet",
        description="The embedded Solana JSON-RPC node (LiteSVM) with a durable ledger.",
    )
    parser.add_argument("--port", type=int, help="listen port (default LOCALNET_PORT)")
    parser.add_argument("--data-dir", type=Path, help="data directory (default DATA_DIR)")
    parser.add_argument("--slot-ms", type=int, help="slot time in ms (default LOCALNET_SLOT_MS)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"Invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.app.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    data_dir: Path = args.data_dir or settings.app.data_dir
    port: int = settings.app.localnet_port if args.port is None else args.port
    slot_ms: int = args.slot_ms or settings.app.localnet_slot_ms
    if slot_ms < 1 or not 0 <= port <= 65_535:
        print("--slot-ms must be >= 1 and --port within 0..65535", file=sys.stderr)
        return 2

    # Imported here so `--help` and configuration errors answer without loading LiteSVM.
    from core.chain.localnet.allocator import tune_allocator
    from core.chain.localnet.ledger import LedgerBusy
    from core.chain.localnet.methods import METHODS
    from core.chain.localnet.node import Node
    from core.chain.localnet.server import bind_pair, serve

    try:
        sock, pubsub_sock = bind_pair(port)
    except OSError as exc:
        log.error(
            "localnet cannot listen on 127.0.0.1:%d and %d (pubsub): %s",
            port,
            port + 1,
            exc.strerror or exc,
        )
        return 1
    tune_allocator()
    try:
        node = Node.open(data_dir, slot_ms)
    except LedgerBusy as exc:
        sock.close()
        pubsub_sock.close()
        log.error("localnet: %s", exc)
        return 1
    node.rpc_address = f"127.0.0.1:{sock.getsockname()[1]}"
    node.pubsub_address = f"127.0.0.1:{pubsub_sock.getsockname()[1]}"
    log.info(
        "localnet ledger %s: slot %d, %d transactions, slot time %d ms",
        node.ledger.path,
        node.clock.slot,
        node.ledger.transaction_count,
        slot_ms,
    )
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(node, sock, METHODS, pubsub_sock))
    finally:
        node.close()
        sock.close()
        pubsub_sock.close()
    log.info("localnet stopped at slot %d", node.clock.slot)
    return 0


def _loop_factory():  # type: ignore[no-untyped-def]
    try:
        import uvloop
    except ImportError:  # uvloop is an optional speed-up, not a requirement
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
