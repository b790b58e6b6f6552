"""SignatureWatch: confirmations heard over the node's pubsub, and polling when there is none."""

from __future__ import annotations

import threading
import time

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed

from core.chain.signature_watch import SignatureWatch
from tests.support.localnet import (
    Localnet,
    build_tx,
    funded_keypair,
    memo_ix,
    send,
    wait_for,
)

pytestmark = pytest.mark.chain


def test_a_confirmation_is_heard_before_any_poll(localnet: Localnet) -> None:
    client = Client(localnet.url, commitment=Confirmed)
    payer = funded_keypair(client)
    watch = SignatureWatch(f"ws://127.0.0.1:{localnet.port + 1}", "confirmed")
    try:
        wait_for(lambda: watch.connected, what="the pubsub connection")
        tx = build_tx(client, payer, [memo_ix("heard", payer.pubkey())])
        watch.watch([tx.signatures[0]])
        wait_for(lambda: watch.is_subscribed(tx.signatures[0]), what="the node to acknowledge")
        sent_at = time.monotonic()
        send(client, tx)
        assert watch.wait(10, threading.Event()), "no signatureNotification"
        heard_after = time.monotonic() - sent_at
        # The chain agrees: it is confirmed now, without having been polled before.
        status = client.get_signature_statuses([tx.signatures[0]]).value[0]
        assert status is not None and status.err is None
        assert str(status.confirmation_status).endswith(("Confirmed", "Finalized"))
        assert heard_after < 5
    finally:
        watch.close()


def test_without_pubsub_the_watch_says_so_and_waits_out_its_timeout(localnet: Localnet) -> None:
    watch = SignatureWatch("ws://127.0.0.1:9", "confirmed")  # nothing listens on port 9
    try:
        assert not watch.connected
        started = time.monotonic()
        assert watch.wait(0.2, threading.Event()) is False
        assert time.monotonic() - started >= 0.2
        stop = threading.Event()
        stop.set()
        assert watch.wait(10, stop) is False  # a stop ends the wait at once
    finally:
        watch.close()


def test_the_pubsub_url_follows_the_rpc_url(make_settings) -> None:  # type: ignore[no-untyped-def]
    assert make_settings().app.effective_ws_url == "ws://127.0.0.1:8900"
    remote = make_settings(SOLANA_RPC_URL="https://api.devnet.solana.com")
    assert remote.app.effective_ws_url == "wss://api.devnet.solana.com"
    assert make_settings(SOLANA_WS_URL="off").app.effective_ws_url is None
    custom = make_settings(SOLANA_WS_URL="wss://example.org/ws")
    assert custom.app.effective_ws_url == "wss://example.org/ws"
