"""Minting with the mint authority held by a real OpenBao transit key.

The expected credits come from integer arithmetic over the seeded amounts; the
chain's balances, supply and mint authority are the chain's own answers.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from sqlalchemy import select

from core.bootstrap import bootstrap
from core.chain.certificate_instructions import permanent_delegate_of
from core.chain.errors import MintMismatch
from core.db.models import Event, MintBatch
from tests.scheduler.conftest import count_by_status
from tests.scheduler.transit_support import (
    assert_credited,
    expected_units,
    files_containing,
    private_key_forms,
)
from tests.support.processes import REPO_ROOT
from tests.support.seed import T0, seed_producers, seed_readings


def test_a_transit_authority_mints_exactly_and_its_key_is_nowhere(
    make_settings, database_url, node_env, openbao, make_minter, tmp_path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    key = openbao.new_transit_key(exportable=True)  # exportable only so the test knows it
    env = openbao.env(key, FEE_PAYER_KEYPAIR_PATH=str(tmp_path / "data/keys/payer.json"))
    app = bootstrap(make_settings(DATABASE_URL=database_url, **node_env, **env))
    minter = make_minter(app)
    authority = minter.pipeline.target.authority
    assert minter.chain.mint_info(minter.grx.address).mint_authority == authority.pubkey
    assert minter.fee_payer != authority.pubkey
    with app.sessions() as session:
        seed_readings(session, seed_producers(session, 30), 3)
    report = minter.pipeline.run_cycle()
    assert count_by_status(app) == {"minted": 90} and report.batches_sent >= 2
    expected = expected_units(30, 3)
    assert_credited(minter.chain, minter.grx.address, minter.grx.token_program, expected)
    supply = minter.chain.token_supply(minter.grx.address)
    assert supply == minter.grx.bootstrap_supply + sum(expected.values())
    assert minter.chain.sol_balance(authority.pubkey) == 0  # the payer paid everything
    with app.sessions() as session:
        batches = session.scalars(select(MintBatch).where(MintBatch.kind == "mint")).all()
        others = session.scalars(select(MintBatch).where(MintBatch.kind != "mint")).all()
    assert {(b.signer, b.signer_key_version) for b in batches} == {
        (f"vault-transit:transit/{key}", 1)
    }
    assert others and {(b.kind, b.signer) for b in others} == {("token_accounts", None)}
    for batch in batches:  # both signatures, payer first (it is the id), each verifying
        tx = Transaction.from_bytes(batch.raw_tx)
        assert list(tx.message.account_keys[:2]) == [minter.fee_payer, authority.pubkey]
        tx.verify()
    forms = private_key_forms(openbao, key)
    assert files_containing(tmp_path, forms) == []
    assert not [form for form in forms if form.decode(errors="ignore") in caplog.text]
    app.close()


def test_rotation_moves_the_authority_and_later_mints_use_the_new_key(
    make_settings, sqlite_url, node_env, openbao, make_minter
) -> None:
    file_env = {"DATABASE_URL": sqlite_url, **node_env}
    app = bootstrap(make_settings(**file_env))
    old = make_minter(app)
    with app.sessions() as session:
        producers = seed_producers(session, 4)
        seed_readings(session, producers, 2)
    old.pipeline.run_cycle()
    key = openbao.new_transit_key()
    transit_env = openbao.env(key)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "AUTHORITY_"))}
    result = subprocess.run(
        [sys.executable, "-m", "core.chain.authority", "rotate", "--to", f"vault-transit:{key}"],
        cwd=REPO_ROOT,
        env={**base, **{k: v for k, v in transit_env.items() if k != "AUTHORITY_SIGNER"}},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with app.sessions() as session:
        (rotation,) = session.scalars(select(MintBatch).where(MintBatch.kind == "set_authority"))
        (event,) = session.scalars(select(Event).where(Event.type == "mint_authority_changed"))
    new_authority = Pubkey.from_string(rotation.payload["new_authority"])
    assert rotation.status == "confirmed" and rotation.signer == "file"
    assert old.chain.mint_info(old.grx.address).mint_authority == new_authority
    certificates = old.certificate_mint.address  # moved in the same transaction
    assert old.chain.mint_info(certificates).mint_authority == new_authority
    assert permanent_delegate_of(bytes(old.chain.account(certificates).data)) == new_authority
    assert rotation.payload["certificate_mint"] == str(certificates)
    assert event.payload["transaction_signature"] == rotation.signature
    assert f"moved from {old.pipeline.target.authority.pubkey} to {new_authority}" in result.stdout
    with pytest.raises(MintMismatch, match=r"not \S+ \(the configured signer, file\)"):
        make_minter(bootstrap(make_settings(**file_env)))  # the old key is refused at start
    stranger = openbao.env(openbao.new_transit_key())
    with pytest.raises(MintMismatch, match="vault-transit:transit/"):
        make_minter(bootstrap(make_settings(**file_env, **stranger)))
    new_app = bootstrap(make_settings(**file_env, **transit_env))
    new = make_minter(new_app)
    assert new.pipeline.target.authority.pubkey == new_authority
    with new_app.sessions() as session:
        seed_readings(session, producers, 3, start=T0 + timedelta(days=3))
    new.pipeline.run_cycle()
    assert count_by_status(new_app) == {"minted": 4 * 2 + 4 * 3}
    with new_app.sessions() as session:
        later = session.scalars(
            select(MintBatch).where(MintBatch.kind == "mint", MintBatch.id > rotation.id)
        ).all()
    assert later and all(b.signer == f"vault-transit:transit/{key}" for b in later)
    for batch in later:
        tx = Transaction.from_bytes(batch.raw_tx)
        assert new_authority in tx.message.account_keys[: tx.message.header.num_required_signatures]
        tx.verify()
    first, second = expected_units(4, 2), expected_units(4, 3)
    expected = {wallet: first[wallet] + second[wallet] for wallet in first}
    assert_credited(new.chain, new.grx.address, new.grx.token_program, expected)
    supply = new.chain.token_supply(new.grx.address)
    assert supply == new.grx.bootstrap_supply + sum(expected.values())
    app.close()
    new_app.close()
