"""Time, restarts and crashes: blockhashes expire, ledgers survive, nothing runs twice."""

from __future__ import annotations

import signal
import threading

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorFieldless

from tests.support.localnet import (
    SOL,
    Localnet,
    LocalnetFailed,
    build_tx,
    confirm,
    create_mint,
    create_token_accounts,
    funded_keypair,
    memo_ix,
    mint_to_ix,
    run_localnet,
    send,
    send_and_confirm,
    wait_for,
)

pytestmark = pytest.mark.chain


def preflight_error(client: Client, tx: VersionedTransaction) -> TransactionErrorFieldless:
    with pytest.raises(RPCException) as raised:
        send(client, tx)
    error = raised.value.args[0]
    assert isinstance(error, SendTransactionPreflightFailureMessage), error
    return error.data.err


def pay(payer: Keypair, to: Pubkey, lamports: int, blockhash: object) -> VersionedTransaction:
    instruction = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports)
    )
    message = Message.new_with_blockhash([instruction], payer.pubkey(), blockhash)  # type: ignore[arg-type]
    return VersionedTransaction(message, [payer])


def test_expired_blockhash_is_rejected_and_never_lands(fast_localnet: Localnet) -> None:
    client = Client(fast_localnet.url, commitment=Confirmed)
    payer, receiver = funded_keypair(client), Keypair().pubkey()
    latest = client.get_latest_blockhash(Processed).value
    tx = pay(payer, receiver, SOL, latest.blockhash)
    wait_for(
        lambda: client.get_block_height(Processed).value > latest.last_valid_block_height,
        timeout=10,
        what="the blockhash to expire",
    )

    assert preflight_error(client, tx) == TransactionErrorFieldless.BlockhashNotFound
    # Without preflight a node forwards it and answers its signature; no leader lands it.
    signature = send(client, tx, skip_preflight=True)
    assert signature == tx.signatures[0]
    assert client.get_signature_statuses([signature], True).value == [None]
    assert client.get_balance(receiver).value == 0


def test_statuses_leave_the_cache_but_not_the_history(fast_localnet: Localnet) -> None:
    client = Client(fast_localnet.url, commitment=Confirmed)
    payer = funded_keypair(client)
    signature = send_and_confirm(client, build_tx(client, payer, [memo_ix("old", payer.pubkey())]))
    landed = client.get_signature_statuses([signature], True).value[0]
    assert landed is not None
    # A node's status cache holds 300 slots; only searchTransactionHistory looks further back.
    wait_for(
        lambda: client.get_signature_statuses([signature]).value == [None],
        timeout=15,
        what="the status to leave the recent cache",
    )
    old = client.get_signature_statuses([signature], True).value[0]
    assert old is not None and old.slot == landed.slot
    assert old.confirmations is None and str(old.confirmation_status).endswith("Finalized")


def _mint_fixture(client: Client) -> tuple[Keypair, Keypair, Pubkey, Pubkey]:
    payer, authority = funded_keypair(client), Keypair()
    mint = create_mint(client, payer, authority.pubkey(), decimals=9)
    (account,) = create_token_accounts(client, payer, mint, [Keypair().pubkey()])
    return payer, authority, mint, account


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_keeps_the_ledger_and_never_executes_twice(
    fresh_localnet: Localnet, how: str
) -> None:
    client = Client(fresh_localnet.url, commitment=Confirmed)
    payer, authority, mint, account = _mint_fixture(client)
    minted = build_tx(
        client, payer, [mint_to_ix(mint, account, authority.pubkey(), 500)], authority
    )
    landed = send_and_confirm(client, minted)
    # Signed before the crash, sent only after it: must land exactly once afterwards.
    pending = build_tx(
        client, payer, [mint_to_ix(mint, account, authority.pubkey(), 20)], authority
    )
    slot_before = client.get_slot(Processed).value
    payer_balance = client.get_balance(payer.pubkey()).value

    if how == "sigterm":
        assert fresh_localnet.stop() == 0
    else:
        assert fresh_localnet.kill(signal.SIGKILL) == -signal.SIGKILL
    fresh_localnet.restart()

    assert client.get_slot(Processed).value >= slot_before
    assert client.get_balance(payer.pubkey()).value == payer_balance
    assert client.get_token_account_balance(account).value.amount == "500"
    status = client.get_signature_statuses([landed], True).value[0]
    assert status is not None and status.err is None
    assert client.get_transaction(landed, commitment=Confirmed).value is not None

    # The pre-crash bytes again: refused with preflight, ignored without.
    assert preflight_error(client, minted) == TransactionErrorFieldless.AlreadyProcessed
    assert send(client, minted, skip_preflight=True) == landed
    send_and_confirm(client, pending)
    assert send(client, pending, skip_preflight=True) == pending.signatures[0]
    assert client.get_token_account_balance(account).value.amount == "520"
    assert client.get_token_supply(mint).value.amount == "520"


def test_kill_right_after_the_answer_keeps_the_transaction(fresh_localnet: Localnet) -> None:
    client = Client(fresh_localnet.url, commitment=Confirmed)
    payer, receiver = funded_keypair(client), Keypair().pubkey()
    tx = pay(payer, receiver, SOL, client.get_latest_blockhash(Processed).value.blockhash)
    signature = send(client, tx)  # answered => committed, before any confirmation
    fresh_localnet.kill(signal.SIGKILL)
    fresh_localnet.restart()

    assert confirm(client, signature).err is None
    assert client.get_balance(receiver).value == SOL
    assert send(client, tx, skip_preflight=True) == signature
    assert client.get_balance(receiver).value == SOL


def test_a_second_node_on_the_same_ledger_is_refused(fresh_localnet: Localnet) -> None:
    with (
        pytest.raises(LocalnetFailed, match="another localnet node"),
        run_localnet(fresh_localnet.data_dir),
    ):
        pass
    assert Client(fresh_localnet.url).is_connected()


def test_kill_under_load_loses_nothing_answered_and_runs_nothing_twice(
    fresh_localnet: Localnet,
) -> None:
    client = Client(fresh_localnet.url, commitment=Confirmed)
    payer, authority, mint, account = _mint_fixture(client)
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    txs = [
        VersionedTransaction(
            Message.new_with_blockhash(
                [mint_to_ix(mint, account, authority.pubkey(), 1), memo_ix(str(n), payer.pubkey())],
                payer.pubkey(),
                blockhash,
            ),
            [payer, authority],
        )
        for n in range(240)
    ]
    answered: list[VersionedTransaction] = []
    stop = threading.Event()

    def sender(mine: list[VersionedTransaction]) -> None:
        own = Client(fresh_localnet.url, timeout=5)
        for tx in mine:
            if stop.is_set():
                return
            try:
                send(own, tx)
            except Exception:  # the node died under us: expected
                return
            answered.append(tx)

    threads = [threading.Thread(target=sender, args=(txs[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(answered) >= 40, timeout=20, what="40 answered sends")
    fresh_localnet.kill(signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    fresh_localnet.restart()

    statuses = [client.get_signature_statuses([tx.signatures[0]], True).value[0] for tx in txs]
    landed = sum(status is not None for status in statuses)
    assert all(statuses[txs.index(tx)] is not None for tx in answered)  # answered => durable
    assert client.get_token_supply(mint).value.amount == str(landed)
    for tx in txs:  # everything again: each transaction runs at most once, ever
        send(client, tx, skip_preflight=True)
    assert client.get_token_supply(mint).value.amount == str(len(txs))
    assert client.get_token_account_balance(account).value.amount == str(len(txs))
