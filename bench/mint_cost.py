"""Benchmark: what minting a fleet costs, through the real scheduler and the embedded node.

    .venv/bin/python -m bench.mint_cost [--seconds 90] [--only NAME] [--meters N --wallets W]

A fleet of 10,000 meters owned by 2,500 wallets (four each), every meter
reporting every 15 minutes: 11.1 readings/s. For each configuration (the wait
to fill a transaction 0 or 60 s, lookup tables off or on), on a fresh database
and a fresh node (400 ms slots):

1. Warm-up, time compressed: two whole 15-minute cadences (20,000 readings) are
   inserted already due and minted at once, so the token accounts exist and, with
   lookup tables, every wallet has recurred and sits in an active table, as it
   would after the fleet's first half hour.
2. Steady state, in real time: the fleet's readings arrive at their real rate,
   each meter at its own phase, each with its arrival event (as the API writes
   them), while `scheduler.jobs.MintScheduler` mints at default settings (SQLite,
   as `make run`). Readings keep arriving for the wait + 15 s after the measured
   window, so the measured ones are minted as in a fleet that never stops.

It prints, for the readings accepted in the measured window: lamports of fees per
minted reading (each landed transaction's fee, recorded from its meta, shared
among the readings it carried), transactions per 1,000 readings, MintTo per
transaction, readings per MintTo, acceptance -> minted p50/p95/p99, and the
rent locked by the warm-up (token accounts, lookup tables); then the physical
floor this packing allows.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from solders.keypair import Keypair
from sqlalchemy import func, insert, select

from bench.chain_mint import embedded_node
from core.bootstrap import App, bootstrap
from core.chain.compute_budget import ComputeBudget
from core.chain.packing import max_mints_per_transaction
from core.chain.versioned import max_mints_per_versioned_transaction
from core.config import load_settings
from core.db.migrate import upgrade
from core.db.models import ChainCost, LookupTableEntry, Meter, MeterReading, MintBatch, User
from core.events import EventType, publish
from scheduler.jobs import MintScheduler
from scheduler.service import build_minter

METERS, WALLETS, CADENCE = 10_000, 2_500, 900
FLEET_T0 = datetime(2026, 6, 1, tzinfo=UTC)  # fleet time of the first warm-up cadence
WARMUP_CADENCES = 2
LAMPORTS_PER_SIGNATURE = 5_000


@dataclass(frozen=True)
class Config:
    name: str
    wait: int
    lookup_tables: bool


CONFIGS = (
    Config("send at once, legacy", 0, False),
    Config("send at once, lookup tables", 0, True),
    Config("wait 60 s, legacy", 60, False),
    Config("wait 60 s, lookup tables (defaults)", 60, True),
)


@dataclass
class Result:
    config: Config
    readings: int
    minted: int
    fees: Fraction  # the measured readings' shares of their transactions' fees
    transactions: Fraction  # their shares of transactions
    mint_transactions: int  # mint transactions carrying at least one of them
    mint_tos: int  # MintTo in those transactions
    carried: int  # readings in those transactions
    latencies: list[float]
    rent_accounts: int
    rent_tables: int
    warmup_seconds: float
    warmup_fees: int
    warmup_readings: int

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def wallet(index: int) -> str:
    return str(Keypair.from_seed(hashlib.sha256(f"fleet:{index}".encode()).digest()).pubkey())


def seed_fleet(app: App) -> list[tuple[int, int, str]]:
    """2,500 prosumers with four meters each; returns (meter id, user id, wallet) per meter."""
    with app.sessions() as session:
        session.execute(
            insert(User),
            [
                {
                    "username": f"fleet-{i}",
                    "role": "prosumer",
                    "password_hash": "-",
                    "wallet_address": wallet(i),
                    "disabled": False,
                    "created_at": FLEET_T0,
                }
                for i in range(WALLETS)
            ],
        )
        users = session.execute(select(User.id, User.wallet_address).order_by(User.id)).all()
        session.execute(
            insert(Meter),
            [
                {
                    "serial": f"fleet-m{m}",
                    "owner_id": users[m % WALLETS].id,
                    "public_key": "-",
                    "api_key_hash": hashlib.sha256(f"fleet-m{m}".encode()).hexdigest(),
                    "status": "active",
                    "created_at": FLEET_T0,
                }
                for m in range(METERS)
            ],
        )
        meters = session.execute(select(Meter.id, Meter.owner_id).order_by(Meter.id)).all()
        session.commit()
    wallets = dict(users)
    return [(meter_id, owner, wallets[owner]) for meter_id, owner in meters]


def kwh_micro(meter: int, cadence: int) -> int:
    """A varied exact amount, 0.1..2.6 kWh per 15 minutes."""
    return 100_000 + (meter * 7_919 + cadence * 104_729) % 2_500_000


def reading_row(fleet, meter: int, cadence: int, offset: float, submitted: datetime) -> dict:
    meter_id, user_id, address = fleet[meter]
    return {
        "meter_id": meter_id,
        "user_id": user_id,
        "wallet_address": address,
        "kwh_micro": kwh_micro(meter, cadence),
        "reading_timestamp": FLEET_T0 + timedelta(seconds=cadence * CADENCE + offset),
        "submitted_at": submitted,
        "status": "pending",
        "meter_signature": "-",
        "attempts": 0,
    }


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def count(app: App, *where) -> int:
    with app.readers() as session:
        return int(session.scalar(select(func.count()).where(*where)) or 0)


def warm_up(app: App, fleet, config: Config) -> float:
    started = time.monotonic()
    for cadence in range(WARMUP_CADENCES):
        submitted = datetime.now(UTC) - timedelta(hours=1)  # long due: minted at once
        rows = [
            reading_row(fleet, m, cadence, m * CADENCE / METERS, submitted) for m in range(METERS)
        ]
        with app.sessions() as session:
            for start in range(0, len(rows), 5000):
                session.execute(insert(MeterReading), rows[start : start + 5000])
            publish(session, EventType.METER_READING_RECEIVED, {"warm_up": cadence})
            session.commit()
        wait_until(
            lambda: count(app, MeterReading.status != "minted") == 0,
            timeout=600,
            what=f"warm-up cadence {cadence + 1} to be minted",
        )
    if config.lookup_tables:
        wait_until(
            lambda: count(app, LookupTableEntry.active.is_(True)) == WALLETS,
            timeout=300,
            what="every wallet's token account active in a lookup table",
        )
    return time.monotonic() - started


def steady(app: App, fleet, seconds: float, extra: float) -> tuple[datetime, datetime]:
    """The fleet at its real rate for `seconds` + `extra`; returns the measured window."""
    interval = CADENCE / METERS
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    for step in range(int((seconds + extra) / interval)):
        due = started + step * interval
        time.sleep(max(0.0, due - time.perf_counter()))
        meter, cadence = step % METERS, WARMUP_CADENCES + step // METERS
        row = reading_row(fleet, meter, cadence, meter * interval, datetime.now(UTC))
        with app.sessions() as session:
            reading_id = session.scalar(
                insert(MeterReading).values(**row).returning(MeterReading.id)
            )
            publish(
                session,
                EventType.METER_READING_RECEIVED,
                {"reading_id": reading_id},
                user_id=row["user_id"],
            )
            session.commit()
    return started_at, started_at + timedelta(seconds=seconds)


def measured(since: datetime, until: datetime):
    return MeterReading.submitted_at >= since, MeterReading.submitted_at < until


def measure(
    app: App, config: Config, since: datetime, until: datetime, warmup_seconds: float
) -> Result:
    with app.readers() as session:
        steady_rows = session.execute(
            select(
                MeterReading.status,
                MeterReading.submitted_at,
                MeterReading.minted_at,
                MeterReading.mint_batch_id,
            ).where(*measured(since, until))
        ).all()
        batch_ids = sorted({row.mint_batch_id for row in steady_rows if row.mint_batch_id})
        batches = {
            row.id: row
            for row in session.execute(
                select(
                    MintBatch.id,
                    MintBatch.fee_lamports,
                    MintBatch.mint_count,
                    MintBatch.total_readings,
                ).where(MintBatch.id.in_(batch_ids))
            )
        }
        # Token accounts or table steps in the window (none once warm): counted in full.
        others = (
            session.execute(
                select(MintBatch.fee_lamports).where(
                    MintBatch.kind != "mint",
                    MintBatch.created_at >= since,
                    MintBatch.created_at < until,
                    MintBatch.fee_lamports.is_not(None),
                )
            )
            .scalars()
            .all()
        )
        warmup_fees = session.scalar(
            select(func.coalesce(func.sum(MintBatch.fee_lamports), 0)).where(
                MintBatch.created_at < since
            )
        )
        rent = dict(
            session.execute(
                select(ChainCost.operation_kind, func.sum(ChainCost.lamports))
                .where(ChainCost.kind == "rent")
                .group_by(ChainCost.operation_kind)
            ).all()
        )
    minted = [row for row in steady_rows if row.status == "minted"]
    share = {
        batch_id: Fraction(
            sum(1 for row in minted if row.mint_batch_id == batch_id),
            batches[batch_id].total_readings,
        )
        for batch_id in batches
    }
    fees = sum((share[b] * (batches[b].fee_lamports or 0) for b in batches), Fraction(0))
    return Result(
        config=config,
        readings=len(steady_rows),
        minted=len(minted),
        fees=fees + sum(others),
        transactions=sum(share.values(), Fraction(0)) + len(others),
        mint_transactions=len(batches),
        mint_tos=sum(batches[b].mint_count or 0 for b in batches),
        carried=sum(batches[b].total_readings for b in batches),
        latencies=[(row.minted_at - row.submitted_at).total_seconds() for row in minted],
        rent_accounts=int(rent.get("token_accounts", 0)),
        rent_tables=int(rent.get("lookup_table", 0)),
        warmup_seconds=warmup_seconds,
        warmup_fees=int(warmup_fees or 0),
        warmup_readings=WARMUP_CADENCES * METERS,
    )


def run(config: Config, seconds: float) -> Result:
    with (
        tempfile.TemporaryDirectory(prefix="bench-cost-") as data_dir,
        embedded_node(slot_ms=400) as rpc_url,
    ):
        url = f"sqlite:///{Path(data_dir) / 'bench.db'}"
        upgrade(url)
        os.environ.update(
            DATA_DIR=data_dir,
            DATABASE_URL=url,
            LOCALNET_PORT=rpc_url.rsplit(":", 1)[1],
            TOKENIZATION_MAX_MINT_WAIT_SECS=str(config.wait),
            LOG_LEVEL="WARNING",
        )
        app = bootstrap(load_settings())
        fleet = seed_fleet(app)
        stop = threading.Event()
        minter = build_minter(app, stop, lookup_tables=config.lookup_tables)
        jobs = MintScheduler(minter, stop)
        scheduler = threading.Thread(target=jobs.start, name="scheduler", daemon=True)
        scheduler.start()
        try:
            warmup_seconds = warm_up(app, fleet, config)
            since, until = steady(app, fleet, seconds, extra=config.wait + 15)
            wait_until(
                lambda: count(app, MeterReading.status != "minted", *measured(since, until)) == 0,
                timeout=config.wait + 120,
                what="the measured readings to be minted",
            )
            wait_until(
                lambda: (
                    count(
                        app,
                        MintBatch.status.in_(["confirmed", "failed"]),
                        MintBatch.fee_lamports.is_(None),
                    )
                    == 0
                ),
                timeout=30,
                what="the costs of every landed transaction to be recorded",
            )
            result = measure(app, config, since, until, warmup_seconds)
        finally:
            jobs.shutdown()
            scheduler.join(60)
            minter.chain.close()
            app.close()
    return result


def floor_lines() -> list[str]:
    """Fees per reading at full packing: 5,000 lamports per signature / MintTo per transaction."""
    lines = [
        "physical floor (full transactions, 5,000 lamports per signature, no priority fee, "
        "one reading per MintTo):"
    ]
    for signatures, (legacy, versioned) in ((1, capacities(False)), (2, capacities(True))):
        fee = LAMPORTS_PER_SIGNATURE * signatures
        who = "the authority pays" if signatures == 1 else "a separate fee payer"
        lines.append(
            f"  {who} ({signatures} signature{'s' if signatures > 1 else ''}): legacy {fee:,} / "
            f"{legacy} MintTo = {fee / legacy:.1f}; v0 through one lookup table {fee:,} / "
            f"{versioned} MintTo = {fee / versioned:.1f} lamports per reading"
        )
    lines.append(
        "  this run: the authority pays (1 signature); a MintTo carries every waiting reading "
        "of its wallet, so per reading the floor is that divided by the readings per MintTo"
    )
    return lines


def capacities(separate_payer: bool) -> tuple[int, int]:
    """MintTo per legacy and per v0 (one table) transaction, with the compute-unit limit."""
    from core.chain.factories import SplMintTo
    from core.chain.instructions import TOKEN_PROGRAM_ID

    factory = SplMintTo(Keypair().pubkey(), Keypair().pubkey(), TOKEN_PROGRAM_ID, 9)
    budget = ComputeBudget()
    payer = Keypair().pubkey() if separate_payer else None
    return (
        max_mints_per_transaction(factory, compute_budget=budget, payer=payer),
        max_mints_per_versioned_transaction(factory, 1, compute_budget=budget, payer=payer),
    )


def report(results: list[Result], seconds: float) -> int:
    print(
        f"fleet: {METERS:,} meters of {WALLETS:,} wallets, every {CADENCE // 60} min "
        f"({METERS / CADENCE:.1f} readings/s); default settings but the wait; embedded node, "
        "400 ms slots"
    )
    print(
        f"warm-up (time compressed): {WARMUP_CADENCES} cadences = "
        f"{WARMUP_CADENCES * METERS:,} readings minted at once; steady state in real time: "
        f"readings accepted over {seconds:.0f} s measured (arrivals go on for the wait + 15 s)"
    )
    header = (
        f"{'configuration':38} {'readings':>8} {'lamports/reading':>16} {'tx/1000 rd':>10} "
        f"{'MintTo/tx':>9} {'rd/MintTo':>9} {'p50 s':>6} {'p95 s':>6} {'p99 s':>6}"
    )
    print(header)
    for r in results:
        per_reading = float(r.fees / max(r.minted, 1))
        print(
            f"{r.config.name:38} {r.minted:>8,} {per_reading:>16.1f} "
            f"{float(1000 * r.transactions / max(r.minted, 1)):>10.1f} "
            f"{r.mint_tos / max(r.mint_transactions, 1):>9.1f} "
            f"{r.carried / max(r.mint_tos, 1):>9.2f} {r.percentile(50):>6.1f} "
            f"{r.percentile(95):>6.1f} {r.percentile(99):>6.1f}"
        )
    print("warm-up and rent (one-off):")
    for r in results:
        print(
            f"  {r.config.name:36} warm-up {r.warmup_seconds:5.0f} s, fees "
            f"{r.warmup_fees / r.warmup_readings:6.1f} lamports/reading; rent locked "
            f"{(r.rent_accounts + r.rent_tables) / 1e9:.6f} SOL (token accounts "
            f"{r.rent_accounts / 1e9:.6f}, lookup tables {r.rent_tables / 1e9:.6f})"
        )
    for line in floor_lines():
        print(line)
    status = 0
    for r in results:
        if r.config.wait == 60 and r.config.lookup_tables:
            cost_ok = r.fees / max(r.minted, 1) <= 100
            latency_ok = r.percentile(95) <= 120
            complete = r.minted == r.readings
            print(
                f"targets at the defaults: <= 100 lamports per reading: "
                f"{'met' if cost_ok else 'MISSED'}; p95 <= 120 s: "
                f"{'met' if latency_ok else 'MISSED'}; every reading minted: "
                f"{'yes' if complete else 'NO'}"
            )
            status = 0 if cost_ok and latency_ok and complete else 1
    return status


def main() -> int:
    global METERS, WALLETS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="measured window, real time")
    parser.add_argument("--only", choices=[c.name for c in CONFIGS], action="append")
    parser.add_argument("--meters", type=int, default=METERS, help="scale the fleet down")
    parser.add_argument("--wallets", type=int, default=WALLETS, help="meters' owners")
    args = parser.parse_args()
    METERS, WALLETS = args.meters, args.wallets
    chosen = [c for c in CONFIGS if not args.only or c.name in args.only]
    results = []
    for config in chosen:
        print(f"== {config.name}", file=sys.stderr, flush=True)
        results.append(run(config, args.seconds))
    return report(results, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
