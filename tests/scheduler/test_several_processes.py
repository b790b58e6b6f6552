"""Several `python -m scheduler` (and `python -m api`) processes on one database.

The slow test runs the deployment of OPERATIONS "Scaling out": two schedulers
and two api processes on one PostgreSQL, readings sent to both APIs while both
schedulers mint, one scheduler SIGKILLed mid-run. The survivor settles what
the dead one signed (its recovery reads every open batch) and, after
STALE_PLANNED, releases what it had only planned; every reading must be minted
once: no reading id in two tokens_minted events, and each wallet's balance on
chain equal to the kWh sent to it times 10^9 (ratio 1), summed in the test.

First, two schedulers starting at once on a fresh database must create one GRX mint
and one certificate mint between them. Their RPC goes through a proxy adding
latency to every chunk, so creating a mint takes seconds while the two
processes reach that point within about a second of each other: without the
lock of core.db.locks both would find nothing recorded and each create one.
The chain is then asked directly (getProgramAccounts on the node, not through
the proxy) which mints name our authority.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from solana.rpc.api import Client
from solana.rpc.types import MemcmpOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import func, select

from core.bootstrap import bootstrap
from core.chain.client import ChainClient
from core.chain.instructions import (
    MINT_SIZE,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
)
from core.chain.keys import keypair_json
from core.db.models import CertificateMint, Event, MeterReading, TokenMint, User
from core.db.types import utcnow
from core.secrets import write_private_file
from tests.factories import make_meter
from tests.scheduler.test_process import scheduler_env
from tests.support.localnet import wait_for
from tests.support.processes import Service, free_port
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


@pytest.mark.postgres
def test_two_schedulers_starting_at_once_create_one_mint(
    tmp_path, make_settings, pg_url, localnet
) -> None:
    # PostgreSQL, where several schedulers are supported; the SQLite flock is
    # covered by tests/core/test_db_locks.py.
    database_url = pg_url
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


METERS = 40
READINGS_PER_METER = 5


def _answers(url: str) -> bool | None:
    try:
        return httpx.get(url, timeout=2).status_code in (200, 503) or None
    except httpx.TransportError:
        return None


def _status_counts(app) -> dict[str, int]:
    with app.readers() as session:
        return dict(
            session.execute(
                select(MeterReading.status, func.count()).group_by(MeterReading.status)
            ).all()
        )


@pytest.mark.slow
@pytest.mark.postgres
def test_two_schedulers_and_two_apis_mint_each_reading_once_through_a_sigkill(
    tmp_path, make_settings, pg_url, localnet
) -> None:
    authority = Keypair()
    key_path = tmp_path / "keys" / "authority.json"
    write_private_file(key_path, keypair_json(authority) + "\n")
    app = bootstrap(make_settings(DATABASE_URL=pg_url))
    with app.sessions() as session:
        meters = [make_meter(session) for _ in range(METERS)]
        wallets = {
            keys.meter.id: session.get(User, keys.meter.owner_id).wallet_address for keys in meters
        }
    minting = {
        "AUTHORITY_KEYPAIR_PATH": str(key_path),
        "TOKENIZATION_MAX_MINT_WAIT_SECS": "1",
        "TOKENIZATION_BATCH_SIZE": "10",
    }
    schedulers = [
        Service(
            "scheduler",
            scheduler_env(tmp_path / name, pg_url, localnet.port, **minting),
            tmp_path / f"{name}.log",
        )
        for name in ("scheduler-a", "scheduler-b")
    ]
    ports = [free_port(), free_port()]
    apis = [
        Service(
            "api",
            {
                "DATA_DIR": str(tmp_path / f"api{index}"),
                "DATABASE_URL": pg_url,
                "API_PORT": str(port),
                "API_SECRET_KEY": "a-secret-shared-by-both-processes",
                "LOCALNET_PORT": str(localnet.port),
                "LOG_LEVEL": "WARNING",
            },
            tmp_path / f"api{index}.log",
        )
        for index, port in enumerate(ports)
    ]
    services = schedulers + apis
    # The oracle: each wallet's base units from the kWh sent, ratio 1, 9 decimals.
    expected: Counter[str] = Counter()
    now = utcnow().replace(microsecond=0)
    try:
        for service in services:
            service.start()
        for scheduler in schedulers:
            wait_for(
                lambda s=scheduler: "scheduler started" in s.log() or not s.running,
                timeout=90,
                what="scheduler start",
            )
            assert scheduler.running, scheduler.log()
        for port in ports:
            wait_for(lambda p=port: _answers(f"http://127.0.0.1:{p}/health"), timeout=60)
        killed = False
        with httpx.Client(timeout=10) as http:
            for round_ in range(READINGS_PER_METER):
                for index, keys in enumerate(meters):
                    kwh = Decimal(f"{1 + index % 4}.{round_ + 1:02d}{index:03d}")
                    at = now - timedelta(minutes=20 * (READINGS_PER_METER - round_))
                    response = http.post(
                        f"http://127.0.0.1:{ports[(index + round_) % 2]}/api/meters/submit-reading",
                        json=keys.payload(kwh=str(kwh), at=at),
                        headers=keys.headers,
                    )
                    assert response.status_code == 201, response.text
                    expected[wallets[keys.meter.id]] += int(kwh * 10**9)
                if round_ == 1:
                    # Mid-run: crash scheduler A while readings are on their way to the chain.
                    wait_for(
                        lambda: _status_counts(app).get("minting", 0) > 0,
                        timeout=30,
                        what="readings in flight",
                    )
                    schedulers[0].kill()
                    killed = True
        assert killed
        total = METERS * READINGS_PER_METER
        wait_for(
            lambda: _status_counts(app) == {"minted": total},
            timeout=90,
            what=f"every reading minted by the survivor; log:\n{schedulers[1].log()[-3000:]}",
        )
        with app.readers() as session:
            events = session.scalars(select(Event).where(Event.type == "tokens_minted")).all()
            mint = session.scalars(select(TokenMint)).one()
        ids = Counter(rid for event in events for rid in event.payload["reading_ids"])
        assert len(ids) == total and set(ids.values()) == {1}, "a reading was minted twice"
        mint_key = Pubkey.from_string(mint.address)
        with ChainClient(localnet.url) as chain:
            for wallet, units in expected.items():
                account = associated_token_address(
                    Pubkey.from_string(wallet), mint_key, TOKEN_PROGRAM_ID
                )
                assert chain.token_balance(account) == units, wallet
            assert chain.token_supply(mint_key) == sum(expected.values())
        assert schedulers[1].terminate(timeout=30) == 0, schedulers[1].log()[-3000:]
    finally:
        for service in services:
            if service.running:
                service.kill()
        app.close()
