"""The expiry path on a fast-slot node, and two minters racing on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select

from core.bootstrap import bootstrap
from core.chain.errors import BlockhashExpired
from core.db.models import Event, MintBatch
from core.minting import states
from core.minting.claim import claim_pending
from core.minting.pipeline import CycleReport
from core.settings_store import update_settings
from tests.scheduler.conftest import count_by_status, expected_by_wallet
from tests.support.localnet import wait_for
from tests.support.seed import seed_producers, seed_readings


def test_a_batch_signed_but_never_sent_expires_and_is_minted_once(
    make_settings, database_url, fast_localnet, make_minter
) -> None:
    app = bootstrap(make_settings(DATABASE_URL=database_url, LOCALNET_PORT=str(fast_localnet.port)))
    minter = make_minter(app)
    pipeline = minter.pipeline
    with app.sessions() as session:
        seed_readings(session, seed_producers(session, 2), 2)
        claimed = claim_pending(
            session, app.config(), now=pipeline.clock(), wallets_per_transaction=18
        )
    # Sign and persist, then "crash" before sending.
    destinations = pipeline.accounts.ensure([w for b in claimed for w, _ in b.mints])
    blockhash, last_valid = minter.chain.latest_blockhash()
    [signed] = [pipeline._signed(b, destinations, blockhash, last_valid) for b in claimed]
    with app.sessions() as session:
        states.mark_signed_many(
            session,
            [
                states.SignedBatch(
                    signed.batch_id,
                    str(signed.signature),
                    signed.raw_tx,
                    str(blockhash),
                    last_valid,
                )
            ],
            now=pipeline.clock(),
        )
    wait_for(lambda: minter.chain.block_height() > last_valid, timeout=30, what="expiry")
    with pytest.raises(BlockhashExpired):
        minter.chain.send_raw(signed.raw_tx)  # the old bytes can never land now
    report = CycleReport()
    pipeline.recover(report, release_all_planned=True)
    assert report.expired == 1
    assert count_by_status(app) == {"pending": 4}
    pipeline.run_cycle()
    assert count_by_status(app) == {"minted": 4}
    with app.sessions() as session:
        batches = session.scalars(
            select(MintBatch).where(MintBatch.kind == "mint").order_by(MintBatch.id)
        ).all()
    assert [b.status for b in batches] == ["expired", "confirmed"]
    assert minter.chain.signature_statuses([signed.signature]) == [None]
    expected = expected_by_wallet(app)
    supply = minter.chain.token_supply(minter.grx.address)
    assert supply == minter.grx.bootstrap_supply + sum(expected.values())
    app.close()


@pytest.mark.postgres
def test_two_minters_at_once_never_mint_a_reading_twice(
    make_settings, pg_url, node_env, make_minter
) -> None:
    apps = [bootstrap(make_settings(DATABASE_URL=pg_url, **node_env)) for _ in range(2)]
    with apps[0].sessions() as session:
        update_settings(
            session,
            apps[0].settings.tokenization,
            {"batch_size": 25, "max_mint_wait_secs": 0},  # the last, partial transaction too
            by="t",
        )
        seed_readings(session, seed_producers(session, 50), 8)
    # One transaction in flight each: every claim takes one, so both have some to take.
    minters = [make_minter(app, max_in_flight=1) for app in apps]
    barrier = threading.Barrier(2)
    reports: list[CycleReport] = []

    def run(minter) -> None:
        barrier.wait()
        reports.append(minter.pipeline.run_cycle())

    threads = [threading.Thread(target=run, args=(m,)) for m in minters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(r.claimed_readings > 0 for r in reports), "both minters should have claimed"
    assert sum(r.claimed_readings for r in reports) == 400
    assert count_by_status(apps[0]) == {"minted": 400}
    with apps[0].sessions() as session:
        minted_events = session.scalars(select(Event).where(Event.type == "tokens_minted")).all()
    ids = Counter(rid for e in minted_events for rid in e.payload["reading_ids"])
    assert len(ids) == 400 and set(ids.values()) == {1}
    expected = expected_by_wallet(apps[0])
    supply = minters[0].chain.token_supply(minters[0].grx.address)
    assert supply == minters[0].grx.bootstrap_supply + sum(expected.values())
    for app in apps:
        app.close()
