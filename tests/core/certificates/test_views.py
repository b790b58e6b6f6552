"""The registry read model's count: exact without a cap, and with `count_cap` exact up to
the cap and `cap + 1` beyond it, for staff and for a prosumer, filtered or not. The
expected figures are the certificates this test issued, counted here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.certificates.issuance import issue_due
from core.db.models import Certificate, CertificateBundle, Role, User
from core.views.certificates import (
    CertificateFilter,
    CertificateRow,
    certificates,
    certificates_statement,
)
from tests.core.certificates.support import device_meter, minted
from tests.factories import make_user

H0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
NOW = H0 + timedelta(hours=12)
HOURS = {"alice": 6, "bob": 3}  # one certificate per closed hour of each one's device


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def registry(session: Session) -> dict[str, User]:
    """Alice holds 6 certificates (the newest retired), bob 3, one split parent of bob's."""
    users = {name: make_user(session, name) for name in HOURS}
    for name, hours in HOURS.items():
        meter = device_meter(session, users[name])
        for h in range(hours):
            minted(session, meter, H0 + timedelta(hours=h, minutes=10), "1.5")
    issue_due(session, now=NOW, auto_issue=True)
    session.execute(update(Certificate).values(status="active"))
    newest_of_alice = session.scalar(
        select(Certificate.id)
        .join(CertificateBundle, CertificateBundle.id == Certificate.bundle_id)
        .where(Certificate.holder_id == users["alice"].id)
        .order_by(CertificateBundle.hour_start.desc())
        .limit(1)
    )
    session.execute(
        update(Certificate).where(Certificate.id == newest_of_alice).values(status="retired")
    )
    oldest_of_bob = session.scalar(
        select(Certificate.id).where(Certificate.holder_id == users["bob"].id).order_by(
            Certificate.id
        ).limit(1)
    )  # fmt: skip
    session.execute(
        update(Certificate).where(Certificate.id == oldest_of_bob).values(status="split")
    )
    session.commit()
    users["ops"] = make_user(session, "ops", role=Role.OPERATOR)
    return users


EXACT = [  # (viewer, filter, certificates it matches)
    ("ops", CertificateFilter(), 8),  # 6 + 3, less bob's split parent
    ("ops", CertificateFilter(include_split=True), 9),
    ("ops", CertificateFilter(status="retired"), 1),
    ("ops", CertificateFilter(holder="alice", grid_region="th-pea"), 6),
    ("ops", CertificateFilter(holder="alice", status="active", technology="solar_pv"), 5),
    ("alice", CertificateFilter(), 6),
    ("bob", CertificateFilter(), 2),
    ("bob", CertificateFilter(status="split"), 1),
]


def test_the_count_is_exact_without_a_cap(session: Session, registry: dict[str, User]) -> None:
    for viewer, wanted, expected in EXACT:
        rows, total = certificates(session, registry[viewer], wanted, limit=2)
        assert (total, len(rows)) == (expected, min(2, expected)), (viewer, wanted)


def test_a_capped_count_is_exact_to_the_cap_then_one_past_it(
    session: Session, registry: dict[str, User]
) -> None:
    for viewer, wanted, expected in EXACT:
        for cap in (1, expected - 1, expected, expected + 5):
            if cap < 1:
                continue
            rows, total = certificates(session, registry[viewer], wanted, limit=50, count_cap=cap)
            assert total == min(expected, cap + 1), (viewer, wanted, cap)
            assert len(rows) == expected  # the page itself is not capped
            ids = [r.id for r in rows]
            assert ids == sorted(ids, reverse=True)  # newest first, with a holder too
            if viewer != "ops":
                assert {r.holder for r in rows} == {viewer}


def _expected_ids(
    session: Session, users: dict[str, User], viewer: str, wanted: CertificateFilter
) -> list[int]:
    """The oracle: every certificate read plainly and filtered here, newest first."""
    holder_of = {user.id: name for name, user in users.items()}
    rows = session.execute(select(Certificate.id, Certificate.holder_id, Certificate.status))
    ids = []
    for cid, holder_id, status in rows:
        if viewer != "ops" and holder_of[holder_id] != viewer:
            continue
        if wanted.status and status != wanted.status:
            continue
        if not wanted.status and not wanted.include_split and status == "split":
            continue
        if wanted.holder and holder_of[holder_id] != wanted.holder:
            continue
        ids.append(cid)
    return sorted(ids, reverse=True)


def test_every_status_and_holder_filter_pages_the_same_rows_as_the_plain_join(
    session: Session, registry: dict[str, User]
) -> None:
    """The page's ids come first from certificates alone when the filter reads only its
    columns (core.views.certificates.page_statement); the rows, their order and every
    page must be those of the one-join statement it replaced, and the oracle's."""
    checked = 0
    for viewer in ("ops", "alice", "bob"):
        for status in (None, "active", "retired", "split", "cancelled"):
            for holder in (None, "alice", "bob", "ops", "nobody"):
                for include_split in (False, True):
                    wanted = CertificateFilter(
                        status=status, holder=holder, include_split=include_split
                    )
                    expected = _expected_ids(session, registry, viewer, wanted)
                    plain = list(
                        session.execute(
                            certificates_statement(registry[viewer], wanted).order_by(
                                Certificate.id.desc()
                            )
                        )
                    )
                    assert [row[0] for row in plain] == expected, (viewer, wanted)
                    for limit, offset in ((2, 0), (2, 2), (3, 1), (50, 0), (1, 7), (5, 20)):
                        rows, _ = certificates(
                            session, registry[viewer], wanted, limit=limit, offset=offset
                        )
                        want = [CertificateRow(*row) for row in plain[offset : offset + limit]]
                        assert rows == want, (viewer, wanted, limit, offset)
                        checked += 1
    assert checked == 3 * 5 * 5 * 2 * 6


def test_a_device_filter_with_a_status_and_a_holder_pages_as_the_plain_join(
    session: Session, registry: dict[str, User]
) -> None:
    seen = 0
    for viewer in ("ops", "alice"):
        for wanted in (
            CertificateFilter(status="active", holder="alice", grid_region="th-pea"),
            CertificateFilter(status="retired", technology="solar_pv"),
            CertificateFilter(holder="bob", grid_region="TH-PEA", include_split=True),
            CertificateFilter(status="retired", holder="bob", technology="solar_pv"),
        ):
            plain = list(
                session.execute(
                    certificates_statement(registry[viewer], wanted).order_by(Certificate.id.desc())
                )
            )
            seen += len(plain)
            for limit, offset in ((2, 0), (2, 1), (50, 0)):
                rows, _ = certificates(
                    session, registry[viewer], wanted, limit=limit, offset=offset
                )
                assert rows == [CertificateRow(*r) for r in plain[offset : offset + limit]]
    assert seen == 5 + 1 + 3 + 0 + 5 + 1 + 0 + 0  # ops's four, then alice's
