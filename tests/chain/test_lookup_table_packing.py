"""Lookup-table steps packed to what the node takes: the measured count lands, one more not.

The capacity is what core.chain.lookup_tables measures; the node is the oracle:
a creation and an extension carrying exactly that many addresses land (at the
worst-case budget, a price included), and the table read back holds them all;
one address more makes a transaction the node refuses for its size.
"""

from __future__ import annotations

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from core.chain.client import ChainClient
from core.chain.compute_budget import ComputeBudget
from core.chain.lookup_tables import (
    build_table_transaction,
    create_table,
    extend_table,
    max_addresses_per_transaction,
)
from core.chain.transactions import sign_transaction
from tests.support.localnet import SOL, Localnet, confirm, funded_keypair, send

pytestmark = pytest.mark.chain

PRICED = ComputeBudget(micro_lamports_per_unit=1)


def test_steps_at_the_measured_capacity_land_and_one_more_address_is_refused(
    localnet: Localnet,
) -> None:
    client = Client(localnet.url, commitment=Confirmed)
    payer = funded_keypair(client, 2 * SOL)  # authority and payer: it signs alone
    per_create = max_addresses_per_transaction(payer.pubkey(), create=True, compute_budget=PRICED)
    per_extend = max_addresses_per_transaction(payer.pubkey(), create=False, compute_budget=PRICED)
    addresses = [Pubkey.new_unique() for _ in range(per_create + per_extend + 1)]

    def landed(instructions) -> None:
        blockhash = client.get_latest_blockhash(Confirmed).value.blockhash
        tx = build_table_transaction(instructions, payer.pubkey(), blockhash, PRICED)
        signed = sign_transaction(tx, [payer])
        assert len(bytes(signed)) <= 1232
        assert confirm(client, send(client, signed)).err is None

    slot = client.get_slot(Confirmed).value
    table, create = create_table(payer.pubkey(), payer.pubkey(), slot, addresses[:per_create])
    landed(create)
    landed([extend_table(table, payer.pubkey(), payer.pubkey(), addresses[per_create:-1])])
    with ChainClient(localnet.url) as chain:
        [held] = chain.lookup_tables([table])
    assert held is not None and list(held.addresses) == addresses[:-1]

    # One more address, built without our size check: the node refuses it.
    blockhash = client.get_latest_blockhash(Confirmed).value.blockhash
    extend = extend_table(table, payer.pubkey(), payer.pubkey(), addresses[per_create:])
    instructions = PRICED.with_budget([extend])
    message = Message.new_with_blockhash(instructions, payer.pubkey(), blockhash)
    oversized = Transaction([payer], message, blockhash)
    assert len(bytes(oversized)) > 1232
    with pytest.raises(RPCException, match="too large"):
        send(client, oversized)
    with ChainClient(localnet.url) as chain:
        [after] = chain.lookup_tables([table])
    assert after is not None and list(after.addresses) == addresses[:-1]
