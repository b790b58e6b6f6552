"""Minting against the real localnet node and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select

from core.bootstrap import App, bootstrap
from core.db.models import MeterReading
from scheduler.service import Minter, build_minter

FAST = {"poll_interval": 0.05, "rebroadcast_interval": 0.5, "payer_read_interval": 0.0}


@pytest.fixture
def node_env(localnet) -> dict[str, str]:
    """The environment that points a process at the shared node as its embedded localnet."""
    return {"LOCALNET_PORT": str(localnet.port)}


@pytest.fixture
def mint_app(make_settings, database_url: str, node_env) -> Iterator[App]:
    app = bootstrap(make_settings(DATABASE_URL=database_url, **node_env))
    yield app
    app.close()


@pytest.fixture
def make_minter(mint_app: App) -> Iterator[Callable[..., Minter]]:
    built: list[Minter] = []

    def build(app: App | None = None, **options) -> Minter:
        minter = build_minter(app or mint_app, threading.Event(), **{**FAST, **options})
        built.append(minter)
        return minter

    yield build
    for minter in built:
        minter.pipeline.stop.set()
        minter.chain.close()


def count_by_status(app: App) -> dict[str, int]:
    with app.sessions() as session:
        rows = session.execute(
            select(MeterReading.status, func.count()).group_by(MeterReading.status)
        ).all()
    return dict(rows)


def expected_by_wallet(app: App) -> dict[str, int]:
    with app.sessions() as session:
        rows = session.execute(
            select(MeterReading.wallet_address, func.sum(MeterReading.token_base_units))
            .where(MeterReading.status == "minted")
            .group_by(MeterReading.wallet_address)
        ).all()
    return {wallet: int(total) for wallet, total in rows}
