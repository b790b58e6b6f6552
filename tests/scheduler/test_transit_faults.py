"""The scheduler process signing through OpenBao transit, crashed and starved of its signer.

Real processes throughout: `python -m scheduler`, the node, an OpenBao server.
Expected credits come from integer arithmetic over the seeded amounts.
"""

from __future__ import annotations

from collections import Counter

import pytest
from solders.pubkey import Pubkey
from solders.signature import Signature
from sqlalchemy import func, select

from core.bootstrap import bootstrap
from core.chain.client import ChainClient
from core.chain.instructions import token_program_id
from core.db.models import Event, MeterReading, MintBatch, TokenMint
from core.settings_store import update_settings
from tests.scheduler.conftest import count_by_status
from tests.scheduler.test_process import scheduler_env
from tests.scheduler.transit_support import (
    assert_credited,
    expected_units,
    files_containing,
    private_key_forms,
)
from tests.support.localnet import wait_for
from tests.support.processes import Service
from tests.support.rpc_gate import RpcGate
from tests.support.seed import T0, seed_producers, seed_readings

pytestmark = pytest.mark.slow


def minted(app) -> int:
    with app.readers() as session:
        return session.scalar(select(func.count()).where(MeterReading.status == "minted"))


def assert_minted_once(app, rpc_url: str, expected: dict[str, int]) -> None:
    with app.readers() as session:
        events = session.scalars(select(Event).where(Event.type == "tokens_minted")).all()
        mint = session.scalars(select(TokenMint)).one()
    ids = Counter(rid for event in events for rid in event.payload["reading_ids"])
    assert set(ids.values()) == {1}, "a reading was minted twice"
    with ChainClient(rpc_url) as chain:
        address = Pubkey.from_string(mint.address)
        assert_credited(chain, address, token_program_id(mint.token_program), expected)
        assert chain.token_supply(address) == mint.bootstrap_supply + sum(expected.values())


def test_killed_between_persisting_and_sending_resends_the_same_bytes(
    tmp_path, make_settings, sqlite_url, localnet, openbao
) -> None:
    key = openbao.new_transit_key(exportable=True)  # exportable only so the test knows it
    gate = RpcGate(localnet.url).start()
    env = scheduler_env(
        tmp_path,
        sqlite_url,
        gate.port,  # the scheduler sees the gate as its embedded node
        TOKENIZATION_POLLING_INTERVAL_SECS="1",
        FEE_PAYER_KEYPAIR_PATH=str(tmp_path / "data/keys/payer.json"),
        **openbao.env(key),
    )
    app = bootstrap(make_settings(**env))
    with app.sessions() as session:
        producers = seed_producers(session, 3)
        seed_readings(session, producers, 2)
    log = tmp_path / "scheduler.log"
    service = Service("scheduler", env, log).start()
    try:
        wait_for(lambda: minted(app) == 6, timeout=90, what=f"first mints:\n{service.log()}")
        gate.hold_sends = True  # from now on the node receives nothing the scheduler sends
        with app.sessions() as session:
            seed_readings(session, producers, 2, start=T0.replace(day=5))
        wait_for(
            lambda: gate.held and _signed_batches(app),
            timeout=60,
            what=f"a persisted batch whose send was held:\n{service.log()[-3000:]}",
        )
        service.kill()  # SIGKILL: the signed bytes are committed, the node never got them
    finally:
        if service.running:
            service.kill()
    (batch,) = _signed_batches(app)
    assert bytes(batch.raw_tx) in gate.held  # what it tried to send is what it persisted
    with ChainClient(localnet.url) as chain:
        assert chain.signature_statuses([Signature.from_string(batch.signature)]) == [None]
    gate.hold_sends = False
    service = Service("scheduler", env, log).start()
    try:
        wait_for(
            lambda: minted(app) == 12 and "scheduler.jobs: recovery:" in service.log(),
            timeout=90,
            what=f"recovery:\n{service.log()[-3000:]}",
        )
        assert service.terminate() == 0
    finally:
        if service.running:
            service.kill()
        gate.stop()
    with app.readers() as session:
        again = session.get(MintBatch, batch.id)
        statuses = Counter(session.scalars(select(MintBatch.status)))
    assert again.status == "confirmed" and again.signature == batch.signature
    assert again.raw_tx == batch.raw_tx and statuses == {"confirmed": statuses["confirmed"]}
    first, later = expected_units(3, 2), expected_units(3, 2)
    assert_minted_once(app, localnet.url, {w: first[w] + later[w] for w in first})
    forms = private_key_forms(openbao, key)
    assert files_containing(tmp_path, forms) == []  # DATA_DIR, the database and the log
    app.close()


