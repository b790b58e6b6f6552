"""The methods explorers and wallets call, checked against agave's shapes and errors.

solana-py parses every answer into solders' typed RPC responses, which reject a
field of the wrong name or type, so a call that parses is a first check of the
shape; the values are then compared with what the test itself sent.
"""

from __future__ import annotations

import json

import httpx
import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed, Finalized
from solana.rpc.types import MemcmpOpts, TokenAccountOpts
from solders.compute_budget import set_compute_unit_limit
from solders.keypair import Keypair
from solders.rpc.responses import GetBlockResp
from solders.system_program import TransferParams, transfer
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import ApproveParams, MintToCheckedParams, approve, mint_to_checked

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
    send_and_confirm,
    wait_for,
)

pytestmark = pytest.mark.chain


def rpc(node: Localnet, method: str, *params: object) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    return httpx.post(node.url, json=body, timeout=30).json()


def result(node: Localnet, method: str, *params: object) -> object:
    answer = rpc(node, method, *params)
    assert "result" in answer, answer
    return answer["result"]


def error(node: Localnet, method: str, *params: object) -> tuple[int, str]:
    answer = rpc(node, method, *params)
    assert "error" in answer, answer
    return answer["error"]["code"], answer["error"]["message"]


def test_signatures_for_address_newest_first_with_before_until_and_limit(
    localnet: Localnet, client: Client
) -> None:
    payer = funded_keypair(client)
    sent = [
        send_and_confirm(client, build_tx(client, payer, [memo_ix(f"m{i}", payer.pubkey())]))
        for i in range(5)
    ]
    newest_first = list(reversed(sent))

    found = client.get_signatures_for_address(payer.pubkey(), commitment=Confirmed).value
    assert [item.signature for item in found][:5] == newest_first
    assert len(found) == 6  # and the airdrop that funded it, oldest
    assert found[0].memo == "[2] m4" and found[0].err is None and found[0].block_time > 0
    assert str(found[0].confirmation_status).endswith(("Confirmed", "Finalized"))

    page = client.get_signatures_for_address(payer.pubkey(), limit=2).value
    assert [item.signature for item in page] == newest_first[:2]
    after = client.get_signatures_for_address(payer.pubkey(), before=page[-1].signature, limit=2)
    assert [item.signature for item in after.value] == newest_first[2:4]
    until = client.get_signatures_for_address(payer.pubkey(), until=newest_first[3]).value
    assert [item.signature for item in until] == newest_first[:3]
    unknown = Keypair().sign_message(b"never sent")
    assert (
        result(localnet, "getSignaturesForAddress", str(payer.pubkey()), {"before": str(unknown)})
        == []
    )

    for limit in (0, 1001):
        assert error(
            localnet, "getSignaturesForAddress", str(payer.pubkey()), {"limit": limit}
        ) == (
            -32602,
            "Invalid limit; max 1000",
        )
    assert error(
        localnet, "getSignaturesForAddress", str(payer.pubkey()), {"commitment": "processed"}
    ) == (-32602, "Method does not support commitment below `confirmed`")


