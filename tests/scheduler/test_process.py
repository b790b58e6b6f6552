"""`python -m scheduler` as a real process: arrival trigger, SIGTERM, refusal of an old schema."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from solders.pubkey import Pubkey
from sqlalchemy import select

from core.bootstrap import bootstrap
from core.chain.client import ChainClient
from core.chain.instructions import TOKEN_2022_PROGRAM_ID, associated_token_address
from core.db.models import Certificate, CertificateMint, MeterReading, User
from core.db.types import utcnow
from core.events import EventType, publish
from tests.core.certificates.support import device_meter
from tests.factories import make_reading
from tests.scheduler.conftest import count_by_status
from tests.support.localnet import wait_for
from tests.support.processes import REPO_ROOT, Service
from tests.support.seed import seed_producers, seed_readings


def scheduler_env(tmp_path, database_url: str, port: int, **extra: str) -> dict[str, str]:
    return {
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url,
        "LOCALNET_PORT": str(port),
        **extra,
    }


def test_new_readings_are_minted_at_once_and_sigterm_stops_cleanly(
    tmp_path, make_settings, database_url, localnet
) -> None:
    # A long interval: only the arrival trigger can mint within the deadline below.
    env = scheduler_env(
        tmp_path, database_url, localnet.port, TOKENIZATION_POLLING_INTERVAL_SECS="3600"
    )
    app = bootstrap(make_settings(**env))
    service = Service("scheduler", env, tmp_path / "scheduler.log").start()
    try:
        wait_for(
            lambda: "scheduler started" in service.log() or not service.running,
            timeout=60,
            what="scheduler start",
        )
        assert service.running, service.log()
        with app.sessions() as session:
            producers = seed_producers(session, 2)
            seed_readings(session, producers, 3)
            for reading in session.scalars(select(MeterReading)):
                publish(
                    session,
                    EventType.METER_READING_RECEIVED,
                    {"reading_id": reading.id},
                    user_id=reading.user_id,
                )
            session.commit()
        wait_for(
            lambda: count_by_status(app) == {"minted": 6},
            timeout=30,
            what=f"minting by the trigger; log:\n{service.log()}",
        )
        assert service.terminate(timeout=30) == 0, service.log()
        assert "scheduler stopped" in service.log()
    finally:
        if service.running:
            service.kill()
        app.close()


def test_an_unmigrated_database_is_refused_with_the_fix(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scheduler"],
        cwd=REPO_ROOT,
        env={
            "DATA_DIR": str(tmp_path),
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "alembic upgrade head" in result.stderr


def test_a_waiting_reading_is_minted_when_it_becomes_due(
    tmp_path, make_settings, database_url, localnet
) -> None:
    # Nothing fills a transaction and the interval is an hour: only the wake-up at the
    # oldest reading's deadline can mint these within the test.
    env = scheduler_env(
        tmp_path,
        database_url,
        localnet.port,
        TOKENIZATION_POLLING_INTERVAL_SECS="3600",
        TOKENIZATION_MAX_MINT_WAIT_SECS="3",
    )
    app = bootstrap(make_settings(**env))
    service = Service("scheduler", env, tmp_path / "scheduler.log").start()
    try:
        wait_for(
            lambda: "scheduler started" in service.log() or not service.running,
            timeout=60,
            what="scheduler start",
        )
        with app.sessions() as session:
            producers = seed_producers(session, 2)
            seed_readings(session, producers, 1, start=utcnow() - timedelta(seconds=3))
            publish(session, EventType.METER_READING_RECEIVED, {"reading_id": 1})
            session.commit()
        wait_for(
            lambda: count_by_status(app) == {"minted": 2},
            timeout=30,
            what=f"minting at the deadline; log:\n{service.log()}",
        )
        with app.sessions() as session:
            waited = [
                (r.minted_at - r.submitted_at).total_seconds()
                for r in session.scalars(select(MeterReading))
            ]
        assert all(3 <= seconds < 15 for seconds in waited), waited
        assert service.terminate(timeout=30) == 0, service.log()
    finally:
        if service.running:
            service.kill()
        app.close()


def test_the_scheduler_process_issues_certificates_on_chain(
    tmp_path, make_settings, database_url, localnet
) -> None:
    """Readings of a closed hour, minted by the process, become certificates it mints on
    the certificate mint; Wh from integer arithmetic here."""
    env = scheduler_env(tmp_path, database_url, localnet.port)
    app = bootstrap(make_settings(**env))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    with app.sessions() as session:
        meter = device_meter(session)
        owner = session.get(User, meter.owner_id)
        wallet = owner.wallet_address
        micro = [333_333, 333_333, 333_335, 1]  # 1,000,002 mWh
        for n, amount in enumerate(micro):
            make_reading(
                session, meter, kwh=f"{amount / 10**6:.6f}", at=hour + timedelta(minutes=10 * n)
            )
    service = Service("scheduler", env, tmp_path / "scheduler.log").start()
    try:
        wait_for(
            lambda: _certificate_statuses(app) == ["active"] or not service.running,
            timeout=90,
            what=f"a certificate issued on chain; log:\n{service.log()}",
        )
        assert service.running, service.log()
        with app.sessions() as session:
            [certificate] = session.scalars(select(Certificate)).all()
            mint = session.scalars(select(CertificateMint)).one()
        assert certificate.wh == sum(micro) // 1000 == 1000
        account = associated_token_address(
            Pubkey.from_string(wallet), Pubkey.from_string(mint.address), TOKEN_2022_PROGRAM_ID
        )
        with ChainClient(localnet.url) as chain:
            assert chain.token_balance(account) == 1000
        assert service.terminate(timeout=30) == 0, service.log()
    finally:
        if service.running:
            service.kill()
        app.close()


def _certificate_statuses(app) -> list[str]:
    with app.sessions() as session:
        return list(session.scalars(select(Certificate.status)))
