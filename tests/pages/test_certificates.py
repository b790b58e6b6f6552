"""The Certificates page per role (AppTest): staff see the chart and the whole registry,
a prosumer sees only their own, retires one and downloads its statement; an admin
cancels."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from core.certificates.issuance import issue_due
from core.db.models import Certificate, User
from tests.core.certificates.support import device_meter, minted
from tests.factories import NOW
from tests.pages.conftest import Dashboard, frame
from tests.pages.test_exports import download as download_csv
from tests.pages.test_exports import link_of

H0 = NOW.replace(minute=0) - timedelta(hours=5)


def certify(dashboard: Dashboard) -> dict[str, int]:
    """One active certificate for alice and one for bob, from new devices of theirs."""
    with dashboard.app.sessions() as session:
        for name, kwh in (("alice", "1.5"), ("bob", "2.25")):
            owner = session.scalar(select(User).where(User.username == name))
            meter = device_meter(session, owner)
            minted(session, meter, H0 + timedelta(minutes=7), kwh)
        issue_due(session, now=NOW, auto_issue=True)
        session.execute(update(Certificate).values(status="active"))
        session.commit()
        return {c.wh: c.id for c in session.scalars(select(Certificate))}


def test_staff_see_the_chart_and_every_certificate(dashboard: Dashboard) -> None:
    certify(dashboard)
    at = dashboard.open("ops", "certificates")
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 1
    assert sorted(frame(at, "Wh")["Wh"]) == [1500, 2250]
    at.selectbox(key="certs.status").select("active").run()
    at.text_input(key="certs.holder").input("bob").run()
    assert list(frame(at, "Wh")["Wh"]) == [2250]
    assert not [b for b in at.button if b.key == "certs.retire"]  # staff do not claim
    # The export holds exactly what the filtered table shows.
    rows = download_csv(link_of(at, "certs.download"))
    assert [(int(r["certificate_id"]), int(r["wh"])) for r in rows] == [
        (int(i), w) for i, w in zip(frame(at, "id")["id"], frame(at, "Wh")["Wh"], strict=True)
    ]
    assert {(r["holder"], r["status"]) for r in rows} == {("bob", "active")}


def test_a_prosumer_sees_their_own_retires_and_downloads_the_statement(
    dashboard: Dashboard,
) -> None:
    ids = certify(dashboard)
    bob = dashboard.open("bob", "certificates")
    assert list(frame(bob, "Wh")["Wh"]) == [2250]  # not alice's
    assert [r["wh"] for r in download_csv(link_of(bob, "certs.download"))] == ["2250"]
    assert not bob.get("plotly_chart")
    at = dashboard.open("alice", "certificates")
    assert list(frame(at, "Wh")["Wh"]) == [1500]
    at.text_input(key="certs.beneficiary").input("Alice's bakery")
    at.text_input(key="certs.purpose").input("Scope 2")
    at.text_input(key="certs.country").input("TH")
    at.button(key="certs.retire").click().run()
    assert not at.error, [e.value for e in at.error]
    assert "being retired" in at.success[0].value
    with dashboard.app.sessions() as session:
        retiring = session.get(Certificate, ids[1500])
        assert (retiring.status, retiring.beneficiary) == ("retiring", "Alice's bakery")
        session.execute(
            update(Certificate).where(Certificate.id == ids[1500]).values(status="retired")
        )
        session.commit()
    at = dashboard.open("alice", "certificates")
    [download] = [
        w for w in at.get("download_button") if w.proto.id and "statement" in str(w.proto)
    ]
    assert download is not None


def test_an_admin_cancels(dashboard: Dashboard) -> None:
    ids = certify(dashboard)
    at = dashboard.open("root", "certificates")
    at.number_input(key="certs.admin_id").set_value(ids[2250])
    at.text_input(key="certs.reason").input("meter faulty")
    at.button(key="certs.cancel").click().run()
    assert not at.error, [e.value for e in at.error]
    with dashboard.app.sessions() as session:
        assert session.get(Certificate, ids[2250]).status == "cancelling"
