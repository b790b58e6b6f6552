"""GridTokenX telemetry through the API, the real scheduler process and the node.

Energy minted per meter == the sum over its closed intervals of
floor(max(net, 0) × ratio × 10^decimals), computed here with integers from the
values as sent: the contract's floor, per interval.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from solana.rpc.api import Client
from solders.pubkey import Pubkey
from sqlalchemy import func, select

from api.app import create_app
from core.bootstrap import bootstrap
from core.chain.instructions import associated_token_address, token_program_id
from core.db.models import MeterReading, SettlementInterval, TokenMint
from core.meters import register_meter
from tests.factories import make_user
from tests.gridtokenx import simulator as sim
from tests.scheduler.conftest import count_by_status
from tests.scheduler.test_process import scheduler_env
from tests.support.localnet import wait_for
from tests.support.processes import Service

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

RATIO_UNITS = 333_333_333  # ratio 0.333333333 as an integer over 10^9
INTERVAL = 60


def base_units(micro: int) -> int:
    # floor(kwh × ratio × 10^9) with kwh = micro / 10^6 and ratio = RATIO_UNITS / 10^9.
    return micro * RATIO_UNITS // 10**6


@pytest.mark.slow
def test_minted_energy_is_the_sum_of_closed_intervals_surplus(
    tmp_path, make_settings, database_url, localnet
) -> None:
    env = scheduler_env(
        tmp_path,
        database_url,
        localnet.port,
        TOKENIZATION_KWH_TO_TOKEN_RATIO="0.333333333",
        TOKENIZATION_SETTLEMENT_INTERVAL_SECS=str(INTERVAL),
        TOKENIZATION_MAX_MINT_WAIT_SECS="0",
    )
    app = bootstrap(make_settings(**env))
    # The scheduler starts once every tick is in. These intervals are hours old, so a
    # grace job running while the ticks arrive could close an interval before its last
    # ticks (on a slow machine it does): those would then settle as late adjustments,
    # minted on their own, and the oracle below (the floor of each interval's total)
    # would no longer hold. Late samples are tested in tests/api/test_telemetry_settlement.py.
    service = Service("scheduler", env, tmp_path / "scheduler.log")
    try:
        with app.sessions() as session:
            owners = {serial: make_user(session) for serial in ("GTX-E1", "GTX-E2")}
            keys = {
                serial: register_meter(
                    session, serial, owner.username, sim.public_key_hex(serial)
                ).api_key
                for serial, owner in owners.items()
            }
            wallets = {serial: owner.wallet_address for serial, owner in owners.items()}
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - timedelta(hours=2)
        surplus: dict[str, dict[datetime, int]] = {serial: {} for serial in keys}
        api = create_app(app, create_first_admin=False)
        with TestClient(api, client=("127.0.0.1", 50000)) as client:
            for step in range(0, 4 * INTERVAL, 5):  # 5-second ticks over four intervals
                at = start + timedelta(seconds=step)
                interval = start + timedelta(seconds=step - step % INTERVAL)
                for serial, key in keys.items():
                    sunny = serial == "GTX-E1" or (step // INTERVAL) % 2 == 0
                    generated = round((0.0123 + (step % 35) * 0.0007) if sunny else 0.0, 6)
                    consumed = round(0.004 + (step % 25) * 0.0003, 6)
                    body = sim.plain(serial, generated=generated, consumed=consumed, at=at)
                    response = sim.post(client, body, key)
                    assert response.status_code == 202, response.text
                    net = int(Decimal(repr(body["payload"]["kwh"])) * 1_000_000)
                    surplus[serial][interval] = surplus[serial].get(interval, 0) + net
        expected = {
            serial: sum(base_units(net) for net in nets.values() if net > 0)
            for serial, nets in surplus.items()
        }
        mintable = sum(net > 0 for nets in surplus.values() for net in nets.values())
        assert any(net <= 0 for net in surplus["GTX-E2"].values())  # night intervals
        service.start()
        wait_for(
            lambda: "scheduler started" in service.log() or not service.running,
            timeout=60,
            what="scheduler start",
        )
        assert service.running, service.log()
        # The last interval of each meter has no later sample: the grace job closes it.
        wait_for(
            lambda: count_by_status(app) == {"minted": mintable},
            timeout=90,
            what=f"every interval's surplus minted; log:\n{service.log()}",
        )
        with app.sessions() as session:
            open_left = session.scalar(
                select(func.count())
                .select_from(SettlementInterval)
                .where(SettlementInterval.status == "open")
            )
            closed_by = dict(
                session.execute(
                    select(SettlementInterval.closed_by, func.count()).group_by(
                        SettlementInterval.closed_by
                    )
                ).all()
            )
            minted = dict(
                session.execute(
                    select(
                        MeterReading.wallet_address, func.sum(MeterReading.token_base_units)
                    ).group_by(MeterReading.wallet_address)
                ).all()
            )
            mint = session.scalars(select(TokenMint)).one()
        assert open_left == 0
        assert closed_by == {"sample": 6, "grace": 2}
        assert {s: int(minted[wallets[s]]) for s in keys} == expected
        chain = Client(localnet.url)
        program = token_program_id(mint.token_program)
        for serial, wallet in wallets.items():
            account = associated_token_address(
                Pubkey.from_string(wallet), Pubkey.from_string(mint.address), program
            )
            balance = int(chain.get_token_account_balance(account).value.amount)
            assert balance == expected[serial], serial
        assert service.terminate(timeout=30) == 0, service.log()
    finally:
        if service.running:
            service.kill()
        app.close()
