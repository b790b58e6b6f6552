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
from core.views.certificates import CertificateFilter, certificates
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
