"""The certificate supply on chain reconciles after chaos (SQLite and PostgreSQL).

The real scheduler process issues, transfers, retires and cancels certificates on the
node while its connection to the node is slowed, cut and refused (a TCP proxy), and it
is SIGKILLed at random moments (a seeded RNG) and restarted. The moves are requested
here as the API would (core.certificates.lifecycle). Afterwards, from independent
arithmetic and the chain itself: the supply is the bootstrap plus the Wh of the
certificates still held, each holder's balance is what they hold, every Wh id of a
bundle is in exactly one certificate, and no bundle was issued twice.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from solders.pubkey import Pubkey
from sqlalchemy import func, select

from core.bootstrap import App, bootstrap
from core.certificates.lifecycle import (
    cancel_certificate,
    parse_claim,
    retire_certificate,
    transfer_certificate,
)
from core.certificates.reconcile import check_certificate_supply
from core.chain.client import ChainClient
from core.chain.instructions import TOKEN_2022_PROGRAM_ID, associated_token_address
from core.db.models import (
    CERTIFICATE_KINDS,
    Certificate,
    CertificateBundle,
    CertificateMint,
    CertificateReading,
    MeterReading,
    MintBatch,
    User,
)
from core.errors import DomainError
from tests.core.certificates.support import device_meter
from tests.factories import make_reading, make_user
from tests.scheduler.test_process import scheduler_env
from tests.support.localnet import wait_for
from tests.support.processes import Service
from tests.support.proxy import FaultyProxy, inject

pytestmark = pytest.mark.slow
DEVICES, HOURS, PER_HOUR = 3, 3, 4
MOVING = ("issuing", "transferring", "retiring", "cancelling")


def seed(app: App) -> dict[int, int]:
    """Closed hours of pending readings on devices with registry fields; mWh per meter."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    energy: dict[int, int] = {}
    with app.sessions() as session:
        for index in range(DEVICES):
            meter = device_meter(session)
            for n in range(HOURS * PER_HOUR):
                micro = 200_000 + 7_919 * n + 104_729 * index  # mWh; Wh are floored
                at = hour - timedelta(hours=HOURS) + timedelta(minutes=15 * n)
                make_reading(session, meter, kwh=f"{micro / 10**6:.6f}", at=at)
                energy[meter.id] = energy.get(meter.id, 0) + micro
        make_user(session, "buyer")
        make_user(session, "registry-admin", role="admin")
    return energy


def statuses(app: App) -> Counter[str]:
    with app.readers() as session:
        return Counter(dict(session.execute(
            select(Certificate.status, func.count()).group_by(Certificate.status)
        ).all()))  # fmt: skip


def in_flight(app: App) -> int:
    """Certificate operations signed or sent and not yet settled."""
    with app.readers() as session:
        return int(session.scalar(
            select(func.count()).where(
                MintBatch.kind.in_(CERTIFICATE_KINDS), MintBatch.status.in_(("signed", "sent"))
            )
        ))  # fmt: skip


