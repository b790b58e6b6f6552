"""Certificate supply reconciliation: the exact bounds from the four sums, read around the
chain, and the mismatch event with every field. Expected bounds are sums written here."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.certificates.reconcile import (
    CertificateReconciliation,
    check_certificate_supply,
    reconcile_certificates,
)
from core.db.models import CertificateMint, Event, MintBatch


def operations(session: Session, rows: list[tuple[str, str, int]]) -> list[int]:
    batches = [
        MintBatch(kind=kind, status=status, total_base_units=wh, attempt=1, total_readings=0)
        for kind, status, wh in rows
    ]
    session.add_all(batches)
    session.commit()
    return [b.id for b in batches]


EVERY_KIND_AND_STATUS = [
    (kind, status, wh * scale)
    for kind, scale in [("certificate_issue", 1), ("certificate_retire", 10),
                        ("certificate_cancel", 100), ("certificate_transfer", 1000),
                        ("mint", 10_000)]
    for status, wh in [("planned", 1), ("signed", 2), ("confirmed", 4), ("failed", 8),
                       ("expired", 16)]
]  # fmt: skip


def test_each_sum_counts_only_its_kinds_and_statuses(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(CertificateMint(address="M", rpc_url="x", authority="a", bootstrap_supply=7))
        session.add(CertificateMint(address="N", rpc_url="x", authority="a", bootstrap_supply=900))
        session.commit()
        operations(session, EVERY_KIND_AND_STATUS)
    # issued: landed 4, sent 2 + 4; burned (retire x10, cancel x100): landed 40 + 400,
    # sent 20 + 40 + 200 + 400. Planned, failed, expired, transfers and GRX count nowhere.
    lower = 7 + 4 - (20 + 40 + 200 + 400)
    upper = 7 + (2 + 4) - (40 + 400)
    result = check_certificate_supply(sessions, "M", lambda: 0)
    assert result == CertificateReconciliation(0, lower, upper)


def test_an_unknown_mint_has_no_bootstrap_and_an_empty_outbox_sums_to_zero(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        session.add(CertificateMint(address="N", rpc_url="x", authority="a", bootstrap_supply=9))
        session.commit()
    assert check_certificate_supply(sessions, "M", lambda: 3) == CertificateReconciliation(3, 0, 0)
    assert check_certificate_supply(sessions, "N", lambda: 9) == CertificateReconciliation(9, 9, 9)


def test_the_chain_is_read_between_the_landed_and_the_sent_sums(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        [issue, burn] = operations(
            session, [("certificate_issue", "planned", 500), ("certificate_retire", "planned", 30)]
        )

    def chain_moves_meanwhile() -> int:
        with sessions() as session:  # both are signed while the chain is read
            session.execute(
                update(MintBatch).where(MintBatch.id.in_([issue, burn])).values(status="signed")
            )
            session.commit()
        return 470

    # Landed sums (read before) are 0; sent sums (read after) see 500 and 30.
    result = check_certificate_supply(sessions, "M", chain_moves_meanwhile)
    assert result == CertificateReconciliation(470, 0 - 30, 500 - 0)


@pytest.mark.parametrize(
    ("supply", "ok"), [(-1, False), (0, True), (1, True), (5, True), (6, False)]
)
def test_ok_includes_both_bounds(supply: int, ok: bool) -> None:
    assert CertificateReconciliation(supply, 0, 5).ok is ok


def test_a_match_writes_no_event(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        operations(session, [("certificate_issue", "confirmed", 100)])
    assert reconcile_certificates(sessions, "M", lambda: 100) == CertificateReconciliation(
        100, 100, 100
    )
    with sessions() as session:
        assert session.scalars(select(Event)).all() == []


def test_a_mismatch_is_an_event_and_an_error_log(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    with sessions() as session:
        session.add(CertificateMint(address="M", rpc_url="x", authority="a", bootstrap_supply=2))
        session.commit()
        operations(session, [("certificate_issue", "confirmed", 100),
                             ("certificate_issue", "signed", 20)])  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="core.certificates.reconcile"):
        result = reconcile_certificates(sessions, "M", lambda: 150)
    assert result == CertificateReconciliation(150, 102, 122) and not result.ok
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.ERROR,
            "CERTIFICATE RECONCILE MISMATCH on M: on-chain supply 150, expected 102..122",
        )
    ]
    with sessions() as session:  # committed: another session sees it
        [event] = session.scalars(select(Event)).all()
        assert (event.type, event.user_id) == ("reconcile_mismatch", None)
        assert event.payload == {
            "kind": "certificates",
            "mint": "M",
            "onchain_supply": 150,
            "expected_supply": 102,
            "expected_with_in_flight": 122,
        }