def test_json_parsed_transaction_and_block(localnet: Localnet, client: Client) -> None:
    payer, authority, friend = funded_keypair(client), Keypair(), Keypair().pubkey()
    mint = create_mint(client, payer, authority.pubkey(), decimals=2)
    (account,) = create_token_accounts(client, payer, mint, [friend])
    instructions = [
        set_compute_unit_limit(60_000),
        transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=friend, lamports=SOL)),
        mint_to_checked(
            MintToCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                mint=mint,
                dest=account,
                mint_authority=authority.pubkey(),
                amount=250,
                decimals=2,
            )
        ),
        memo_ix("gridtokenx:batch:7", payer.pubkey()),
    ]
    signature = send_and_confirm(client, build_tx(client, payer, instructions, authority))

    parsed = result(
        localnet,
        "getTransaction",
        str(signature),
        {"encoding": "jsonParsed", "commitment": "confirmed"},
    )
    message = parsed["transaction"]["message"]
    assert message["accountKeys"][0] == {
        "pubkey": str(payer.pubkey()),
        "writable": True,
        "signer": True,
        "source": "transaction",
    }
    budget, system, mint_to, memo = message["instructions"]
    assert budget == {  # agave does not parse Compute Budget: partially decoded
        "programId": "ComputeBudget111111111111111111111111111111",
        "accounts": [],
        "data": budget["data"],
        "stackHeight": None,
    }
    assert system["program"] == "system" and system["parsed"] == {
        "type": "transfer",
        "info": {"source": str(payer.pubkey()), "destination": str(friend), "lamports": SOL},
    }
    assert mint_to["program"] == "spl-token" and mint_to["parsed"] == {
        "type": "mintToChecked",
        "info": {
            "mint": str(mint),
            "account": str(account),
            "mintAuthority": str(authority.pubkey()),
            "tokenAmount": {
                "uiAmount": 2.5,
                "decimals": 2,
                "amount": "250",
                "uiAmountString": "2.5",
            },
        },
    }
    assert memo["program"] == "spl-memo" and memo["parsed"] == "gridtokenx:batch:7"
    assert "loadedAddresses" not in parsed["meta"] and parsed["meta"]["err"] is None
    # solana-py (solders) takes the same answer as a typed jsonParsed transaction.
    typed = client.get_transaction(signature, "jsonParsed", Confirmed).value
    assert typed is not None and typed.slot == parsed["slot"]

    slot = parsed["slot"]
    raw_block = rpc(
        localnet,
        "getBlock",
        slot,
        {"encoding": "jsonParsed", "commitment": "confirmed", "maxSupportedTransactionVersion": 0},
    )
    block = GetBlockResp.from_json(json.dumps(raw_block)).value  # solders' typed block
    assert str(signature) in [str(tx.transaction.signatures[0]) for tx in block.transactions]
    assert block.block_height == slot and block.parent_slot == slot - 1
    assert result(localnet, "getBlockTime", slot) == block.block_time == parsed["blockTime"]
    signatures = result(
        localnet, "getBlock", slot, {"transactionDetails": "signatures", "commitment": "confirmed"}
    )
    assert str(signature) in signatures["signatures"] and "transactions" not in signatures
    accounts = result(
        localnet, "getBlock", slot, {"transactionDetails": "accounts", "commitment": "confirmed"}
    )
    ours = next(
        t for t in accounts["transactions"] if t["transaction"]["signatures"][0] == str(signature)
    )
    assert ours["transaction"]["accountKeys"][0]["pubkey"] == str(payer.pubkey())
    assert "logMessages" not in ours["meta"]

    future = client.get_slot(Confirmed).value + 1000
    assert error(localnet, "getBlock", future, {"commitment": "confirmed"}) == (
        -32004,
        f"Block not available for slot {future}",
    )
    assert error(localnet, "getBlockTime", future) == (
        -32004,
        f"Block not available for slot {future}",
    )
    assert error(localnet, "getBlock", slot, {"commitment": "processed"})[0] == -32602
    assert error(localnet, "getTransaction", str(signature), {"encoding": "xml"})[0] == -32602


def test_program_accounts_with_filters_and_token_holders(
    localnet: Localnet, client: Client
) -> None:
    payer, authority, delegate = funded_keypair(client), Keypair(), Keypair()
    mint = create_mint(client, payer, authority.pubkey(), decimals=0)
    owners = [Keypair() for _ in range(3)]
    accounts = create_token_accounts(client, payer, mint, [o.pubkey() for o in owners])
    mints = [
        mint_to_ix(mint, a, authority.pubkey(), amount)
        for a, amount in zip(accounts, (5, 50, 7), strict=True)
    ]
    send_and_confirm(client, build_tx(client, payer, mints, authority))
    allow = approve(
        ApproveParams(
            program_id=TOKEN_PROGRAM_ID,
            source=accounts[0],
            delegate=delegate.pubkey(),
            owner=owners[0].pubkey(),
            amount=3,
        )
    )
    send_and_confirm(client, build_tx(client, payer, [allow], owners[0]))

    by_mint = client.get_program_accounts(
        TOKEN_PROGRAM_ID, encoding="base64", filters=[165, MemcmpOpts(offset=0, bytes=str(mint))]
    ).value
    assert sorted(str(item.pubkey) for item in by_mint) == sorted(str(a) for a in accounts)
    state = result(
        localnet,
        "getProgramAccounts",
        str(TOKEN_PROGRAM_ID),
        {
            "encoding": "jsonParsed",
            "withContext": True,
            "commitment": "confirmed",
            "filters": [
                "tokenAccountState",
                {"memcmp": {"offset": 32, "bytes": str(owners[1].pubkey())}},
            ],
        },
    )
    assert [item["pubkey"] for item in state["value"]] == [str(accounts[1])]
    assert state["value"][0]["account"]["data"]["parsed"]["info"]["tokenAmount"]["amount"] == "50"
    assert state["context"]["slot"] > 0
    as_bytes = result(
        localnet,
        "getProgramAccounts",
        str(TOKEN_PROGRAM_ID),
        {"encoding": "base64", "filters": [{"memcmp": {"offset": 0, "bytes": list(bytes(mint))}}]},
    )
    assert len(as_bytes) == 3

    too_long = {"memcmp": {"offset": 0, "bytes": "1" * 176}}
    assert error(
        localnet, "getProgramAccounts", str(TOKEN_PROGRAM_ID), {"filters": [too_long]}
    ) == (
        -32602,
        "Invalid param: DataTooLarge",
    )
    five = [{"dataSize": 165}] * 5
    assert error(localnet, "getProgramAccounts", str(TOKEN_PROGRAM_ID), {"filters": five}) == (
        -32602,
        "Too many filters provided; max 4",
    )
    code, message = error(
        localnet,
        "getProgramAccounts",
        str(TOKEN_PROGRAM_ID),
        {"filters": [{"dataSize": 165}, {"memcmp": {"offset": 0, "bytes": str(mint)}}]},
    )  # the default encoding is base-58, refused above 128 bytes as agave does
    assert (code, message) == (
        -32600,
        "Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.",
    )

    largest = client.get_token_largest_accounts(mint).value
    assert [(str(item.address), item.amount.amount) for item in largest] == [
        (str(accounts[1]), "50"),
        (str(accounts[2]), "7"),
        (str(accounts[0]), "5"),
    ]
    delegated = client.get_token_accounts_by_delegate(
        delegate.pubkey(), TokenAccountOpts(mint=mint, encoding="base64")
    ).value
    assert [str(item.pubkey) for item in delegated] == [str(accounts[0])]
    assert error(localnet, "getTokenLargestAccounts", str(Keypair().pubkey())) == (
        -32602,
        "Invalid param: not a Token mint",
    )


