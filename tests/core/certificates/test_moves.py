"""Certificate moves in the database: planned once into the outbox, re-planned only when
the previous operation cannot land, outcomes applied once with their events; and the
supply bounds of reconciliation. No chain: the outbox rows are set as the chain would."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from solders.keypair import Keypair
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.certificates.issuance import issue_due
from core.certificates.lifecycle import approve_certificate
from core.certificates.moves import apply_outcomes, build_move, due_moves, plan_move
from core.certificates.reconcile import check_certificate_supply
from core.chain.certificate_instructions import decode_burn_checked
from core.chain.instructions import decode_memo, decode_mint_to
from core.chain.signer import as_signer
from core.db.models import (
    Certificate,
    CertificateMint,
    CertificateOperation,
    Event,
    MintBatch,
)
from core.minting.outbox import Outbox
from tests.core.certificates.support import device_meter, minted
from tests.factories import make_user

H0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = H0 + timedelta(hours=2)


def outbox(sessions: sessionmaker[Session]) -> Outbox:
    key = as_signer(Keypair())
    return Outbox(
        sessions, None, [key], lambda: None, stop=threading.Event(), clock=lambda: NOW,  # type: ignore[arg-type]
        poll_interval=0, rebroadcast_interval=0, settle_timeout=0,
    )  # fmt: skip


def issued(sessions: sessionmaker[Session], kwh: str = "1.2345") -> int:
    with sessions() as session:
        meter = device_meter(session)
        minted(session, meter, H0, kwh)
        issue_due(session, now=NOW, auto_issue=True)
        return session.scalars(select(Certificate.id)).one()


def settle(session: Session, operation_id: int, status: str, error: str | None = None) -> None:
    session.execute(
        update(MintBatch)
        .where(MintBatch.id == operation_id)
        .values(status=status, signature=f"sig{operation_id}", error=error)
    )
    session.commit()


def test_an_issue_is_planned_once_and_built_with_its_memo(sessions) -> None:
    certificate_id = issued(sessions)
    box = outbox(sessions)
    with sessions() as session:
        assert due_moves(session, 10) == [certificate_id]
        move = plan_move(session, box, certificate_id, now=NOW)
        assert move is not None and plan_move(session, box, certificate_id, now=NOW) is None
        assert due_moves(session, 10) == []
        row = session.get(MintBatch, move.operation_id)
        assert (row.kind, row.status, row.total_base_units) == (
            "certificate_issue",
            "planned",
            1234,
        )
        links = session.scalars(select(CertificateOperation)).all()
        assert [(link.certificate_id, link.action) for link in links] == [(certificate_id, "issue")]
    mint, authority, payer = (Keypair().pubkey() for _ in range(3))
    _create, mint_ix, memo_ix = build_move(move, mint=mint, authority=authority, payer=payer)
    decoded = decode_mint_to(mint_ix)
    assert (decoded.mint, decoded.authority, decoded.amount, decoded.decimals) == (
        mint,
        authority,
        1234,
        6,
    )
    assert decode_memo(memo_ix) == f"gridtokenx:gc:{move.payload['bundle_id']}:1-1234"


def test_expired_is_replanned_confirmed_is_applied_once(sessions) -> None:
    certificate_id = issued(sessions)
    box = outbox(sessions)
    with sessions() as session:
        first = plan_move(session, box, certificate_id, now=NOW)
        settle(session, first.operation_id, "expired")
        second = plan_move(session, box, certificate_id, now=NOW)
        assert second is not None and second.operation_id != first.operation_id
        settle(session, second.operation_id, "confirmed")
        assert apply_outcomes(session, now=NOW) == 1
        assert apply_outcomes(session, now=NOW) == 0
        certificate = session.get(Certificate, certificate_id)
        session.refresh(certificate)
        assert (certificate.status, certificate.issue_signature) == (
            "active",
            f"sig{second.operation_id}",
        )
        events = session.scalars(select(Event).where(Event.type == "certificate_issued")).all()
        assert [(e.payload["wh"], e.user_id) for e in events] == [(1234, certificate.holder_id)]
        assert due_moves(session, 10) == []


def test_a_failed_issue_retries_three_times_a_failed_retirement_goes_back(sessions) -> None:
    certificate_id = issued(sessions)
    box = outbox(sessions)
    with sessions() as session:
        for attempt in range(3):
            move = plan_move(session, box, certificate_id, now=NOW)
            assert move is not None, attempt
            settle(session, move.operation_id, "failed", "custom program error")
            apply_outcomes(session, now=NOW)
        assert due_moves(session, 10) == []  # waits for an admin now
        certificate = session.get(Certificate, certificate_id)
        session.refresh(certificate)
        assert (certificate.status, certificate.attempts) == ("issuing", 3)
        assert certificate.last_error == "custom program error"
        admin = make_user(session, "root", role="admin")
        approve_certificate(session, certificate_id, admin, now=NOW)  # the cause was fixed
        assert due_moves(session, 10) == [certificate_id]
        move = plan_move(session, box, certificate_id, now=NOW)
        settle(session, move.operation_id, "confirmed")
        apply_outcomes(session, now=NOW)
        session.refresh(certificate)
        assert certificate.status == "active"
        # A retirement whose burn fails leaves the holder's certificate active.
        session.execute(
            update(Certificate)
            .where(Certificate.id == certificate_id)
            .values(status="retiring", operation_id=None)
        )
        session.commit()
        move = plan_move(session, box, certificate_id, now=NOW)
        assert move is not None and move.kind == "certificate_retire"
        [burn, _] = build_move(
            move, mint=Keypair().pubkey(), authority=Keypair().pubkey(), payer=Keypair().pubkey()
        )
        assert decode_burn_checked(burn).amount == 1234
        settle(session, move.operation_id, "failed", "insufficient funds")
        apply_outcomes(session, now=NOW)
        session.refresh(certificate)
        assert certificate.status == "active"


def test_supply_bounds_follow_landed_and_sent_operations(sessions) -> None:
    with sessions() as session:
        session.add(CertificateMint(address="M", rpc_url="x", authority="a", bootstrap_supply=5))
        for kind, status, wh in [
            ("certificate_issue", "confirmed", 1000),
            ("certificate_issue", "signed", 300),
            ("certificate_issue", "expired", 7000),  # never landed
            ("certificate_retire", "confirmed", 200),
            ("certificate_cancel", "signed", 50),
            ("certificate_transfer", "confirmed", 400),  # supply-neutral
            ("mint", "confirmed", 99_999),  # GRX: another mint
        ]:
            session.add(
                MintBatch(
                    kind=kind, status=status, total_base_units=wh, attempt=1, total_readings=0
                )
            )
        session.commit()
    # lower = 5 + 1000 - (200 + 50); upper = 5 + 1300 - 200
    for supply, ok in [(755, True), (1105, True), (754, False), (1106, False), (805, True)]:
        assert check_certificate_supply(sessions, "M", lambda s=supply: s).ok is ok, supply


def test_a_transfer_moves_the_holder_and_tells_both(sessions) -> None:
    certificate_id = issued(sessions)
    box = outbox(sessions)
    with sessions() as session:
        buyer = make_user(session, "buyer")
        first = plan_move(session, box, certificate_id, now=NOW)
        settle(session, first.operation_id, "confirmed")
        apply_outcomes(session, now=NOW)
        certificate = session.get(Certificate, certificate_id)
        seller = certificate.holder_id
        session.execute(
            update(Certificate)
            .where(Certificate.id == certificate_id)
            .values(
                status="transferring",
                operation_id=None,
                pending_holder_id=buyer.id,
                pending_wallet=buyer.wallet_address,
            )
        )
        session.commit()
        move = plan_move(session, box, certificate_id, now=NOW)
        _create, burn, mint_ix, _ = build_move(
            move, mint=Keypair().pubkey(), authority=Keypair().pubkey(), payer=Keypair().pubkey()
        )
        assert decode_burn_checked(burn).amount == decode_mint_to(mint_ix).amount == 1234
        settle(session, move.operation_id, "confirmed")
        apply_outcomes(session, now=NOW)
        session.refresh(certificate)
        assert (certificate.status, certificate.holder_id, certificate.holder_wallet) == (
            "active",
            buyer.id,
            buyer.wallet_address,
        )
        told = session.scalars(select(Event).where(Event.type == "certificate_transferred")).all()
        assert sorted(e.user_id for e in told) == sorted([seller, buyer.id])
        assert {(e.payload["from_user_id"], e.payload["to_user_id"]) for e in told} == {
            (seller, buyer.id)
        }


def test_daily_totals_follow_issuance_and_retirement(sessions) -> None:
    from core.db.models import CertificateDaily, User
    from core.views.certificates import daily_totals

    certificate_id = issued(sessions)
    box = outbox(sessions)
    with sessions() as session:
        first = plan_move(session, box, certificate_id, now=NOW)
        settle(session, first.operation_id, "confirmed")
        apply_outcomes(session, now=NOW)
        session.execute(
            update(Certificate)
            .where(Certificate.id == certificate_id)
            .values(status="retiring", operation_id=None)
        )
        session.commit()
        move = plan_move(session, box, certificate_id, now=NOW)
        settle(session, move.operation_id, "confirmed")
        apply_outcomes(session, now=NOW)
        rows = {(r.status, r.wh) for r in session.scalars(select(CertificateDaily))}
        assert rows == {("issued", 1234), ("retired", 1234)}
        staff = User(id=0, username="ops", role="operator")
        totals = daily_totals(session, staff, since=NOW - timedelta(days=1))
        assert [(t.status, t.technology, t.grid_region, t.wh) for t in totals] == [
            ("issued", "solar_pv", "TH-PEA", 1234),
            ("retired", "solar_pv", "TH-PEA", 1234),
        ]
        assert totals[0].day_start == int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
