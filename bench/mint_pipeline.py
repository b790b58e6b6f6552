"""Benchmark: the mint pipeline on PostgreSQL through the real localnet.

    .venv/bin/python -m bench.mint_pipeline [--database-url postgresql+psycopg://...]

1. Drain: 20,000 pending readings of 2,000 wallets, minted by the pipeline with
   batch size 1000; prints readings/s and transactions (token accounts are
   created first and timed separately).
2. Steady: `python -m scheduler` with default settings while readings arrive at
   50/s for 60 s; prints acceptance -> minted latency p50/p95/p99, once polling
   only (SOLANA_WS_URL=off, as before pubsub) and once hearing confirmations
   over signatureSubscribe.
3. Claim query: 1,000,000 readings of which 1% pending; prints the claim query's
   time and its EXPLAIN, which must use the partial index.
4. Signers: the drain of part 1 with a separate fee payer, signed by the file
   signer, by OpenBao transit with batch signing (one request per claim), and by
   transit one request per transaction; prints readings/s and the signing
   latency per transaction (an OpenBao dev server on this machine).

Each part runs in its own fresh database created next to TEST_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from bench.chain_mint import embedded_node
from bench.databases import migrated_pg_database
from core.bootstrap import App, bootstrap
from core.config import load_settings
from core.db.models import MeterReading
from core.events import EventType, publish
from core.minting.claim import due_readings_query
from core.settings_store import update_settings
from scheduler.service import build_minter
from tests.support.seed import seed_producers, seed_readings

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 2  # per signer set-up in bench "signers"
DEFAULT_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def app_for(database_url: str, rpc_url: str, data_dir: str) -> App:
    port = make_url(rpc_url).port
    os.environ.update(DATABASE_URL=database_url, LOCALNET_PORT=str(port), DATA_DIR=data_dir)
    return bootstrap(load_settings())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def drain(admin_url: str, rpc_url: str) -> None:
    with (
        migrated_pg_database(admin_url, "bench_") as url,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        app = app_for(url, rpc_url, data_dir)
        with app.sessions() as session:
            update_settings(session, app.settings.tokenization, {"batch_size": 1000}, by="bench")
            producers = seed_producers(session, 2000)
            seed_readings(session, producers, 10)
        minter = build_minter(app, threading.Event())
        started = time.perf_counter()
        minter.pipeline.accounts.ensure([p.wallet for p in producers])
        accounts_secs = time.perf_counter() - started
        started = time.perf_counter()
        while True:
            report = minter.pipeline.run_cycle()
            if not report.claimed_readings and not report.unresolved:
                break
        secs = time.perf_counter() - started
        with app.readers() as session:
            minted = session.scalar(select(func.count()).where(MeterReading.status == "minted"))
            expected = session.scalar(select(func.sum(MeterReading.token_base_units)))
            batches = session.scalar(text("SELECT count(*) FROM mint_batches"))
        supply = minter.chain.token_supply(minter.grx.address)
        print("drain: 20,000 readings of 2,000 wallets (PostgreSQL, embedded localnet)")
        print(f"  token accounts for 2,000 wallets created in {accounts_secs:.1f} s")
        print(f"  minted {minted} readings in {secs:.2f} s = {minted / secs:,.0f} readings/s")
        print(f"  transactions: {batches} ({minted / max(batches, 1):.1f} readings per tx)")
        print(f"  supply on chain == minted base units: {supply == expected}")
        minter.chain.close()
        app.close()


def _drain_with(admin_url: str, rpc_url: str, extra_env: dict[str, str], batch: bool):
    """(readings/s, signing ms per transaction, transactions) for one signer set-up."""
    with (
        migrated_pg_database(admin_url, "bench_") as url,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        os.environ.update(extra_env, FEE_PAYER_KEYPAIR_PATH=f"{data_dir}/keys/fee_payer.json")
        try:
            app = app_for(url, rpc_url, data_dir)
        finally:
            for name in [*extra_env, "FEE_PAYER_KEYPAIR_PATH"]:
                os.environ.pop(name, None)
        with app.sessions() as session:
            update_settings(session, app.settings.tokenization, {"batch_size": 1000}, by="bench")
            producers = seed_producers(session, 2000)
            seed_readings(session, producers, 10)
        minter = build_minter(app, threading.Event())
        outbox = minter.pipeline.outbox
        if not batch:
            outbox.authority.batch = False  # TransitSigner: one request per message
        signing: list[tuple[float, int]] = []
        sign = outbox.sign_all

        def timed_sign(unsigned):
            started = time.perf_counter()
            result = sign(unsigned)
            if any(kind == "mint" for *_, kind in unsigned):
                signing.append((time.perf_counter() - started, len(unsigned)))
            return result

        outbox.sign_all = timed_sign
        minter.pipeline.accounts.ensure([p.wallet for p in producers])
        started = time.perf_counter()
        while True:
            report = minter.pipeline.run_cycle()
            if not report.claimed_readings and not report.unresolved:
                break
        secs = time.perf_counter() - started
        with app.readers() as session:
            minted = session.scalar(select(func.count()).where(MeterReading.status == "minted"))
            expected = session.scalar(select(func.sum(MeterReading.token_base_units)))
        assert minted == 20_000 and minter.chain.token_supply(minter.grx.address) == expected
        transactions = sum(count for _, count in signing)
        per_tx_ms = 1000 * sum(secs for secs, _ in signing) / max(transactions, 1)
        minter.chain.close()
        app.close()
        return minted / secs, per_tx_ms, transactions


def signers(admin_url: str, rpc_url: str) -> None:
    from tests.support.openbao import OpenBao

    with tempfile.TemporaryDirectory() as bao_dir:
        bao = OpenBao(Path(bao_dir), persistent=False).start()
        try:
            key = bao.new_transit_key()
            transit = {k: v for k, v in bao.env(key).items()}
            setups = [
                ("file keypair", {}, True),
                ("transit, batch signing", transit, True),
                ("transit, one request per tx", transit, False),
            ]
            # Interleaved rounds, best of each: other load on the machine hits all alike.
            runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _, _ in setups}
            for _ in range(ROUNDS):
                for name, extra, batch in setups:
                    runs[name].append(_drain_with(admin_url, rpc_url, extra, batch))
            rows = [(name, *max(runs[name])) for name, _, _ in setups]
        finally:
            bao.stop()
    print(
        "signers: the drain (20,000 readings, 2,000 wallets) with a separate fee payer, "
        f"best of {ROUNDS} interleaved rounds"
    )
    for name, rate, per_tx, transactions in rows:
        every = ", ".join(f"{run[0]:,.0f}" for run in runs[name])
        print(
            f"  {name:<28} {rate:>7,.0f} readings/s, signing {per_tx:6.2f} ms per transaction "
            f"({transactions} transactions; rounds: {every} readings/s)"
        )
    print(f"  transit (batch) drain / file drain: {rows[1][1] / rows[0][1]:.0%} (target >= 80%)")
    print("  (measured on a shared machine loaded by other work: compare rows, not runs)")


def steady(admin_url: str, rpc_url: str, rate: int, seconds: int, *, pubsub: bool) -> None:
    """pubsub=False: the scheduler only polls (SOLANA_WS_URL=off), as before issue 12."""
    with (
        migrated_pg_database(admin_url, "bench_") as url,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        app = app_for(url, rpc_url, data_dir)
        with app.sessions() as session:
            producers = seed_producers(session, 200)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
        env["SOLANA_WS_URL"] = "" if pubsub else "off"
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(4)  # let the scheduler bootstrap the mint and its token accounts
            interval = 1 / rate
            due = time.perf_counter()
            for index in range(rate * seconds):
                producer = producers[index % len(producers)]
                now = datetime.now(UTC)
                with app.sessions() as session:
                    reading_id = session.scalar(
                        insert(MeterReading)
                        .values(
                            meter_id=producer.meter_id,
                            user_id=producer.user_id,
                            wallet_address=producer.wallet,
                            kwh_micro=1_000_000 + index,
                            reading_timestamp=now,
                            submitted_at=now,
                            status="pending",
                            meter_signature="-",
                            attempts=0,
                        )
                        .returning(MeterReading.id)
                    )
                    publish(
                        session,
                        EventType.METER_READING_RECEIVED,
                        {"reading_id": reading_id},
                        user_id=producer.user_id,
                    )
                    session.commit()
                due += interval
                time.sleep(max(0.0, due - time.perf_counter()))
            deadline = time.time() + 60
            while time.time() < deadline:
                with app.readers() as session:
                    left = session.scalar(
                        select(func.count()).where(MeterReading.status != "minted")
                    )
                if not left:
                    break
                time.sleep(0.5)
        finally:
            scheduler.terminate()
            scheduler.wait(30)
        with app.readers() as session:
            rows = session.execute(
                select(MeterReading.submitted_at, MeterReading.minted_at).where(
                    MeterReading.status == "minted"
                )
            ).all()
        latencies = [(m - s).total_seconds() for s, m in rows]
        how = (
            "confirmations over signatureSubscribe"
            if pubsub
            else "polling only (SOLANA_WS_URL=off)"
        )
        print(f"steady: {rate} readings/s for {seconds} s, default settings, {how}")
        print(f"  minted {len(latencies)} of {rate * seconds}")
        print(
            f"  acceptance -> minted latency: p50 {percentile(latencies, 50):.2f} s, "
            f"p95 {percentile(latencies, 95):.2f} s, p99 {percentile(latencies, 99):.2f} s, "
            f"mean {statistics.mean(latencies):.2f} s"
        )
        app.close()


def claim_query(admin_url: str) -> None:
    with migrated_pg_database(admin_url, "bench_") as url:
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (username, role, password_hash, wallet_address, disabled, "
                    "created_at) SELECT 'u' || g, 'prosumer', '-', "
                    "'9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin', false, now() "
                    "FROM generate_series(1, 1000) g"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO meters (serial, owner_id, public_key, api_key_hash, status, "
                    "created_at) SELECT 'm' || id, id, '-', md5(id::text) || md5(id::text), "
                    "'active', now() FROM users"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO meter_readings (meter_id, user_id, wallet_address, kwh_micro, "
                    "reading_timestamp, submitted_at, status, meter_signature, attempts, "
                    "token_base_units, minted_at) "
                    "SELECT 1 + g % 1000, 1 + g % 1000, "
                    "'9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin', 1000000 + g % 5000, "
                    "timestamptz '2026-01-01' + (g / 1000) * interval '15 min', "
                    "timestamptz '2026-01-01' + (g / 1000) * interval '15 min', "
                    "CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'minted' END, '-', 0, "
                    "CASE WHEN g % 100 = 0 THEN NULL ELSE 1000000000 END, "
                    "CASE WHEN g % 100 = 0 THEN NULL ELSE now() END "
                    "FROM generate_series(1, 1000000) g"
                )
            )
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
        config = load_settings().tokenization
        query = (
            due_readings_query(config, datetime.now(UTC), None)
            .limit(config.batch_size)
            .with_for_update(skip_locked=True, of=MeterReading)
        )
        compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
        timings = []
        with engine.connect() as connection:
            for _ in range(200):
                started = time.perf_counter()
                connection.execute(text(str(compiled))).all()
                timings.append((time.perf_counter() - started) * 1000)
                connection.rollback()
            plan = connection.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars()
            plan_text = "\n".join(f"    {line}" for line in plan)
            connection.rollback()
        print("claim query: 1,000,000 readings, 1% pending (10,000), LIMIT batch_size=50")
        print(
            f"  median {statistics.median(timings):.2f} ms, p95 {percentile(timings, 95):.2f} ms"
            " over 200 runs (FOR UPDATE SKIP LOCKED, rolled back)"
        )
        print("  EXPLAIN ANALYZE:")
        print(plan_text)
        uses_index = "ix_meter_readings_claim" in plan_text
        print(f"  uses the partial index ix_meter_readings_claim: {uses_index}")
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--only", choices=["drain", "steady", "claim", "signers"])
    args = parser.parse_args()
    if args.only in (None, "claim"):
        claim_query(args.database_url)
    if args.only in (None, "drain", "steady", "signers"):
        with embedded_node(slot_ms=400) as rpc_url:
            if args.only in (None, "signers"):
                signers(args.database_url, rpc_url)
            if args.only in (None, "drain"):
                drain(args.database_url, rpc_url)
            if args.only in (None, "steady"):
                steady(args.database_url, rpc_url, args.rate, args.seconds, pubsub=False)
                steady(args.database_url, rpc_url, args.rate, args.seconds, pubsub=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
