"""core.chain against the real embedded node over HTTP: bootstrap a mint, create ATAs,
send packed batches, and read the results through ChainClient and solana-py's own
Client and AsyncClient. No mocks; every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from solana.rpc.api import Client
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from core.chain.client import ChainClient
from core.chain.errors import (
    AlreadyProcessed,
    BlockhashExpired,
    MintMismatch,
    MintNotFound,
    NotYetConfirmed,
    RpcError,
    TransactionFailed,
)
from core.chain.factories import SplMintTo
from core.chain.instructions import (
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
    batch_memo,
)
from core.chain.mint_setup import create_grx_mint, ensure_token_accounts
from core.chain.packing import build_mint_transaction, chunk_mints, max_mints_per_transaction
from core.chain.status import ConfirmationState
from core.chain.transactions import PACKET_DATA_SIZE, sign_transaction, transaction_signature
from tests.support.localnet import Localnet, wait_for

pytestmark = pytest.mark.chain
SOL = 1_000_000_000
PROGRAMS = pytest.mark.parametrize(
    "program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["spl-token", "token-2022"]
)


@pytest.fixture
def chain(localnet: Localnet) -> Iterator[ChainClient]:
    with ChainClient(localnet.url, commitment="confirmed", timeout=10) as client:
        yield client


@pytest.fixture
def authority(chain: ChainClient) -> Keypair:
    keypair = Keypair()
    chain.request_airdrop(keypair.pubkey(), 100 * SOL)
    return keypair


def signed_mint(chain: ChainClient, factory, mints, batch_id: int, authority: Keypair):
    blockhash, last_valid = chain.latest_blockhash()
    tx = build_mint_transaction(factory, mints, memo_text=batch_memo(batch_id), blockhash=blockhash)
    return sign_transaction(tx, [authority]), last_valid


def test_cluster_reads(chain: ChainClient, authority: Keypair) -> None:
    assert chain.health() == "ok"
    blockhash, last_valid = chain.latest_blockhash()
    height = chain.block_height()
    assert isinstance(blockhash, Hash) and blockhash != Hash.default()
    assert height < last_valid <= height + 151
    assert chain.sol_balance(authority.pubkey()) == 100 * SOL
    assert chain.sol_balance(Keypair().pubkey()) == 0
    assert chain.minimum_balance_for_rent_exemption(82) > 0


@PROGRAMS
def test_bootstrap_ensure_accounts_and_packed_batches_mint_exactly(
    localnet: Localnet, chain: ChainClient, authority: Keypair, program: Pubkey
) -> None:
    mint = create_grx_mint(chain, authority, decimals=9, token_program=program, airdrop=False)
    info = chain.mint_info(mint)
    assert (info.mint_authority, info.decimals, info.supply, info.freeze_authority) == (
        authority.pubkey(),
        9,
        0,
        None,
    )
    assert info.token_program == program

    owners = [Keypair().pubkey() for _ in range(45)]
    atas = ensure_token_accounts(chain, authority, owners + owners[:3], mint, program)
    assert atas[:45] == [associated_token_address(o, mint, program) for o in owners]
    assert all(chain.accounts_exist(atas))
    balance_after_create = chain.sol_balance(authority.pubkey())
    # A second call finds them all and sends nothing (no fee spent).
    assert ensure_token_accounts(chain, authority, owners, mint, program) == atas[:45]
    assert chain.sol_balance(authority.pubkey()) == balance_after_create

    factory = SplMintTo(mint, authority.pubkey(), program, 9)
    capacity = max_mints_per_transaction(factory)
    mints = [(ata, 2_010_000_000 + 3 * index) for index, ata in enumerate(atas[:45])]
    pending = []
    for batch_id, chunk in enumerate(chunk_mints(mints, capacity), start=1):
        tx, last_valid = signed_mint(chain, factory, chunk, batch_id, authority)
        assert len(bytes(tx)) <= PACKET_DATA_SIZE
        pending.append((chain.send_raw(bytes(tx)), last_valid))
    assert len(pending) == 3
    statuses = chain.wait_for_confirmations(pending, timeout=20)
    assert all(status.succeeded and status.reached("confirmed") for status in statuses)

    expected = sum(amount for _, amount in mints)
    assert [chain.token_balance(ata) for ata, _ in mints] == [amount for _, amount in mints]
    assert chain.token_supply(mint) == chain.mint_info(mint).supply == expected
    # solana-py's own clients read the same integers (the `amount` strings).
    plain = Client(localnet.url, commitment=Confirmed)
    assert int(plain.get_token_account_balance(mints[0][0]).value.amount) == mints[0][1]

    # A packed transaction sent by solana-py's AsyncClient lands the same way.
    extra, last_valid = signed_mint(chain, factory, [(ata, 1) for ata in atas[:5]], 99, authority)

    async def send_then_supply() -> tuple[Signature, int]:
        async with AsyncClient(localnet.url, commitment=Confirmed) as client:
            signature = (await client.send_raw_transaction(bytes(extra))).value
            await client.confirm_transaction(
                signature, Confirmed, last_valid_block_height=last_valid
            )
            return signature, int((await client.get_token_supply(mint)).value.amount)

    signature, supply = asyncio.run(send_then_supply())
    assert chain.wait_for_confirmation(signature, last_valid).succeeded
    assert supply == chain.token_supply(mint) == expected + 5
    assert chain.token_balance(atas[0]) == mints[0][1] + 1


def test_duplicate_send_is_already_processed_and_credited_once(
    chain: ChainClient, authority: Keypair
) -> None:
    mint = create_grx_mint(
        chain, authority, decimals=6, token_program=TOKEN_PROGRAM_ID, airdrop=False
    )
    (ata,) = ensure_token_accounts(chain, authority, [Keypair().pubkey()], mint, TOKEN_PROGRAM_ID)
    factory = SplMintTo(mint, authority.pubkey(), TOKEN_PROGRAM_ID, 6)
    tx, last_valid = signed_mint(chain, factory, [(ata, 1_234_567)], 77, authority)
    raw = bytes(tx)
    signature = chain.send_raw(raw)
    assert signature == transaction_signature(tx)
    chain.wait_for_confirmation(signature, last_valid, timeout=10)
    with pytest.raises(AlreadyProcessed) as excinfo:
        chain.send_raw(raw)
    assert excinfo.value.code == "already_processed"
    # Without preflight the node answers with the signature and drops the duplicate.
    assert chain.send_raw(raw, skip_preflight=True) == signature
    assert chain.token_balance(ata) == chain.token_supply(mint) == 1_234_567


def test_an_on_chain_error_is_transaction_failed_with_its_text(
    chain: ChainClient, authority: Keypair
) -> None:
    mint = create_grx_mint(
        chain, authority, decimals=9, token_program=TOKEN_PROGRAM_ID, airdrop=False
    )
    (ata,) = ensure_token_accounts(chain, authority, [Keypair().pubkey()], mint, TOKEN_PROGRAM_ID)
    # MintToChecked with the wrong decimals: the token program refuses it.
    factory = SplMintTo(mint, authority.pubkey(), TOKEN_PROGRAM_ID, 6)
    tx, last_valid = signed_mint(chain, factory, [(ata, 10)], 1, authority)
    with pytest.raises(TransactionFailed) as preflight:
        chain.send_raw(bytes(tx))
    assert "InstructionError" in preflight.value.error and preflight.value.logs
    # Sent without preflight it lands, pays its fee and fails: FAILED, not pending.
    signature = chain.send_raw(bytes(tx), skip_preflight=True)
    result = wait_for(
        lambda: next(
            (r for r in chain.confirmations([(signature, last_valid)]) if r.state != "pending"),
            None,
        ),
        timeout=10,
    )
    assert result.state is ConfirmationState.FAILED
    assert result.status is not None and "Custom" in (result.status.error or "")
    with pytest.raises(TransactionFailed):
        chain.wait_for_confirmation(signature, last_valid, timeout=10)
    assert chain.token_supply(mint) == 0


def test_not_yet_confirmed_is_not_expired(chain: ChainClient, authority: Keypair) -> None:
    unsent = Keypair().sign_message(b"never sent")
    _, last_valid = chain.latest_blockhash()
    (result,) = chain.confirmations([(unsent, last_valid)])
    assert result.state is ConfirmationState.PENDING
    with pytest.raises(NotYetConfirmed):
        chain.wait_for_confirmation(unsent, last_valid, timeout=0.3)


def test_expired_blockhash_is_reported_as_such(fast_localnet: Localnet) -> None:
    with ChainClient(fast_localnet.url) as chain:
        authority = Keypair()
        chain.request_airdrop(authority.pubkey(), 10 * SOL)
        mint = create_grx_mint(
            chain, authority, decimals=9, token_program=TOKEN_PROGRAM_ID, airdrop=False
        )
        (ata,) = ensure_token_accounts(
            chain, authority, [Keypair().pubkey()], mint, TOKEN_PROGRAM_ID
        )
        factory = SplMintTo(mint, authority.pubkey(), TOKEN_PROGRAM_ID, 9)
        tx, last_valid = signed_mint(chain, factory, [(ata, 5)], 9, authority)
        wait_for(lambda: chain.block_height() > last_valid, timeout=10, what="expiry")
        with pytest.raises(BlockhashExpired) as excinfo:
            chain.send_raw(bytes(tx))
        assert excinfo.value.code == "blockhash_expired"
        signature = chain.send_raw(bytes(tx), skip_preflight=True)  # dropped by the node
        (result,) = chain.confirmations([(signature, last_valid)])
        assert result.state is ConfirmationState.EXPIRED
        with pytest.raises(BlockhashExpired):
            chain.wait_for_confirmation(signature, last_valid, timeout=5)
        assert chain.token_supply(mint) == 0


def test_account_reads_and_their_errors(chain: ChainClient, authority: Keypair) -> None:
    mint = create_grx_mint(
        chain, authority, decimals=9, token_program=TOKEN_PROGRAM_ID, airdrop=False
    )
    missing = Keypair().pubkey()
    keys = [mint, missing, authority.pubkey()] + [Keypair().pubkey() for _ in range(150)]
    assert chain.accounts_exist(keys) == [True, False, True] + [False] * 150
    with pytest.raises(MintNotFound):
        chain.mint_info(missing)
    with pytest.raises(MintMismatch, match="not a token mint"):
        chain.mint_info(authority.pubkey())  # a system account
    with pytest.raises(RpcError):
        chain.token_balance(missing)
    account = chain.account(mint)
    assert account is not None and account.owner == TOKEN_PROGRAM_ID and len(account.data) == 82
    assert chain.account(missing) is None
    unknown = [Signature.new_unique() for _ in range(300)]  # more than one request's worth
    assert chain.signature_statuses(unknown) == [None] * 300
