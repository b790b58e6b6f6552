"""Certificate moves, field by field: what planning writes (payload, outbox row, link,
certificate), when a move may be planned again, the instructions of every kind, and every
field and event an outcome writes. Expected values are written out here; operations are
outbox rows set as the chain would leave them."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.certificates.issuance import issue_due
from core.certificates.moves import (
    MAX_ISSUE_ATTEMPTS,
    PlannedMove,
    apply_outcomes,
    build_move,
    due_moves,
    plan_move,
)
from core.chain.certificate_instructions import decode_burn_checked
from core.chain.instructions import (
    TOKEN_2022_PROGRAM_ID,
    associated_token_address,
    decode_create_associated_token_account_idempotent,
    decode_memo,
    decode_mint_to,
)
from core.chain.signer import as_signer
from core.db.models import (
    Certificate,
    CertificateBundle,
    CertificateDaily,
    CertificateOperation,
    Event,
    Meter,
    MintBatch,
)
from core.minting.outbox import Outbox
from tests.core.certificates.support import device_meter, minted
from tests.factories import make_user

H0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = H0 + timedelta(hours=2)
LATER = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)  # the clock of the writes under test
ACTIONS = {"issuing": "issue", "transferring": "transfer", "retiring": "retire",
           "cancelling": "cancel"}  # fmt: skip


def outbox(sessions: sessionmaker[Session]) -> Outbox:
    return Outbox(
        sessions, None, [as_signer(Keypair())], lambda: None, stop=threading.Event(),  # type: ignore[arg-type]
        clock=lambda: NOW, poll_interval=0, rebroadcast_interval=0, settle_timeout=0,
    )  # fmt: skip


def certificates(sessions: sessionmaker[Session], kwh: list[str]) -> list[int]:
    """One issued certificate per amount, each its own hour of one device (1 kWh = 1000 Wh)."""
    with sessions() as session:
        meter = device_meter(session)
        for hour, amount in enumerate(kwh):
            minted(session, meter, H0 - timedelta(hours=hour + 1), amount)
        issue_due(session, now=NOW, auto_issue=True)
        return list(session.scalars(select(Certificate.id).order_by(Certificate.id)))


def put(session: Session, certificate_id: int, **values: object) -> Certificate:
    session.execute(update(Certificate).where(Certificate.id == certificate_id).values(**values))
    session.commit()
    certificate = session.get(Certificate, certificate_id)
    session.refresh(certificate)
    return certificate


def operation(session: Session, status: str, *, error: str | None = None) -> int:
    batch = MintBatch(kind="certificate_issue", status=status, attempt=1, total_readings=0,
                      error=error)  # fmt: skip
    session.add(batch)
    session.flush()
    batch.signature = f"sig{batch.id}"
    session.commit()
    return batch.id


def operations_count(session: Session) -> int:
    return session.scalar(select(func.count(MintBatch.id)))


@pytest.mark.parametrize("status", list(ACTIONS))
def test_planning_writes_the_payload_the_row_the_link_and_the_pointer(
    sessions: sessionmaker[Session], status: str
) -> None:
    [cid] = certificates(sessions, ["1.5"])
    with sessions() as session:
        buyer = make_user(session, "buyer")
        certificate = put(session, cid, status=status, pending_holder_id=buyer.id,
                          pending_wallet=buyer.wallet_address)  # fmt: skip
        bundle_id, holder_wallet = certificate.bundle_id, certificate.holder_wallet
        move = plan_move(session, outbox(sessions), cid, now=LATER)
        assert move is not None
        payload = {
            "certificate_id": cid, "bundle_id": bundle_id, "action": ACTIONS[status],
            "wh": 1500, "first_id": 1, "last_id": 1500, "holder_wallet": holder_wallet,
            "to_wallet": buyer.wallet_address,
        }  # fmt: skip
        kind = f"certificate_{ACTIONS[status]}"
        assert move == PlannedMove(move.operation_id, kind, payload)
        row = session.get(MintBatch, move.operation_id)
        assert (row.kind, row.status, row.total_base_units, row.payload) == (
            kind,
            "planned",
            1500,
            payload,
        )
        session.refresh(certificate)
        assert (certificate.operation_id, certificate.updated_at, certificate.status) == (
            move.operation_id,
            LATER,
            status,
        )
        links = session.execute(select(CertificateOperation.certificate_id,
                                       CertificateOperation.operation_id,
                                       CertificateOperation.action)).all()  # fmt: skip
        assert [tuple(link) for link in links] == [(cid, move.operation_id, ACTIONS[status])]


def test_nothing_is_planned_for_an_unknown_or_a_settled_certificate(
    sessions: sessionmaker[Session],
) -> None:
    [cid] = certificates(sessions, ["1"])
    box = outbox(sessions)
    with sessions() as session:
        assert plan_move(session, box, cid + 99, now=LATER) is None
        for status in ("active", "retired", "cancelled", "review"):
            put(session, cid, status=status)
            assert plan_move(session, box, cid, now=LATER) is None
        assert operations_count(session) == 0
        assert session.scalar(select(func.count()).select_from(CertificateOperation)) == 0


@pytest.mark.parametrize(
    ("status", "previous", "attempts", "again"),
    [
        ("issuing", "planned", 0, False),
        ("issuing", "signed", 0, False),
        ("issuing", "confirmed", 0, False),
        ("issuing", "expired", 5, True),  # never landed: whatever the attempts
        ("issuing", "failed", 0, False),  # its outcome is applied first (the pointer cleared)
        ("retiring", "failed", 0, False),  # a failed burn goes back to active instead
        ("retiring", "expired", 0, True),
        ("transferring", "signed", 0, False),
        ("cancelling", "expired", 0, True),
    ],
)
def test_a_move_is_planned_again_only_when_its_operation_cannot_land(
    sessions: sessionmaker[Session], status: str, previous: str, attempts: int, again: bool
) -> None:
    [cid] = certificates(sessions, ["1"])
    with sessions() as session:
        seen = operation(session, previous)
        put(session, cid, status=status, operation_id=seen, attempts=attempts,
            pending_wallet="w")  # fmt: skip
        assert due_moves(session, 10) == ([cid] if again else [])
        before = operations_count(session)
        move = plan_move(session, outbox(sessions), cid, now=LATER)
        certificate = session.get(Certificate, cid)
        session.refresh(certificate)
        if again:
            assert move is not None and move.operation_id not in (seen, None)
            assert certificate.operation_id == move.operation_id
            assert operations_count(session) == before + 1
        else:
            assert move is None and certificate.operation_id == seen
            assert operations_count(session) == before  # rolled back, nothing planned


@pytest.mark.parametrize(("attempts", "again"), [(0, True), (MAX_ISSUE_ATTEMPTS - 1, True),
                                                  (MAX_ISSUE_ATTEMPTS, False)])  # fmt: skip
def test_an_issue_is_tried_again_until_it_is_out_of_attempts(
    sessions: sessionmaker[Session], attempts: int, again: bool
) -> None:
    [cid] = certificates(sessions, ["1"])
    with sessions() as session:
        put(session, cid, attempts=attempts)  # as a failure's outcome leaves it: no operation
        assert due_moves(session, 10) == ([cid] if again else [])
        move = plan_move(session, outbox(sessions), cid, now=LATER)
        assert (move is not None) is again
        assert operations_count(session) == (1 if again else 0)
        put(session, cid, status="retiring")  # the limit is an issue's only
        assert due_moves(session, 10) == ([] if again else [cid])


def test_a_failure_counts_once_however_often_outcomes_are_applied(
    sessions: sessionmaker[Session],
) -> None:
    [cid] = certificates(sessions, ["1"])
    box = outbox(sessions)
    with sessions() as session:
        for attempt in range(1, MAX_ISSUE_ATTEMPTS + 1):
            move = plan_move(session, box, cid, now=LATER)
            assert move is not None, attempt
            session.execute(update(MintBatch).where(MintBatch.id == move.operation_id)
                            .values(status="failed", error=f"error {attempt}"))  # fmt: skip
            session.commit()
            assert apply_outcomes(session, now=LATER) == 1
            assert apply_outcomes(session, now=LATER + timedelta(seconds=5)) == 0  # next cycle
            assert row(session, cid)["attempts"] == attempt
        assert row(session, cid)["last_error"] == f"error {MAX_ISSUE_ATTEMPTS}"
        assert due_moves(session, 10) == [] and plan_move(session, box, cid, now=LATER) is None
        assert operations_count(session) == MAX_ISSUE_ATTEMPTS


def test_due_moves_are_the_moving_certificates_without_a_live_operation_in_id_order(
    sessions: sessionmaker[Session],
) -> None:
    ids = certificates(sessions, ["1", "1", "1", "1", "1"])
    with sessions() as session:
        put(session, ids[0], status="active")  # not moving
        put(session, ids[1], status="cancelling")
        put(session, ids[2], status="retiring", operation_id=operation(session, "signed"))
        put(session, ids[3], status="transferring", operation_id=operation(session, "expired"),
            pending_wallet="w")  # fmt: skip
        assert due_moves(session, 10) == [ids[1], ids[3], ids[4]]
        assert due_moves(session, 2) == [ids[1], ids[3]]


def test_every_kind_is_built_from_its_payload(sessions: sessionmaker[Session]) -> None:
    mint, authority, payer = (Keypair().pubkey() for _ in range(3))
    holder, buyer = (Keypair().pubkey() for _ in range(2))

    def ata(owner: Pubkey) -> Pubkey:
        return associated_token_address(owner, mint, TOKEN_2022_PROGRAM_ID)

    payload = {"certificate_id": 41, "bundle_id": 7, "first_id": 101, "last_id": 350, "wh": 250,
               "holder_wallet": str(holder), "to_wallet": str(buyer)}  # fmt: skip

    def built(kind: str, action: str) -> list:
        move = PlannedMove(1, kind, {**payload, "action": action})
        return build_move(move, mint=mint, authority=authority, payer=payer)

    create, mint_ix, memo_ix = built("certificate_issue", "issue")
    ata_params = decode_create_associated_token_account_idempotent(create)
    assert (ata_params.payer, ata_params.owner, ata_params.mint, ata_params.token_program) == (
        payer, holder, mint, TOKEN_2022_PROGRAM_ID
    )  # fmt: skip
    minted_to = decode_mint_to(mint_ix)
    assert tuple(minted_to) == (TOKEN_2022_PROGRAM_ID, mint, ata(holder), authority, 250, 6)
    assert decode_memo(memo_ix) == "gridtokenx:gc:7:101-350"

    create, burn, mint_ix, memo_ix = built("certificate_transfer", "transfer")
    assert decode_create_associated_token_account_idempotent(create).owner == buyer
    assert tuple(decode_burn_checked(burn)) == (
        ata(holder), mint, authority, 250, 6, TOKEN_2022_PROGRAM_ID
    )  # fmt: skip
    assert tuple(decode_mint_to(mint_ix)) == (
        TOKEN_2022_PROGRAM_ID, mint, ata(buyer), authority, 250, 6
    )  # fmt: skip
    assert decode_memo(memo_ix) == "gridtokenx:gc-transfer:41:101-350"

    for kind, action in (("certificate_retire", "retire"), ("certificate_cancel", "cancel")):
        burn, memo_ix = built(kind, action)
        assert tuple(decode_burn_checked(burn)) == (
            ata(holder), mint, authority, 250, 6, TOKEN_2022_PROGRAM_ID
        )  # fmt: skip
        assert decode_memo(memo_ix) == f"gridtokenx:gc-{action}:41:101-350"


def settled(
    sessions: sessionmaker[Session], status: str, outcome: str, **values: object
) -> tuple[int, int]:
    """A certificate in `status` whose operation ended as `outcome`: (id, operation)."""
    [cid] = certificates(sessions, ["1.25"])
    with sessions() as session:
        op = operation(session, outcome, error="custom program error 0x1")
        put(session, cid, status=status, operation_id=op, **values)
    return cid, op


def row(session: Session, cid: int) -> dict[str, object]:
    certificate = session.get(Certificate, cid)
    session.refresh(certificate)
    names = ("status", "holder_id", "holder_wallet", "pending_holder_id", "pending_wallet",
             "attempts", "last_error", "issue_signature", "finished_at", "updated_at",
             "operation_id")  # fmt: skip
    return {name: getattr(certificate, name) for name in names}


@pytest.mark.parametrize(
    ("status", "ended", "event"),
    [("issuing", "active", "certificate_issued"), ("retiring", "retired", "certificate_retired"),
     ("cancelling", "cancelled", "certificate_cancelled")],
)  # fmt: skip
def test_a_confirmed_move_writes_every_field_and_its_event(
    sessions: sessionmaker[Session], status: str, ended: str, event: str
) -> None:
    claim = {"beneficiary": "Bakery", "purpose": "Scope 2", "period_start": date(2026, 1, 1),
             "period_end": date(2026, 3, 31), "claim_country": "TH",
             "cancel_reason": "meter fault"}  # fmt: skip
    cid, op = settled(sessions, status, "confirmed", attempts=2, last_error="old",
                         issue_signature=None if status == "issuing" else "issued-sig",
                         **claim)  # fmt: skip
    with sessions() as session:
        before = row(session, cid)
        assert apply_outcomes(session, now=LATER) == 1
        after = row(session, cid)
        expected = {**before, "status": ended, "last_error": None, "updated_at": LATER}
        if status == "issuing":
            expected["issue_signature"] = f"sig{op}"
        else:
            expected["finished_at"] = LATER
        assert after == expected
        assert apply_outcomes(session, now=LATER) == 0  # applied once
        certificate = session.get(Certificate, cid)
        bundle = session.get(CertificateBundle, certificate.bundle_id)
        serial = session.scalar(select(Meter.serial).where(Meter.id == bundle.meter_id))
        [published] = session.scalars(select(Event).where(Event.type.like("certificate_%")))
        payload = {
            "certificate_id": cid, "bundle_id": bundle.id, "meter_serial": serial,
            "hour_start": "2026-11-20T07:00:00Z", "wh": 1250, "first_id": 1, "last_id": 1250,
            "technology": "solar_pv", "grid_region": "TH-PEA", "transaction_signature": f"sig{op}",
            "user_id": certificate.holder_id,
        }  # fmt: skip
        if status == "retiring":
            payload |= {"beneficiary": "Bakery", "purpose": "Scope 2",
                        "period_start": "2026-01-01", "period_end": "2026-03-31",
                        "country": "TH"}  # fmt: skip
        if status == "cancelling":
            payload["reason"] = "meter fault"
        assert (published.type, published.user_id, published.created_at, published.payload) == (
            event,
            certificate.holder_id,
            LATER,
            payload,
        )
        daily = {(d.day, d.technology, d.grid_region, d.status): d.wh
                 for d in session.scalars(select(CertificateDaily))}  # fmt: skip
        issued_day = (date(2026, 11, 20), "solar_pv", "TH-PEA", "issued")
        if status == "issuing":
            assert daily == {issued_day: 1250}
        else:  # counted on the day it ended
            assert daily == {
                issued_day: 1250,
                (date(2026, 11, 23), "solar_pv", "TH-PEA", ended): 1250,
            }


def test_a_retirement_without_a_period_says_none(sessions: sessionmaker[Session]) -> None:
    settled(sessions, "retiring", "confirmed")
    with sessions() as session:
        apply_outcomes(session, now=LATER)
        [published] = session.scalars(select(Event).where(Event.type == "certificate_retired"))
        assert [published.payload[k] for k in ("beneficiary", "purpose", "period_start",
                                               "period_end", "country")] == [None] * 5  # fmt: skip


def test_a_confirmed_transfer_moves_the_holder_and_tells_each_side_once(
    sessions: sessionmaker[Session],
) -> None:
    [cid] = certificates(sessions, ["1.25"])
    with sessions() as session:
        buyer = make_user(session, "buyer")
        op = operation(session, "confirmed")
        seller = put(session, cid, status="transferring", operation_id=op,
                     pending_holder_id=buyer.id, pending_wallet=buyer.wallet_address,
                     issue_signature="issued-sig", last_error="old").holder_id  # fmt: skip
        before = row(session, cid)
        assert apply_outcomes(session, now=LATER) == 1
        assert row(session, cid) == {
            **before, "status": "active", "holder_id": buyer.id,
            "holder_wallet": buyer.wallet_address, "pending_holder_id": None,
            "pending_wallet": None, "last_error": None, "updated_at": LATER,
        }  # fmt: skip
        told = session.scalars(select(Event).where(Event.type == "certificate_transferred")
                               .order_by(Event.id)).all()  # fmt: skip
        assert [(e.user_id, e.payload["user_id"], e.created_at) for e in told] == [
            (seller, seller, LATER),
            (buyer.id, buyer.id, LATER),
        ]
        assert all(
            (e.payload["from_user_id"], e.payload["to_user_id"], e.payload["wh"])
            == (seller, buyer.id, 1250)
            for e in told
        )
        assert session.scalar(select(func.count()).select_from(CertificateDaily)) == 1  # issued


def test_a_transfer_to_oneself_is_told_once(sessions: sessionmaker[Session]) -> None:
    [cid] = certificates(sessions, ["1"])
    with sessions() as session:
        op = operation(session, "confirmed")
        certificate = session.get(Certificate, cid)
        put(session, cid, status="transferring", operation_id=op,
            pending_holder_id=certificate.holder_id,
            pending_wallet=certificate.holder_wallet)  # fmt: skip
        apply_outcomes(session, now=LATER)
        told = session.scalars(select(Event).where(Event.type == "certificate_transferred")).all()
        assert [e.user_id for e in told] == [certificate.holder_id]


@pytest.mark.parametrize("status", list(ACTIONS))
def test_a_failed_move_counts_the_attempt_and_keeps_or_returns_the_certificate(
    sessions: sessionmaker[Session], status: str
) -> None:
    [cid] = certificates(sessions, ["1"])
    with sessions() as session:
        buyer = make_user(session, "buyer")
        op = operation(session, "failed", error="custom program error 0x1")
        put(session, cid, status=status, operation_id=op, attempts=1, pending_holder_id=buyer.id,
            pending_wallet=buyer.wallet_address)  # fmt: skip
        before = row(session, cid)
        assert apply_outcomes(session, now=LATER) == 1
        expected = {**before, "attempts": 2, "last_error": "custom program error 0x1",
                    "updated_at": LATER}  # fmt: skip
        if status == "issuing":  # free for the next attempt
            expected["operation_id"] = None
        else:  # nothing moved: the holder keeps it, active
            expected |= {"status": "active", "pending_holder_id": None, "pending_wallet": None}
        assert row(session, cid) == expected
        moved = select(func.count(Event.id)).where(Event.type.like("certificate_%"))
        assert session.scalar(moved) == 0  # no event for a failure
        assert apply_outcomes(session, now=LATER) == 0


def test_only_landed_or_failed_operations_are_applied_up_to_the_limit(
    sessions: sessionmaker[Session],
) -> None:
    ids = certificates(sessions, ["1", "1", "1", "1", "1"])
    outcomes = ["signed", "expired", "confirmed", "confirmed", "confirmed"]
    with sessions() as session:
        for cid, outcome in zip(ids, outcomes, strict=True):
            put(session, cid, status="issuing", operation_id=operation(session, outcome))
        assert apply_outcomes(session, now=LATER, limit=1) == 1
        statuses = session.scalars(select(Certificate.status).order_by(Certificate.id)).all()
        assert statuses == ["issuing", "issuing", "active", "issuing", "issuing"]  # id order
        assert apply_outcomes(session, now=LATER) == 2
        assert apply_outcomes(session, now=LATER) == 0
        put(session, ids[1], status="active")  # settled, its old operation is not applied
        assert apply_outcomes(session, now=LATER) == 0


def test_planning_one_certificate_leaves_the_others_free(sessions: sessionmaker[Session]) -> None:
    first, second = certificates(sessions, ["1", "1"])  # both issuing, no operation yet
    box = outbox(sessions)
    with sessions() as session:
        move = plan_move(session, box, first, now=LATER)
        assert move is not None
        pointers = session.scalars(select(Certificate.operation_id).order_by(Certificate.id)).all()
        assert pointers == [move.operation_id, None]
        other = plan_move(session, box, second, now=LATER)
        assert other is not None and other.operation_id != move.operation_id
