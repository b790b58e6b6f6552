"""Two `python -m api` processes on one PostgreSQL share each meter's reading budget.

A meter alternates between the two processes (as a load balancer would send
it); with the budget in process memory each would grant the full burst. The
expected total comes from the settings: the burst, plus what the rate refills
in the seconds the requests took (none at one reading a minute within 60 s).
"""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.orm import Session

from core.db.engine import create_db_engine
from core.db.types import utcnow
from tests.factories import make_meter
from tests.support.localnet import wait_for
from tests.support.processes import Service, free_port

pytestmark = pytest.mark.postgres
PER_MINUTE = 1
BURST = 6


def _answers(url: str) -> bool | None:
    try:
        return httpx.get(url, timeout=2).status_code in (200, 503) or None
    except httpx.TransportError:
        return None


def test_two_api_processes_share_one_meters_budget(tmp_path, pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    with Session(engine, expire_on_commit=False) as session:
        meter = make_meter(session)
    engine.dispose()
    ports = [free_port(), free_port()]
    services = [
        Service(
            "api",
            {
                "DATA_DIR": str(tmp_path / f"api{index}"),
                "DATABASE_URL": pg_url,
                "API_PORT": str(port),
                "API_SECRET_KEY": "a-secret-shared-by-both-processes",
                "SOLANA_RPC_URL": "http://127.0.0.1:9",
                "METER_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
                "METER_RATE_LIMIT_BURST": str(BURST),
                "LOG_LEVEL": "WARNING",
            },
            tmp_path / f"api{index}.log",
        ).start()
        for index, port in enumerate(ports)
    ]
    try:
        for service, port in zip(services, ports, strict=True):
            wait_for(
                lambda port=port: _answers(f"http://127.0.0.1:{port}/health"),
                timeout=60,
                what=f"the api on {port}",
            )
            assert service.running, service.log()
        now = utcnow().replace(microsecond=0)
        attempts = 2 * BURST + 2
        statuses: list[int] = []
        started = time.monotonic()
        for index in range(attempts):
            # Distinct 15-minute readings, so none is a duplicate of another.
            body = meter.payload(kwh="1.5", at=now - timedelta(minutes=15 * (index + 1)))
            response = httpx.post(
                f"http://127.0.0.1:{ports[index % 2]}/api/meters/submit-reading",
                json=body,
                headers=meter.headers,
                timeout=10,
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["error"]["code"] == "rate_limited", response.text
        elapsed = time.monotonic() - started
        refilled = int(elapsed * PER_MINUTE // 60)
        assert set(statuses) <= {201, 429}, statuses
        assert statuses.count(201) == BURST + refilled, (statuses, elapsed)
        # Both processes granted some of it: the budget was shared, not one process's.
        by_port = [statuses[i::2].count(201) for i in range(2)]
        assert all(by_port), by_port
    finally:
        for service in services:
            service.terminate()
