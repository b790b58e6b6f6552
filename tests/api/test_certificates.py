"""The certificates API: a prosumer sees and acts on their own only; transfer by split keeps
every Wh id in exactly one certificate; retire and cancel; the EnergyTag export validates
against the schema in the repository; CSV, claims report and the retirement statement."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.certificates.export import schema
from core.certificates.issuance import issue_due
from core.db.models import Certificate, Role, User
from tests.api.conftest import TestClient, auth_headers, error_of
from tests.core.certificates.support import device_meter, minted
from tests.factories import make_user

H0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
MANDATORY = schema()["required"]


@pytest.fixture
def issued(session: Session) -> dict[str, User | int]:
    """alice holds an active 2345 Wh certificate, bob a 1000 Wh one."""
    alice, bob = make_user(session, "alice"), make_user(session, "bob")
    for owner, kwh in ((alice, "2.345678"), (bob, "1")):
        meter = device_meter(session, owner, latitude="13.7563", longitude="100.5018")
        minted(session, meter, H0 + timedelta(minutes=10), kwh)
    issue_due(session, now=H0 + timedelta(hours=2), auto_issue=True)
    session.execute(update(Certificate).values(status="active", issue_signature="sig-issue"))
    session.commit()
    ids = {c.holder_id: c.id for c in session.scalars(select(Certificate))}
    session.expunge(alice)  # loaded and detached: using them later opens no transaction
    session.expunge(bob)
    session.rollback()  # end the read: on SQLite an open transaction holds the write lock
    return {"alice": alice, "bob": bob, "a": ids[alice.id], "b": ids[bob.id]}


def live_ranges(session: Session) -> list[tuple[int, int, str]]:
    session.expire_all()
    rows = session.scalars(
        select(Certificate).where(Certificate.status != "split").order_by(Certificate.first_id)
    )
    return [(c.first_id, c.last_id, c.status) for c in rows]


def test_prosumers_see_only_their_own(client: TestClient, app: App, session, issued, admin) -> None:
    alice, bob = issued["alice"], issued["bob"]
    mine = client.get("/api/certificates", headers=auth_headers(app, alice)).json()
    assert [c["id"] for c in mine["certificates"]] == [issued["a"]] and mine["total"] == 1
    assert mine["certificates"][0]["wh"] == 2345  # floor(2345.678 Wh)
    other = client.get(f"/api/certificates/{issued['b']}", headers=auth_headers(app, alice))
    assert other.status_code == 404
    staff = client.get("/api/certificates", headers=auth_headers(app, admin)).json()
    assert staff["total"] == 2
    filtered = client.get(
        "/api/certificates?holder=bob&technology=solar_pv&grid_region=th-pea",
        headers=auth_headers(app, admin),
    ).json()
    assert [c["id"] for c in filtered["certificates"]] == [issued["b"]]
    for action, body in (
        ("transfer", {"to_username": "alice"}),
        ("retire", {"beneficiary": "x", "purpose": "y", "period_start": "2026-11-20",
                    "period_end": "2026-11-20", "country": "TH"}),
    ):  # fmt: skip
        response = client.post(
            f"/api/certificates/{issued['b']}/{action}", json=body, headers=auth_headers(app, alice)
        )
        assert response.status_code == 404, (action, response.text)
    assert client.get("/api/certificates").status_code == 401
    assert (
        client.post(
            f"/api/certificates/{issued['b']}/cancel",
            json={"reason": "mine now"},
            headers=auth_headers(app, bob),
        ).status_code
        == 403
    )


def test_transfer_by_split_keeps_every_wh_id_in_one_certificate(
    client: TestClient, app: App, session, issued
) -> None:
    alice, bob = issued["alice"], issued["bob"]
    certificate = session.get(Certificate, issued["a"])
    first, last = certificate.first_id, certificate.last_id
    session.rollback()  # end the read: on SQLite an open transaction holds the write lock
    body = {"to_username": "bob", "first_id": first + 100, "last_id": first + 599}
    response = client.post(
        f"/api/certificates/{issued['a']}/transfer", json=body, headers=auth_headers(app, alice)
    )
    assert response.status_code == 202, response.text
    moved = response.json()
    assert (moved["wh"], moved["status"]) == (500, "transferring")
    ranges = [r for r in live_ranges(session) if first <= r[0] <= last]
    session.rollback()
    assert ranges == [
        (first, first + 99, "active"),
        (first + 100, first + 599, "transferring"),
        (first + 600, last, "active"),
    ]
    ids = [i for a, b, _ in ranges for i in range(a, b + 1)]
    assert ids == list(range(first, last + 1))  # every id once, none lost
    again = client.post(
        f"/api/certificates/{issued['a']}/transfer", json=body, headers=auth_headers(app, alice)
    )
    assert (again.status_code, error_of(again)["code"]) == (409, "certificate_not_active")
    detail = client.get(f"/api/certificates/{moved['id']}", headers=auth_headers(app, alice))
    child_id = session.scalar(
        select(Certificate.id).where(Certificate.first_id == first, Certificate.status == "active")
    )
    child_id = session.scalar(
        select(Certificate.id).where(Certificate.first_id == first, Certificate.status == "active")
    )
    session.rollback()
    assert detail.json()["split_from"] == [issued["a"]]
    for bad in (
        {"to_username": "bob", "first_id": first - 1, "last_id": first + 5},
        {"to_username": "alice"},
        {"to_username": "nobody"},
    ):
        refused = client.post(
            f"/api/certificates/{child_id}/transfer", json=bad, headers=auth_headers(app, alice)
        )
        assert refused.status_code in (404, 422), refused.text
    assert bob.id != alice.id


def test_retire_part_with_a_claim_and_the_statement(
    client: TestClient, app: App, session, issued
) -> None:
    alice = issued["alice"]
    certificate = session.get(Certificate, issued["a"])
    session.rollback()
    claim = {
        "beneficiary": "Siam Cement Plant 3",
        "purpose": "Scope 2 <script>",
        "period_start": "2026-11-20",
        "period_end": "2026-11-20",
        "country": "th",
        "first_id": certificate.first_id,
        "last_id": certificate.first_id + 999,
    }
    session.rollback()
    bad = client.post(
        f"/api/certificates/{issued['a']}/retire",
        json={**claim, "period_end": "2026-11-19"},
        headers=auth_headers(app, alice),
    )
    assert (bad.status_code, error_of(bad)["field"]) == (422, "period_end")
    response = client.post(
        f"/api/certificates/{issued['a']}/retire", json=claim, headers=auth_headers(app, alice)
    )
    assert response.status_code == 202, response.text
    retiring = response.json()
    assert (retiring["wh"], retiring["status"], retiring["claim_country"]) == (
        1000,
        "retiring",
        "TH",
    )
    not_yet = client.get(
        f"/api/certificates/{retiring['id']}/statement", headers=auth_headers(app, alice)
    )
    assert not_yet.status_code == 404
    # The chain burned it (the scheduler's cycle; set here as it would).
    session.execute(
        update(Certificate)
        .where(Certificate.id == retiring["id"])
        .values(status="retired", finished_at=H0 + timedelta(hours=3))
    )
    session.commit()
    page = client.get(
        f"/api/certificates/{retiring['id']}/statement", headers=auth_headers(app, alice)
    )
    assert page.status_code == 200 and "Siam Cement Plant 3" in page.text
    assert "1000 Wh (0.001000 MWh)" in page.text
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    report = client.get("/api/certificates/claims-report", headers=auth_headers(app, alice)).json()
    assert report["total_wh"] == 1000 and report["claims"][0]["country"] == "TH"
    bob_report = client.get(
        "/api/certificates/claims-report", headers=auth_headers(app, issued["bob"])
    )
    assert bob_report.json()["total_wh"] == 0


def test_cancel_and_a_faulty_meters_period(
    client: TestClient, app: App, session, issued, admin
) -> None:
    headers = auth_headers(app, admin)
    assert (
        client.post(
            f"/api/certificates/{issued['b']}/cancel", json={"reason": ""}, headers=headers
        ).status_code
        == 422
    )
    response = client.post(
        f"/api/certificates/{issued['b']}/cancel", json={"reason": "meter faulty"}, headers=headers
    )
    assert response.status_code == 202 and response.json()["status"] == "cancelling"
    session.execute(
        update(Certificate).where(Certificate.id == issued["a"]).values(status="retired")
    )
    session.commit()
    serial = client.get(f"/api/certificates/{issued['a']}", headers=headers).json()["meter_serial"]
    session.rollback()
    result = client.post(
        "/api/admin/certificates/cancel-period",
        json={
            "meter_serial": serial,
            "start": "2026-11-20T00:00:00Z",
            "end": "2026-11-21T00:00:00Z",
            "reason": "CT clamp reversed",
        },
        headers=headers,
    ).json()
    assert result == {
        "cancelled": [],
        "rejected": [],
        "retired_for_follow_up": [issued["a"]],
        "in_flight": [],
    }


def test_energytag_export_validates_and_csv(
    client: TestClient, app: App, session, issued, admin
) -> None:
    headers = auth_headers(app, admin)
    bundles = client.get("/api/certificates?format=energytag", headers=headers).json()
    assert len(bundles) == 2
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    for bundle in bundles:
        validator.validate(bundle)
        assert set(MANDATORY) <= set(bundle)
        assert (
            bundle["bundle_quantity"]
            == bundle["bundle_id_range_end"] - bundle["bundle_id_range_start"] + 1
        )
        assert bundle["device_capacity"] == 10_000  # 10 kW in W
        assert bundle["device_location"] == ["13.7563", "100.5018"]
    broken = dict(bundles[0])
    del broken["issue_market_zone"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)
    text = client.get("/api/certificates?format=csv", headers=headers).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(int(r["wh"]) for r in rows) == [1000, 2345]
    mine = client.get("/api/certificates?format=csv", headers=auth_headers(app, issued["bob"])).text
    assert [int(r["wh"]) for r in csv.DictReader(io.StringIO(mine))] == [1000]
    assert Role.ADMIN


def test_csv_streams_with_the_filters_from_both_routes(
    client: TestClient, app: App, session, issued, admin
) -> None:
    headers = auth_headers(app, admin)
    listed = client.get(
        "/api/certificates", params={"holder": "alice"}, headers={**headers, "Accept": "text/csv"}
    )
    assert listed.headers["content-type"].startswith("text/csv")
    assert [int(r["certificate_id"]) for r in csv.DictReader(io.StringIO(listed.text))] == [
        issued["a"]
    ]
    exported = client.get(
        "/api/exports/certificates",
        params={"format": "csv", "technology": "solar_pv", "region": "TH-PEA", "user": "bob"},
        headers=headers,
    )
    assert [r["holder"] for r in csv.DictReader(io.StringIO(exported.text))] == ["bob"]
    assert client.get(
        "/api/exports/certificates", params={"format": "csv", "technology": "wind"},
        headers=headers,
    ).text.count("\n") == 1  # the header only  # fmt: skip
    # A prosumer's filter cannot reach beyond their own certificates.
    theirs = client.get(
        "/api/exports/certificates?format=csv&user=alice", headers=auth_headers(app, issued["bob"])
    )
    assert list(csv.DictReader(io.StringIO(theirs.text))) == []
    bad = client.get("/api/exports/certificates?format=csv&technology=coal", headers=headers)
    assert (bad.status_code, error_of(bad)["field"]) == (422, "technology")
