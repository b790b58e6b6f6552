"""Crashes and network faults during a large run: every reading minted exactly once.

The scheduler runs as a real process; it is killed with SIGKILL at random moments
(a seeded RNG picks them), or its connections to the node and to PostgreSQL go
through a TCP proxy that delays, cuts and refuses them. Afterwards the database
and the chain must agree to the base unit.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from core.bootstrap import App, bootstrap
from core.chain.client import ChainClient
from core.chain.instructions import associated_token_address, token_program_id
from core.db.models import Event, MeterReading, TokenMint
from core.settings_store import update_settings
from tests.scheduler.conftest import count_by_status, expected_by_wallet
from tests.scheduler.test_process import scheduler_env
from tests.support.localnet import wait_for
from tests.support.processes import Service
from tests.support.proxy import Fault, FaultyProxy, inject
from tests.support.seed import seed_producers, seed_readings

pytestmark = pytest.mark.slow
READINGS = 1000


def seed_run(app: App, batch_size: int = 40) -> None:
    with app.sessions() as session:
        update_settings(session, app.settings.tokenization, {"batch_size": batch_size}, by="t")
        seed_readings(session, seed_producers(session, 100), READINGS // 100)


def minted_count(app: App) -> int:
    with app.readers() as session:
        return session.scalar(select(func.count()).where(MeterReading.status == "minted"))


def in_flight(app: App) -> int:
    with app.readers() as session:
        return session.scalar(select(func.count()).where(MeterReading.status == "minting"))


def assert_exactly_once(app: App, rpc_url: str) -> None:
    assert count_by_status(app) == {"minted": READINGS}
    with app.readers() as session:
        events = session.scalars(select(Event).where(Event.type == "tokens_minted")).all()
        mint = session.scalars(select(TokenMint)).one()
    ids = Counter(rid for event in events for rid in event.payload["reading_ids"])
    assert len(ids) == READINGS and set(ids.values()) == {1}, "a reading was minted twice"
    expected = expected_by_wallet(app)
    program = token_program_id(mint.token_program)
    with ChainClient(rpc_url) as chain:
        from solders.pubkey import Pubkey

        mint_key = Pubkey.from_string(mint.address)
        for wallet, units in expected.items():
            account = associated_token_address(Pubkey.from_string(wallet), mint_key, program)
            assert chain.token_balance(account) == units, wallet
        assert chain.token_supply(mint_key) == mint.bootstrap_supply + sum(expected.values())


def test_sigkill_at_random_moments_never_double_mints(
    tmp_path, make_settings, database_url, localnet
) -> None:
    env = scheduler_env(tmp_path, database_url, localnet.port)
    app = bootstrap(make_settings(**env))
    seed_run(app, batch_size=10)
    rng = random.Random(20261127)
    log = tmp_path / "scheduler.log"
    kills_mid_flight = 0
    for _ in range(6):
        service = Service("scheduler", env, log).start()
        # Wait until it is minting (readings claimed, batches signed or sent), then crash it
        # at a random moment within the next fraction of a second.
        wait_for(
            lambda service=service: (
                in_flight(app) or minted_count(app) == READINGS or not service.running
            ),
            timeout=60,
            what="the scheduler to start minting",
        )
        if not service.running:
            pytest.fail(f"the scheduler died by itself:\n{service.log()[-4000:]}")
        time.sleep(rng.uniform(0.0, 0.4))  # the fault under test: a crash at a random moment
        kills_mid_flight += bool(in_flight(app))
        service.kill()
    assert kills_mid_flight >= 5, "the crashes must hit a run in progress; make it longer"
    assert minted_count(app) < READINGS
    service = Service("scheduler", env, log).start()
    try:
        wait_for(
            lambda: minted_count(app) == READINGS,
            timeout=120,
            what=f"the last run to finish; log tail:\n{service.log()[-3000:]}",
        )
    finally:
        service.terminate()
    assert_exactly_once(app, localnet.url)
    app.close()


@pytest.mark.postgres
def test_network_faults_to_node_and_database_never_double_mint(
    tmp_path, make_settings, pg_url, localnet
) -> None:
    url = make_url(pg_url)
    db_proxy = FaultyProxy(url.host or "127.0.0.1", url.port or 5432).start()
    node_proxy = FaultyProxy("127.0.0.1", localnet.port).start()
    proxied_db = url.set(host="127.0.0.1", port=db_proxy.port).render_as_string(hide_password=False)
    env = scheduler_env(tmp_path, proxied_db, node_proxy.port)
    app = bootstrap(make_settings(**{**env, "DATABASE_URL": pg_url}))
    seed_run(app, batch_size=25)
    service = Service("scheduler", env, tmp_path / "scheduler.log").start()
    rng = random.Random(7)
    try:
        wait_for(
            lambda: minted_count(app) > 0,
            timeout=60,
            what=f"the first mints; log:\n{service.log()[-3000:]}",
        )
        faults: list[tuple[Fault, tuple[FaultyProxy, ...]]] = [
            ("slow", (node_proxy,)),  # a slow node
            ("cut", (node_proxy,)),  # connections to the node dropped mid-request
            ("cut", (db_proxy,)),  # the database connection cut mid-cycle
            ("refuse", (node_proxy, db_proxy)),  # both unreachable for a while
        ]
        for round_ in range(8):
            fault, proxies = faults[round_ % 4]
            inject(fault, rng, *proxies, delay=0.25, span=(0.5, 1.5))
            time.sleep(rng.uniform(0.3, 1.0))
        assert service.running, service.log()[-4000:]
        wait_for(
            lambda: minted_count(app) == READINGS,
            timeout=180,
            what=f"recovery after the faults; log:\n{service.log()[-3000:]}",
        )
        assert service.terminate() == 0
    finally:
        if service.running:
            service.kill()
        db_proxy.stop()
        node_proxy.stop()
    assert_exactly_once(app, localnet.url)
    app.close()
