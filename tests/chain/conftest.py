"""Fixtures the chain tests share: a solana-py client of the session's node."""

from __future__ import annotations

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed

from tests.support.localnet import Localnet


@pytest.fixture
def client(localnet: Localnet) -> Client:
    return Client(localnet.url, commitment=Confirmed)
