"""What ChainClient reports without a healthy node: statuses judged, errors translated.

The unreachable and hung endpoints are real sockets, not mocks: a port nobody
listens on, and a listener that accepts and never answers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from solders.rpc.responses import GetHealthResp, SendTransactionResp
from solders.signature import Signature
from solders.transaction_status import TransactionStatus

from core.chain.client import ChainClient, _rpc_error
from core.chain.errors import (
    AlreadyProcessed,
    BlockhashExpired,
    ChainError,
    RpcError,
    RpcUnavailable,
    TransactionFailed,
)
from core.chain.status import Confirmation, ConfirmationState, SignatureStatus
from tests.support.processes import free_port

URL = "http://127.0.0.1:1"


def preflight(err_json: str, message: str, logs: str = "[]"):
    data = f'{{"err":{err_json},"logs":{logs},"accounts":null,"unitsConsumed":0}}'
    error = f'{{"code":-32002,"message":"{message}","data":{data}}}'
    return SendTransactionResp.from_json(f'{{"jsonrpc":"2.0","id":1,"error":{error}}}')


def test_preflight_errors_map_to_our_classes_with_the_error_text() -> None:
    expired = _rpc_error(preflight('"BlockhashNotFound"', "Blockhash not found"), URL)
    assert isinstance(expired, BlockhashExpired) and expired.code == "blockhash_expired"
    duplicate = _rpc_error(preflight('"AlreadyProcessed"', "already processed"), URL)
    assert isinstance(duplicate, AlreadyProcessed)
    failed = _rpc_error(
        preflight(
            '{"InstructionError":[1,{"Custom":18}]}',
            "Transaction simulation failed: custom program error: 0x12",
            '["Program log: MintToChecked", "failed: custom program error: 0x12"]',
        ),
        URL,
    )
    assert isinstance(failed, TransactionFailed) and failed.code == "transaction_failed"
    assert failed.error == 'InstructionError: [1,{"Custom":18}]'
    assert "0x12" in str(failed) and failed.logs[-1].endswith("0x12")


def test_other_node_errors_keep_their_message() -> None:
    unhealthy = GetHealthResp.from_json(
        '{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"Node is behind by 42 slots",'
        '"data":{"numSlotsBehind":42}}}'
    )
    assert isinstance(_rpc_error(unhealthy, URL), RpcUnavailable)
    invalid = SendTransactionResp.from_json(
        '{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"invalid transaction: x"}}'
    )
    error = _rpc_error(invalid, URL)
    assert isinstance(error, RpcError) and "invalid transaction" in str(error)


def status(level: str | None, err: str = "null", confirmations: str = "null") -> SignatureStatus:
    level_json = "null" if level is None else f'"{level}"'
    raw = (
        f'{{"slot":9,"confirmations":{confirmations},"err":{err},"status":{{"Ok":null}},'
        f'"confirmationStatus":{level_json}}}'
    )
    return SignatureStatus.from_solders(TransactionStatus.from_json(raw))


def test_statuses_become_small_values() -> None:
    assert status("processed") == SignatureStatus(9, "processed", None)
    assert status("finalized").reached("confirmed")
    assert not status("processed").reached("confirmed")
    failed = status("confirmed", err='{"InstructionError":[0,{"Custom":4}]}')
    assert not failed.succeeded and failed.error == 'InstructionError: [0,{"Custom":4}]'
    # Old nodes leave confirmationStatus out: confirmations=None means rooted.
    assert status(None).commitment == "finalized"
    assert status(None, confirmations="3").commitment == "confirmed"


@pytest.mark.parametrize(
    ("found", "height", "expected"),
    [
        (None, 100, ConfirmationState.PENDING),  # still valid: may land
        (None, 101, ConfirmationState.EXPIRED),  # past its last valid height and unseen
        ("processed", 500, ConfirmationState.PENDING),  # landed, not yet confirmed
        ("confirmed", 500, ConfirmationState.CONFIRMED),
        ("failed", 500, ConfirmationState.FAILED),
    ],
)
def test_confirmation_keeps_expired_apart_from_not_yet(found, height, expected) -> None:
    seen = {
        None: None,
        "processed": status("processed"),
        "confirmed": status("confirmed"),
        "failed": status("confirmed", err='"InsufficientFundsForFee"'),
    }[found]
    judged = Confirmation.judge(
        seen, commitment="confirmed", block_height_before=height, last_valid_block_height=100
    )
    assert judged.state is expected


@pytest.fixture
def hung_endpoint() -> Iterator[str]:
    """A TCP listener that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_refused_connection_is_rpc_unavailable_from_the_cause() -> None:
    client = ChainClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with client, pytest.raises(RpcUnavailable) as excinfo:
        client.latest_blockhash()
    assert excinfo.value.__cause__ is not None
    assert "cannot reach" in str(excinfo.value)


def test_a_timeout_is_rpc_unavailable_and_honours_the_configured_timeout(hung_endpoint) -> None:
    with ChainClient(hung_endpoint, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(RpcUnavailable, match="did not answer in time"):
            client.send_raw(b"\x00" * 10)
        assert time.monotonic() - started < 5
        with pytest.raises(ChainError):
            client.signature_statuses([Signature.default()])
