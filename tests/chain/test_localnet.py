"""The localnet node answers solana-py's own clients as a real cluster would.

One session node (`localnet`) serves these tests; each makes its own keys and mints.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from solana.rpc.api import Client
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.core import RPCException
from solana.rpc.types import TokenAccountOpts, TxOpts
from solders.compute_budget import set_compute_unit_limit
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.errors import (
    InvalidParamsMessage,
    SendTransactionPreflightFailureMessage,
)
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
)
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

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


@pytest.fixture
def payer(client: Client) -> Keypair:
    return funded_keypair(client)


def rpc(node: Localnet, payload: object) -> object:
    return httpx.post(node.url, json=payload, timeout=10).json()


def test_health_version_and_slots_advance(localnet: Localnet, client: Client) -> None:
    assert client.is_connected()
    assert client.get_version().value.solana_core.startswith("2.")
    first = client.get_slot(Processed).value
    wait_for(lambda: client.get_slot(Processed).value > first, timeout=5, what="a new slot")
    processed = client.get_block_height(Processed).value
    assert client.get_block_height(Finalized).value <= processed
    latest = client.get_latest_blockhash(Processed)
    assert latest.value.last_valid_block_height == latest.context.slot + 150
    valid = rpc(
        localnet,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "isBlockhashValid",
            "params": [str(latest.value.blockhash), {"commitment": "processed"}],
        },
    )
    assert valid["result"]["value"] is True


def test_airdrop_credits_the_balance(client: Client) -> None:
    receiver = Keypair()
    signature = client.request_airdrop(receiver.pubkey(), 2 * SOL).value
    status = confirm(client, signature)
    assert status.err is None
    assert client.get_balance(receiver.pubkey()).value == 2 * SOL


def test_mint_spl_tokens_with_exact_balances_and_supply(client: Client, payer: Keypair) -> None:
    authority = Keypair()
    mint = create_mint(client, payer, authority.pubkey(), decimals=9)
    owners = [Keypair().pubkey() for _ in range(3)]
    accounts = create_token_accounts(client, payer, mint, owners)
    amounts = [2_010_000_000, 1, 123_456_789_012]
    instructions = [
        mint_to_ix(mint, account, authority.pubkey(), amount)
        for account, amount in zip(accounts, amounts, strict=True)
    ]
    send_and_confirm(client, build_tx(client, payer, instructions, authority))

    first = client.get_token_account_balance(accounts[0]).value
    assert (first.amount, first.decimals, first.ui_amount_string) == ("2010000000", 9, "2.01")
    assert client.get_token_account_balance(accounts[1]).value.ui_amount_string == "0.000000001"
    supply = client.get_token_supply(mint).value
    assert int(supply.amount) == sum(amounts)
    assert supply.ui_amount_string == "125.466789013"


def test_token_accounts_by_owner_filters_and_parses(client: Client, payer: Keypair) -> None:
    authority = Keypair()
    mint = create_mint(client, payer, authority.pubkey(), decimals=6)
    other_mint = create_mint(client, payer, authority.pubkey(), decimals=6)
    owner = Keypair().pubkey()
    (account,) = create_token_accounts(client, payer, mint, [owner])
    (other,) = create_token_accounts(client, payer, other_mint, [owner])
    send_and_confirm(
        client,
        build_tx(client, payer, [mint_to_ix(mint, account, authority.pubkey(), 5)], authority),
    )

    by_mint = client.get_token_accounts_by_owner(owner, TokenAccountOpts(mint=mint)).value
    assert [item.pubkey for item in by_mint] == [account]
    by_program = client.get_token_accounts_by_owner(
        owner, TokenAccountOpts(program_id=TOKEN_PROGRAM_ID)
    ).value
    assert {item.pubkey for item in by_program} == {account, other}
    assert not client.get_token_accounts_by_owner(
        owner, TokenAccountOpts(program_id=TOKEN_2022_PROGRAM_ID)
    ).value
    parsed = client.get_token_accounts_by_owner_json_parsed(owner, TokenAccountOpts(mint=mint))
    info = parsed.value[0].account.data.parsed["info"]
    assert info["owner"] == str(owner) and info["tokenAmount"]["amount"] == "5"
    mint_info = client.get_account_info_json_parsed(mint).value.data.parsed
    assert mint_info["type"] == "mint" and mint_info["info"]["supply"] == "5"
    raw = client.get_account_info(account).value
    assert raw.owner == TOKEN_PROGRAM_ID and len(raw.data) == 165


def test_get_transaction_shows_the_memo_log(client: Client, payer: Keypair) -> None:
    authority = Keypair()
    mint = create_mint(client, payer, authority.pubkey())
    (account,) = create_token_accounts(client, payer, mint, [Keypair().pubkey()])
    instructions = [
        mint_to_ix(mint, account, authority.pubkey(), 7),
        memo_ix("gridtokenx:batch:42", payer.pubkey()),
    ]
    signature = send_and_confirm(client, build_tx(client, payer, instructions, authority))

    found = client.get_transaction(signature, commitment=Confirmed).value
    assert found is not None
    meta = found.transaction.meta
    assert meta is not None and meta.err is None
    assert 'Program log: Memo (len 19): "gridtokenx:batch:42"' in meta.log_messages
    assert meta.fee == 10_000  # two signatures
    assert found.block_time is not None and found.slot > 0
    assert [b.ui_token_amount.amount for b in meta.post_token_balances] == ["7"]


def test_duplicate_send_is_already_processed_and_credited_once(
    client: Client, payer: Keypair
) -> None:
    receiver = Keypair().pubkey()
    tx = build_tx(
        client,
        payer,
        [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=receiver, lamports=SOL))],
    )
    signature = send_and_confirm(client, tx)

    with pytest.raises(RPCException) as raised:
        send(client, tx)
    error = raised.value.args[0]
    assert isinstance(error, SendTransactionPreflightFailureMessage)
    assert error.data.err == TransactionErrorFieldless.AlreadyProcessed
    assert send(client, tx, skip_preflight=True) == signature
    assert client.get_balance(receiver).value == SOL


def test_preflight_failure_carries_logs_and_skip_preflight_lands_the_failure(
    client: Client, payer: Keypair
) -> None:
    authority, impostor = Keypair(), Keypair()
    mint = create_mint(client, payer, authority.pubkey())
    (account,) = create_token_accounts(client, payer, mint, [Keypair().pubkey()])
    tx = build_tx(client, payer, [mint_to_ix(mint, account, impostor.pubkey(), 1)], impostor)
    before = client.get_balance(payer.pubkey()).value

    with pytest.raises(RPCException) as raised:
        send(client, tx)
    error = raised.value.args[0]
    assert isinstance(error, SendTransactionPreflightFailureMessage)
    assert error.message.startswith("Transaction simulation failed: Error processing Instruction 0")
    assert error.data.err == TransactionErrorInstructionError(0, InstructionErrorCustom(4))
    assert any("owner does not match" in line for line in error.data.logs)
    assert client.get_balance(payer.pubkey()).value == before  # preflight changes nothing

    signature = send(client, tx, skip_preflight=True)
    status = confirm(client, signature)
    assert status.err == TransactionErrorInstructionError(0, InstructionErrorCustom(4))
    assert client.get_balance(payer.pubkey()).value == before - 10_000  # the fee, as on a cluster
    assert client.get_token_account_balance(account).value.amount == "0"


def test_oversized_transaction_is_rejected(client: Client, payer: Keypair) -> None:
    def memo_tx(length: int) -> VersionedTransaction:
        # A long memo needs more than the default 200k compute units.
        budget = set_compute_unit_limit(1_400_000)
        return build_tx(client, payer, [budget, memo_ix("x" * length, payer.pubkey())])

    base = len(bytes(memo_tx(0)))
    # A memo's length prefix grows by a byte past 127 and 16383; 1233 - base > 127.
    tx = memo_tx(1233 - base - 1)
    assert len(bytes(tx)) == 1233
    with pytest.raises(RPCException) as raised:
        send(client, tx, skip_preflight=True)
    error = raised.value.args[0]
    assert isinstance(error, InvalidParamsMessage)
    assert "too large: 1233 bytes (max: 1232 bytes)" in error.message

    fits = memo_tx(1232 - base - 1)
    assert len(bytes(fits)) == 1232
    send_and_confirm(client, fits)


def test_concurrent_senders_from_threads(localnet: Localnet, payer: Keypair) -> None:
    client = Client(localnet.url, commitment=Confirmed)
    authority = Keypair()
    mint = create_mint(client, payer, authority.pubkey(), decimals=0)
    accounts = create_token_accounts(client, payer, mint, [Keypair().pubkey() for _ in range(8)])
    per_thread, failures = 6, []

    def sender(account: Pubkey) -> None:
        own = Client(localnet.url, commitment=Confirmed)
        try:
            for n in range(per_thread):
                tx = build_tx(
                    own,
                    payer,
                    [
                        mint_to_ix(mint, account, authority.pubkey(), 1),
                        memo_ix(f"{account}:{n}", payer.pubkey()),
                    ],
                    authority,
                )
                send_and_confirm(own, tx)
        except Exception as exc:  # collected: an assertion in a thread would be lost
            failures.append(exc)

    threads = [threading.Thread(target=sender, args=(account,)) for account in accounts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert client.get_token_supply(mint).value.amount == str(len(accounts) * per_thread)
    for account in accounts:
        assert client.get_token_account_balance(account).value.amount == str(per_thread)


def test_async_client_sends_confirms_and_reads(localnet: Localnet, payer: Keypair) -> None:
    receiver = Keypair().pubkey()

    async def scenario() -> tuple[int, bool]:
        async with AsyncClient(localnet.url, commitment=Confirmed) as client:
            blockhash = (await client.get_latest_blockhash()).value.blockhash
            instruction = transfer(
                TransferParams(from_pubkey=payer.pubkey(), to_pubkey=receiver, lamports=SOL)
            )
            message = Message.new_with_blockhash([instruction], payer.pubkey(), blockhash)
            tx = VersionedTransaction(message, [payer])
            opts = TxOpts(preflight_commitment=Confirmed)
            signature = (await client.send_raw_transaction(bytes(tx), opts)).value
            await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.05)
            return (await client.get_balance(receiver)).value, await client.is_connected()

    assert asyncio.run(scenario()) == (SOL, True)


def test_transfer_below_rent_exemption_is_refused(client: Client, payer: Keypair) -> None:
    instruction = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=3)
    )
    with pytest.raises(RPCException) as raised:
        send(client, build_tx(client, payer, [instruction]))
    assert "insufficient funds for rent" in raised.value.args[0].message


def test_batch_request_answers_each_call_with_its_id(localnet: Localnet) -> None:
    answers = rpc(
        localnet,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
            {
                "jsonrpc": "2.0",
                "id": "two",
                "method": "getSlot",
                "params": [{"commitment": "processed"}],
            },
            {"jsonrpc": "2.0", "id": 3, "method": "noSuchMethod"},
        ],
    )
    assert isinstance(answers, list)
    assert [answer["id"] for answer in answers] == [1, "two", 3]
    assert answers[0]["result"] == "ok"
    assert isinstance(answers[1]["result"], int)
    assert answers[2]["error"]["code"] == -32601


def test_unknown_method_and_bad_params(localnet: Localnet) -> None:
    answer = rpc(localnet, {"jsonrpc": "2.0", "id": 9, "method": "getEverything", "params": []})
    assert answer == {
        "jsonrpc": "2.0",
        "error": {"code": -32601, "message": "Method not found"},
        "id": 9,
    }
    answer = rpc(localnet, {"jsonrpc": "2.0", "id": 10, "method": "getBalance", "params": ["nope"]})
    assert answer["error"]["code"] == -32602
    assert rpc(localnet, "not json-rpc")["error"]["code"] == -32600
    parse_error = httpx.post(localnet.url, content=b"{", timeout=5).json()
    assert parse_error["error"]["code"] == -32700