def request_moves(app: App, rng: random.Random) -> int:
    """A split transfer, a retirement of a part and a cancellation of active certificates;
    a request that loses to a concurrent move (409) is simply not made."""
    now = datetime.now(UTC)
    claim = parse_claim(
        {"beneficiary": "Plant 3", "purpose": "Scope 2", "period_start": "2026-12-01",
         "period_end": "2026-12-01", "country": "TH"}
    )  # fmt: skip
    made = 0
    with app.sessions() as session:
        active = session.scalars(
            select(Certificate).where(Certificate.status == "active").order_by(Certificate.id)
        ).all()
        admin = session.scalar(select(User).where(User.username == "registry-admin"))
        rng.shuffle(active := list(active))
        targets = [(c.id, c.holder_id, c.first_id, c.last_id) for c in active[:3]]
        session.rollback()
        for action, (cid, holder_id, first, last) in zip(
            ("transfer", "retire", "cancel"), targets, strict=False
        ):
            holder = session.get(User, holder_id)
            assert holder is not None and admin is not None
            part = (first + (last - first) // 3, first + 2 * (last - first) // 3)
            try:
                if action == "transfer" and holder.username != "buyer":
                    transfer_certificate(
                        session, cid, "buyer", holder, now=now, first_id=part[0], last_id=part[1]
                    )
                elif action == "retire":
                    retire_certificate(
                        session, cid, claim, holder, now=now, first_id=part[0], last_id=part[1]
                    )
                elif action == "cancel":
                    cancel_certificate(session, cid, "meter found faulty", admin, now=now)
                else:
                    continue
                made += 1
            except DomainError:
                session.rollback()
    return made


# A slow node, connections dropped mid-request, the node unreachable for a while.
FAULTS = ("slow", "cut", "refuse")


def settled(app: App, minted_readings: int) -> bool:
    with app.readers() as session:
        moving = session.scalar(select(func.count()).where(Certificate.status.in_(MOVING)))
        linked = session.scalar(select(func.count(CertificateReading.reading_id)))
        minted = session.scalar(select(func.count()).where(MeterReading.status == "minted"))
    return moving == 0 and minted == minted_readings and linked == minted_readings


def test_the_certificate_supply_reconciles_after_chaos(
    tmp_path, make_settings, database_url, localnet
) -> None:
    proxy = FaultyProxy("127.0.0.1", localnet.port).start()
    env = scheduler_env(tmp_path, database_url, proxy.port)
    app = bootstrap(make_settings(**{**env, "LOCALNET_PORT": str(localnet.port)}))
    energy = seed(app)
    readings = DEVICES * HOURS * PER_HOUR
    rng = random.Random(20261202)
    log = tmp_path / "scheduler.log"
    moves = kills_in_flight = 0
    try:
        for round_ in range(4):
            service = Service("scheduler", env, log).start()
            wait_for(
                lambda service=service: statuses(app)["active"] or not service.running,
                timeout=40,
                what=f"active certificates; log tail:\n{log.read_text()[-3000:]}",
            )
            assert service.running, service.log()[-4000:]
            moves += request_moves(app, rng)
            inject(FAULTS[round_ % 3], rng, proxy, delay=0.2, span=(0.3, 0.8))
            # Crash it at a random moment once the next cycle has moves on the wire.
            wait_for(
                lambda service=service: in_flight(app) or not service.running,
                timeout=20,
                what="certificate moves in flight",
            )
            time.sleep(rng.uniform(0.0, 0.3))  # the fault under test: a crash at a random moment
            kills_in_flight += bool(in_flight(app))
            service.kill()
        assert moves >= 6 and kills_in_flight >= 2, (moves, kills_in_flight)
        service = Service("scheduler", env, log).start()
        try:
            wait_for(
                lambda: settled(app, readings),
                timeout=90,
                what=f"the moves to settle; log tail:\n{service.log()[-3000:]}",
            )
        finally:
            service.terminate()
    finally:
        proxy.stop()
    assert_reconciles(app, localnet.url, energy)
    app.close()


def assert_reconciles(app: App, rpc_url: str, energy: dict[int, int]) -> None:
    with app.readers() as session:
        certificates = session.scalars(select(Certificate)).all()
        bundles = {b.id: b for b in session.scalars(select(CertificateBundle))}
        mint = session.scalars(select(CertificateMint)).one()
        issues = Counter(
            payload["bundle_id"]
            for payload in session.scalars(
                select(MintBatch.payload).where(
                    MintBatch.kind == "certificate_issue", MintBatch.status == "confirmed"
                )
            )
        )
    assert {c.status for c in certificates} >= {"active", "retired", "cancelled", "split"}
    # Issued once: each bundle's issue landed exactly once; a device's Wh are floor(mWh/1000).
    assert sorted(issues) == sorted(b.id for b in bundles.values() if b.wh)
    assert set(issues.values()) == {1}, "a bundle was issued twice"
    by_meter: dict[int, int] = defaultdict(int)
    for bundle in bundles.values():
        by_meter[bundle.meter_id] += bundle.wh
    assert dict(by_meter) == {m: mwh // 1000 for m, mwh in energy.items()}
    # Every Wh id of a bundle in exactly one certificate (split parents are history).
    ranges: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for c in certificates:
        if c.status != "split":
            ranges[c.bundle_id].append((c.first_id, c.last_id))
    for bundle_id, parts in ranges.items():
        bundle = bundles[bundle_id]
        ids = [i for first, last in parts for i in range(first, last + 1)]
        assert sorted(ids) == list(range(bundle.first_id, bundle.last_id + 1)), bundle_id
    # The chain: supply = bootstrap + Wh still held; each holder's account holds theirs.
    held: dict[str, int] = defaultdict(int)
    for c in certificates:  # a wallet whose certificates were all burned holds 0
        held[c.holder_wallet] += c.wh if c.status == "active" else 0
    address = Pubkey.from_string(mint.address)
    with ChainClient(rpc_url) as chain:
        supply = chain.token_supply(address)
        assert supply == mint.bootstrap_supply + sum(held.values())
        for wallet, wh in held.items():
            account = associated_token_address(
                Pubkey.from_string(wallet), address, TOKEN_2022_PROGRAM_ID
            )
            assert chain.token_balance(account) == wh, wallet
    assert check_certificate_supply(app.sessions, mint.address, lambda: supply).ok
