"""Several `python -m scheduler` processes on one database (issue 16, item 3).

Two schedulers starting at once on a fresh database must create one GRX mint
and one certificate mint between them. Their RPC goes through a proxy adding
latency to every chunk, so creating a mint takes seconds while the two
processes reach that point within about a second of each other: without the
lock of core.db.locks both would find nothing recorded and each create one.
The chain is then asked directly (getProgramAccounts on the node, not through
the proxy) which mints name our authority.
"""

from __future__ import annotations

import pytest
from solana.rpc.api import Client
from solana.rpc.types import MemcmpOpts
from solders.keypair import Keypair
from sqlalchemy import func, select

from core.bootstrap import bootstrap
from core.chain.instructions import MINT_SIZE, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from core.chain.keys import keypair_json
from core.db.models import CertificateMint, TokenMint
from core.secrets import write_private_file
from tests.scheduler.test_process import scheduler_env
from tests.support.localnet import wait_for
from tests.support.processes import Service
from tests.support.proxy import FaultyProxy

pytestmark = pytest.mark.chain
RPC_LATENCY_SECS = 0.25  # per chunk each way: a mint creation takes several seconds


def mints_with_authority(client: Client, program, authority) -> list[str]:
    """Mint accounts of `program` whose mint authority (bytes 4..36) is `authority`."""
    filters: list = [MemcmpOpts(offset=4, bytes=str(authority))]
    if program == TOKEN_PROGRAM_ID:
        filters.insert(0, MINT_SIZE)
    found = client.get_program_accounts(program, encoding="base64", filters=filters).value
    return sorted(str(account.pubkey) for account in found)


def test_two_schedulers_starting_at_once_create_one_mint(
    tmp_path, make_settings, database_url, localnet
) -> None:
    authority = Keypair()
    key_path = tmp_path / "keys" / "authority.json"
    write_private_file(key_path, keypair_json(authority) + "\n")
    proxy = FaultyProxy("127.0.0.1", localnet.port).start()
    proxy.delay = RPC_LATENCY_SECS
    # LOCALNET_PORT names the proxy, so the schedulers take it for the embedded node
    # (airdrops allowed); its pubsub is reached directly.
    common = {
        "AUTHORITY_KEYPAIR_PATH": str(key_path),
        "SOLANA_WS_URL": f"ws://127.0.0.1:{localnet.port + 1}",
        "TOKENIZATION_POLLING_INTERVAL_SECS": "3600",
    }
    services = [
        Service(
            "scheduler",
            scheduler_env(tmp_path / name, database_url, proxy.port, **common),
            tmp_path / f"{name}.log",
        )
        for name in ("first", "second")
    ]
    app = bootstrap(make_settings(DATABASE_URL=database_url))
    try:
        for service in services:
            service.start()
        for service in services:
            wait_for(
                lambda service=service: "scheduler started" in service.log() or not service.running,
                timeout=90,
                what="scheduler start",
            )
            assert service.running, service.log()
        logs = "\n".join(service.log() for service in services)
        assert logs.count("created GRX mint") == 1, logs
        with app.sessions() as session:
            grx = list(session.scalars(select(TokenMint.address)))
            certificates = session.scalar(select(func.count()).select_from(CertificateMint))
        assert len(grx) == 1, grx
        assert certificates == 1
        client = Client(localnet.url)
        assert mints_with_authority(client, TOKEN_PROGRAM_ID, authority.pubkey()) == grx
        assert len(mints_with_authority(client, TOKEN_2022_PROGRAM_ID, authority.pubkey())) == 1
        for service in services:
            assert service.terminate(timeout=30) == 0, service.log()
    finally:
        for service in services:
            if service.running:
                service.kill()
        proxy.stop()
        app.close()
