"""Certificates through the real mint pipeline, the outbox and the node (SQLite and
PostgreSQL): minted hours become bundles minted on the certificate mint exactly once,
whatever crashes between persisting and sending; the supply reconciles."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from sqlalchemy import select

from core.certificates.reconcile import check_certificate_supply
from core.chain.instructions import (
    MEMO_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    associated_token_address,
)
from core.db.models import Certificate, CertificateBundle, Event, MintBatch, User
from tests.core.certificates.support import device_meter
from tests.factories import make_reading

HOUR = timedelta(hours=1)


def hours_ago(n: int) -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - n * HOUR


def certificate_balance(minter, wallet: str) -> int:
    account = associated_token_address(
        Pubkey.from_string(wallet), minter.certificate_mint.address, TOKEN_2022_PROGRAM_ID
    )
    return minter.chain.token_balance(account)


def seed(app) -> tuple[dict[str, int], dict[str, int]]:
    """Two devices, three closed hours of pending readings; (mWh, wallet) per owner."""
    energy: dict[str, int] = {}
    with app.sessions() as session:
        for index in range(2):
            meter = device_meter(session)
            owner = session.get(User, meter.owner_id)
            assert owner is not None and owner.wallet_address
            for quarter in range(12):
                micro = 250_123 + 1_001 * quarter + index
                at = hours_ago(3) + timedelta(minutes=15 * quarter)
                make_reading(session, meter, kwh=f"{micro / 10**6:.6f}", at=at)
                energy[owner.wallet_address] = energy.get(owner.wallet_address, 0) + micro
    return energy, {wallet: mwh // 1000 for wallet, mwh in energy.items()}


def assert_reconciles(minter, app, issued_wh: int) -> None:
    supply = minter.chain.token_supply(minter.certificate_mint.address)
    assert supply == minter.certificate_mint.bootstrap_supply + issued_wh
    mint = str(minter.certificate_mint.address)
    assert check_certificate_supply(app.sessions, mint, lambda: supply).ok
    assert not check_certificate_supply(app.sessions, mint, lambda: supply + 1).ok


def test_minted_hours_become_certificates_on_chain(mint_app, make_minter) -> None:
    minter = make_minter()
    _, expected = seed(mint_app)
    assert minter.pipeline.run_cycle().claimed_readings == 24
    report = minter.certificates.run_cycle()
    assert report.issued.bundles == 6 and report.planned == 6 and report.applied == 6
    assert {w: certificate_balance(minter, w) for w in expected} == expected
    with mint_app.sessions() as session:
        certificates = session.scalars(select(Certificate)).all()
        assert {c.status for c in certificates} == {"active"}
        assert sum(c.wh for c in certificates) == sum(expected.values())
        operations = session.scalars(
            select(MintBatch).where(MintBatch.kind == "certificate_issue")
        ).all()
        assert len(operations) == 6 and all(o.status == "confirmed" for o in operations)
        assert all(o.signer == "file" for o in operations)
        issued = session.scalars(select(Event).where(Event.type == "certificate_issued")).all()
        assert sorted(e.payload["wh"] for e in issued) == sorted(c.wh for c in certificates)
        # Each transaction carries its bundle's memo with the Wh id range.
        bundles = {b.id: b for b in session.scalars(select(CertificateBundle))}
        for operation in operations:
            bundle = bundles[operation.payload["bundle_id"]]
            message = Transaction.from_bytes(operation.raw_tx).message
            memos = [
                bytes(ix.data).decode()
                for ix in message.instructions
                if message.account_keys[ix.program_id_index] == MEMO_PROGRAM_ID
            ]
            assert memos == [f"gridtokenx:gc:{bundle.id}:{bundle.first_id}-{bundle.last_id}"]
            assert operation.total_base_units == bundle.wh
    assert_reconciles(minter, mint_app, sum(expected.values()))
    assert minter.certificates.run_cycle().planned == 0  # nothing issues twice


def test_a_crash_between_persist_and_send_mints_once(
    mint_app, make_minter, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_minter()
    _, expected = seed(mint_app)
    first.pipeline.run_cycle()

    def lost(*_args, **_kwargs):
        raise SystemExit("killed after the signed bytes were committed")

    monkeypatch.setattr(first.certificates.outbox, "broadcast", lost)
    with pytest.raises(SystemExit):
        first.certificates.run_cycle()
    with mint_app.sessions() as session:
        signed = session.scalars(
            select(MintBatch).where(MintBatch.kind == "certificate_issue")
        ).all()
        assert len(signed) == 6 and {o.status for o in signed} == {"signed"}
    # A fresh scheduler recovers the signed moves: the same bytes, so each lands once.
    second = make_minter()
    second.certificates.run_cycle()
    second.certificates.run_cycle()
    assert {w: certificate_balance(second, w) for w in expected} == expected
    with mint_app.sessions() as session:
        operations = session.scalars(
            select(MintBatch).where(MintBatch.kind == "certificate_issue")
        ).all()
        assert len(operations) == 6  # nothing was planned again
    assert_reconciles(second, mint_app, sum(expected.values()))


def test_transfer_retire_and_cancel_burn_exactly_what_they_say(mint_app, make_minter) -> None:
    from core.certificates.lifecycle import (
        cancel_certificate,
        parse_claim,
        retire_certificate,
        transfer_certificate,
    )
    from tests.factories import make_user

    minter = make_minter()
    _, expected = seed(mint_app)
    minter.pipeline.run_cycle()
    minter.certificates.run_cycle()
    now = datetime.now(UTC)
    with mint_app.sessions() as session:
        buyer = make_user(session, "buyer")
        admin = make_user(session, "root", role="admin")
        first_of = {}
        for certificate in session.scalars(select(Certificate).order_by(Certificate.id)):
            first_of.setdefault(certificate.holder_wallet, certificate)
        (seller_wallet, sold), (other_wallet, cancelled) = list(first_of.items())[:2]
        seller = session.get(User, sold.holder_id)
        # 100 Wh of the seller's first certificate to the buyer; the buyer retires 40 of them.
        moving = transfer_certificate(
            session, sold.id, "buyer", seller, now=now,
            first_id=sold.first_id + 10, last_id=sold.first_id + 109,
        )  # fmt: skip
        cancel_certificate(session, cancelled.id, "meter found faulty", admin, now=now)
        cancelled_wh = cancelled.wh
    minter.certificates.run_cycle()
    with mint_app.sessions() as session:
        buyer = session.get(User, buyer.id)
        claim = parse_claim(
            {"beneficiary": "Plant 3", "purpose": "Scope 2", "period_start": "2026-12-01",
             "period_end": "2026-12-01", "country": "TH"}
        )  # fmt: skip
        retire_certificate(
            session, moving.id, claim, buyer, now=now,
            first_id=moving.first_id, last_id=moving.first_id + 39,
        )  # fmt: skip
    minter.certificates.run_cycle()
    # Oracle: integer arithmetic on what was asked.
    assert certificate_balance(minter, seller_wallet) == expected[seller_wallet] - 100
    assert certificate_balance(minter, other_wallet) == expected[other_wallet] - cancelled_wh
    assert certificate_balance(minter, buyer.wallet_address) == 100 - 40
    issued_wh = sum(expected.values())
    assert_reconciles(minter, mint_app, issued_wh - 40 - cancelled_wh)
    with mint_app.sessions() as session:
        statuses = {
            c.id: c.status for c in session.scalars(select(Certificate)) if c.status != "active"
        }
        assert sorted(statuses.values()) == ["cancelled", "retired", "split", "split"]
        kinds = session.scalars(
            select(MintBatch.kind).where(MintBatch.kind != "certificate_issue")
        ).all()
        assert sorted(k for k in kinds if k.startswith("certificate")) == [
            "certificate_cancel",
            "certificate_retire",
            "certificate_transfer",
        ]


def test_two_schedulers_at_once_mint_each_certificate_once(mint_app, make_minter) -> None:
    first, second = make_minter(), make_minter()
    _, expected = seed(mint_app)
    first.pipeline.run_cycle()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def cycle(minter) -> None:
        try:
            barrier.wait()
            for _ in range(2):
                minter.certificates.run_cycle()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=cycle, args=(m,)) for m in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    first.certificates.run_cycle()  # settle whatever a loser left in flight
    assert {w: certificate_balance(first, w) for w in expected} == expected
    with mint_app.sessions() as session:
        landed = session.scalars(
            select(MintBatch).where(
                MintBatch.kind == "certificate_issue", MintBatch.status == "confirmed"
            )
        ).all()
        assert len(landed) == 6  # one landed issue per bundle, whoever planned it
    assert_reconciles(first, mint_app, sum(expected.values()))
