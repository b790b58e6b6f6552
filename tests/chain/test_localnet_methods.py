"""The rest of the node's surface: simulation, versioned transactions, cheap extras, panics."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.rpc.errors import UnsupportedTransactionVersionMessage
from solders.system_program import (
    CreateLookupTableParams,
    ExtendLookupTableParams,
    create_lookup_table,
    extend_lookup_table,
)
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorFieldless
from spl.memo.constants import MEMO_PROGRAM_ID

from core.chain.localnet.errors import INTERNAL_ERROR, RpcError
from core.chain.localnet.node import Node
from tests.support.localnet import (
    SOL,
    Localnet,
    build_tx,
    confirm,
    create_mint,
    create_token_accounts,
    funded_keypair,
    memo_ix,
    mint_to_ix,
    send,
    send_and_confirm,
    wait_for,
)

pytestmark = pytest.mark.chain


def call(node: Localnet, method: str, *params: object) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    answer = httpx.post(node.url, json=body, timeout=10).json()
    assert "result" in answer, answer
    return answer["result"]


def test_simulation_runs_without_landing(client: Client) -> None:
    payer = funded_keypair(client)
    tx = build_tx(client, payer, [memo_ix("just looking", payer.pubkey())])
    result = client.simulate_transaction(tx, sig_verify=True).value
    assert result.err is None and result.units_consumed > 0
    assert 'Program log: Memo (len 12): "just looking"' in result.logs
    assert client.get_signature_statuses([tx.signatures[0]], True).value == [None]

    send_and_confirm(client, tx)
    again = client.simulate_transaction(tx).value
    assert again.err == TransactionErrorFieldless.AlreadyProcessed


def test_simulation_can_replace_the_blockhash(localnet: Localnet, client: Client) -> None:
    payer = funded_keypair(client)
    stale = Message.new_with_blockhash(
        [memo_ix("stale", payer.pubkey())], payer.pubkey(), Hash.new_unique()
    )
    encoded = base64.b64encode(bytes(VersionedTransaction(stale, [payer]))).decode()
    plain = call(localnet, "simulateTransaction", encoded, {"encoding": "base64"})
    assert plain["value"]["err"] == "BlockhashNotFound"
    replaced = call(
        localnet,
        "simulateTransaction",
        encoded,
        {"encoding": "base64", "replaceRecentBlockhash": True},
    )
    assert replaced["value"]["err"] is None
    assert replaced["value"]["replacementBlockhash"]["lastValidBlockHeight"] > 0


def test_cheap_extras(localnet: Localnet, client: Client) -> None:
    epoch = client.get_epoch_info(Processed).value
    assert epoch.absolute_slot == epoch.block_height and epoch.slots_in_epoch == 432_000
    assert call(localnet, "getGenesisHash") == str(client.get_genesis_hash().value)
    payer = Keypair()
    blockhash = client.get_latest_blockhash(Confirmed).value.blockhash
    message = Message.new_with_blockhash(
        [memo_ix("fee", payer.pubkey())], payer.pubkey(), blockhash
    )
    assert client.get_fee_for_message(message).value == 5000
    fees = call(localnet, "getRecentPrioritizationFees", [])
    assert fees and all(entry["prioritizationFee"] == 0 for entry in fees)
    rent = client.get_minimum_balance_for_rent_exemption(165).value
    assert rent == 2_039_280
    missing, funded = Keypair().pubkey(), funded_keypair(client, SOL).pubkey()
    accounts = client.get_multiple_accounts([missing, funded]).value
    assert accounts[0] is None and accounts[1] is not None and accounts[1].lamports == SOL


@pytest.mark.parametrize("fails", [False, True], ids=["landed", "failed-on-chain"])
def test_fees_are_charged_and_reported_as_a_validator_charges_them(
    client: Client, fails: bool
) -> None:
    """5,000 lamports per signature plus ceil(limit x price / 10^6), success or failure."""
    payer, cosigner = funded_keypair(client), Keypair()
    limit, price = 30_001, 2_500  # compute units, micro-lamports per unit
    text = b"\xff" if fails else b"priced"  # the memo program refuses invalid UTF-8
    memo = Instruction(MEMO_PROGRAM_ID, text, [])
    tx = build_tx(
        client,
        payer,
        [
            set_compute_unit_limit(limit),
            set_compute_unit_price(price),
            memo,
            memo_ix("2nd", cosigner.pubkey()),
        ],
        cosigner,
    )
    before = client.get_balance(payer.pubkey(), Confirmed).value
    status = confirm(client, send(client, tx, skip_preflight=fails))
    assert (status.err is not None) is fails
    expected = 2 * 5000 + 76  # 30,001 x 2,500 = 75,002,500 micro-lamports, rounded up
    meta = client.get_transaction(tx.signatures[0], commitment=Confirmed).value.transaction.meta
    assert meta.fee == expected
    assert meta.pre_balances[0] - meta.post_balances[0] == expected
    assert client.get_balance(payer.pubkey(), Confirmed).value == before - expected


def test_versioned_transaction_with_a_lookup_table(localnet: Localnet, client: Client) -> None:
    payer, authority = funded_keypair(client, 20 * SOL), Keypair()
    mint = create_mint(client, payer, authority.pubkey(), decimals=0)
    accounts = create_token_accounts(client, payer, mint, [Keypair().pubkey() for _ in range(40)])
    create, table = create_lookup_table(
        CreateLookupTableParams(
            authority_address=payer.pubkey(),
            payer_address=payer.pubkey(),
            recent_slot=client.get_slot(Confirmed).value,
        )
    )
    send_and_confirm(client, build_tx(client, payer, [create]))
    for start in (0, 20):
        extend = extend_lookup_table(
            ExtendLookupTableParams(
                payer_address=payer.pubkey(),
                lookup_table_address=table,
                authority_address=payer.pubkey(),
                new_addresses=accounts[start : start + 20],
            )
        )
        send_and_confirm(client, build_tx(client, payer, [extend]))
    extended_at = client.get_slot(Processed).value
    wait_for(lambda: client.get_slot(Processed).value > extended_at, what="the next slot")

    instructions = [mint_to_ix(mint, account, authority.pubkey(), 1) for account in accounts]
    blockhash = client.get_latest_blockhash(Confirmed).value.blockhash
    lookup = AddressLookupTableAccount(table, accounts)
    message = MessageV0.try_compile(payer.pubkey(), instructions, [lookup], blockhash)
    tx = VersionedTransaction(message, [payer, authority])
    assert len(bytes(tx)) <= 1232
    signature = send(client, tx)
    assert confirm(client, signature).err is None
    assert client.get_token_supply(mint).value.amount == "40"

    found = client.get_transaction(
        signature, commitment=Confirmed, max_supported_transaction_version=0
    )
    assert found.value is not None and found.value.transaction.version == 0
    loaded = found.value.transaction.meta.loaded_addresses
    assert loaded is not None and len(loaded.writable) == 40
    with pytest.raises(RPCException) as raised:
        client.get_transaction(signature, commitment=Confirmed)
    assert isinstance(raised.value.args[0], UnsupportedTransactionVersionMessage)


def test_a_litesvm_panic_is_an_error_not_a_dead_node(tmp_path: Path) -> None:
    """LiteSVM panics on a legacy transaction with 39+ static keys (only >1232 bytes).

    The RPC layer refuses such sizes first; the node itself must still survive one.
    """
    node = Node.open(tmp_path, slot_ms=400)
    try:
        payer, authority = Keypair(), Keypair()
        node.airdrop(payer.pubkey(), SOL)
        mint = Keypair().pubkey()
        instructions = [
            mint_to_ix(mint, Keypair().pubkey(), authority.pubkey(), 1) for _ in range(40)
        ]
        blockhash = node.clock.blockhash(node.clock.slot)
        message = Message.new_with_blockhash(instructions, payer.pubkey(), blockhash)
        tx = VersionedTransaction(message, [payer, authority])
        with pytest.raises(RpcError) as raised:
            node.send(bytes(tx), tx, skip_preflight=False)
        assert raised.value.code == INTERNAL_ERROR and "panicked" in raised.value.message
        assert node.balance(payer.pubkey()) == SOL
        node.airdrop(payer.pubkey(), SOL)  # still executing
        assert node.balance(payer.pubkey()) == 2 * SOL
    finally:
        node.close()