def test_cluster_wide_methods_have_real_shapes(localnet: Localnet, client: Client) -> None:
    identity = client.get_identity().value.identity
    (contact,) = client.get_cluster_nodes().value
    node = json.loads(contact.to_json())
    assert node["pubkey"] == str(identity) and node["rpc"] == f"127.0.0.1:{localnet.port}"
    assert node["pubsub"] == f"127.0.0.1:{localnet.port + 1}"
    schedule = client.get_epoch_schedule().value
    assert schedule.slots_per_epoch == 432_000 and not schedule.warmup
    supply = client.get_supply().value
    assert supply.total == supply.circulating > 0 and supply.non_circulating == 0
    largest = client.get_largest_accounts().value
    assert largest and largest[0].lamports >= largest[-1].lamports
    assert client.get_vote_accounts().value.current == []
    governor = client.get_inflation_governor().value
    assert (governor.initial, governor.terminal) == (0.08, 0.015)
    rate = client.get_inflation_rate().value
    assert rate.total == pytest.approx(rate.validator + rate.foundation)
    leaders = client.get_leader_schedule().value
    assert list(leaders) == [identity] and len(leaders[identity]) == 432_000
    assert client.get_first_available_block().value == 0
    assert client.get_minimum_ledger_slot().value == 0
    assert client.get_transaction_count().value > 0
    slot = client.get_slot(Finalized).value
    assert client.get_blocks(max(0, slot - 3), slot).value == list(
        range(max(0, slot - 3), slot + 1)
    )
    assert client.get_block_time(slot).value > 0
    assert result(localnet, "getBlocksWithLimit", 0, 3) == [0, 1, 2]
    assert result(localnet, "getStakeMinimumDelegation")["value"] == 1
    assert result(localnet, "getSlotLeaders", 0, 2) == [str(identity)] * 2
    assert error(localnet, "getSlotLeaders", 0, 5001) == (-32602, "Invalid limit; max 5000")
    assert error(localnet, "getHighestSnapshotSlot") == (-32008, "No snapshot")
    assert error(localnet, "getInflationReward", [str(identity)]) == (
        -32004,
        "Block not available for slot 432000",
    )
    assert error(localnet, "getBlocksWithLimit", 0, 500_001) == (
        -32602,
        "Limit too large; max 500000",
    )
    samples = client.get_recent_performance_samples(1).value
    assert len(samples) <= 1


def test_indexes_survive_a_crash(fresh_localnet: Localnet) -> None:
    client = Client(fresh_localnet.url, commitment=Confirmed)
    payer = funded_keypair(client, SOL)
    signature = send_and_confirm(client, build_tx(client, payer, [memo_ix("kept", payer.pubkey())]))
    fresh_localnet.kill()
    fresh_localnet.restart()
    client = Client(fresh_localnet.url, commitment=Confirmed)
    history = client.get_signatures_for_address(payer.pubkey()).value
    assert history[0].signature == signature and history[0].memo == "[4] kept"
    owned = result(
        fresh_localnet,
        "getProgramAccounts",
        "11111111111111111111111111111111",
        {"encoding": "base64", "filters": [{"memcmp": {"offset": 0, "bytes": []}}]},
    )
    assert str(payer.pubkey()) in [item["pubkey"] for item in owned]
    wait_for(lambda: confirm(client, signature), what="status after restart")