def _signed_batches(app) -> list[MintBatch]:
    with app.readers() as session:
        return list(session.scalars(select(MintBatch).where(MintBatch.status == "signed")))


def test_stopping_the_signer_pauses_minting_and_restarting_resumes(
    tmp_path, make_settings, sqlite_url, localnet, persistent_openbao
) -> None:
    bao = persistent_openbao
    key = bao.new_transit_key()
    client = bao.client()
    client.sys.enable_auth_method("approle")
    client.sys.create_or_update_policy(
        "grx-sign",
        f'path "transit/sign/{key}" {{ capabilities = ["update"] }}\n'
        f'path "transit/keys/{key}" {{ capabilities = ["read"] }}',
    )
    client.auth.approle.create_or_update_approle("grx", token_policies=["grx-sign"])
    role_id = client.auth.approle.read_role_id("grx")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("grx")["data"]["secret_id"]
    env = scheduler_env(
        tmp_path,
        sqlite_url,
        localnet.port,
        TOKENIZATION_POLLING_INTERVAL_SECS="1",
        FEE_PAYER_KEYPAIR_PATH=str(tmp_path / "data/keys/payer.json"),
        AUTHORITY_SIGNER="vault-transit",
        VAULT_ADDR=bao.url,
        VAULT_ROLE_ID=role_id,
        VAULT_SECRET_ID=secret_id,
        VAULT_TRANSIT_KEY=key,
    )
    app = bootstrap(make_settings(**env))
    with app.sessions() as session:
        update_settings(session, app.settings.tokenization, {"batch_size": 10}, by="t")
        producers = seed_producers(session, 40)
        seed_readings(session, producers, 5)
    log = tmp_path / "scheduler.log"
    service = Service("scheduler", env, log).start()
    try:
        wait_for(lambda: minted(app) > 0, timeout=90, what=f"first mints:\n{service.log()}")
        bao.stop()  # the signing service goes away mid-run
        # Readings keep arriving meanwhile. They are what needs signing next: one cycle
        # can mint the whole first lot before the signer stops, so without them
        # nothing would ask the signer again.
        with app.sessions() as session:
            seed_readings(session, producers, 1, start=T0.replace(day=20))
        wait_for(lambda: _outage_events(app), timeout=60, what="signer_unavailable")
        wait_for(
            lambda: (
                service.log().count("unavailable: cannot sign") >= 2
                and "minting" not in count_by_status(app)
            ),
            timeout=60,
            what=f"a retry that failed too, nothing left in flight:\n{service.log()[-3000:]}",
        )
        (event,) = _outage_events(app)
        paused_at = minted(app)
        assert paused_at < 240
        with app.readers() as session:  # nothing was signed after the outage began
            signed_late = session.scalar(
                select(func.count()).where(MintBatch.signed_at > event.created_at)
            )
        assert signed_late == 0
        assert event.payload["signer"] == f"vault-transit:transit/{key}"
        bao.start()  # back, but sealed: still unavailable
        bao.unseal()
        wait_for(lambda: minted(app) == 240, timeout=120, what=f"resume:\n{service.log()[-3000:]}")
        assert service.terminate() == 0
    finally:
        if service.running:
            service.kill()
    assert len(_outage_events(app)) == 1  # one event per outage, not one per retry
    first, extra = expected_units(40, 5), expected_units(40, 1)
    assert_minted_once(app, localnet.url, {w: first[w] + extra[w] for w in first})
    assert secret_id not in service.log()
    app.close()


def _outage_events(app) -> list[Event]:
    with app.readers() as session:
        return list(session.scalars(select(Event).where(Event.type == "signer_unavailable")))
