"""Meters & users (admin), My wallet (prosumer), and filters that survive reruns."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.chain.reader import ChainRead, ChainReader
from core.db.models import Meter, User
from core.views import Split
from tests.factories import keypair_for, wallet_for
from tests.pages.conftest import Dashboard, frame


def test_register_a_meter_shows_its_key_once(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "admin")
    at.text_input(key="admin.meter_serial").input("MTR-NEW")
    at.selectbox(key="admin.meter_owner").select("alice")
    at.text_input(key="admin.meter_public_key").input(str(keypair_for("new").pubkey()))
    at.button(key="admin.meter_register").click().run()
    [key] = [block.value for block in at.code]
    assert key.startswith("gtx_")
    assert "MTR-NEW" in list(frame(at, "serial")["serial"])
    at.run()
    assert not at.code  # shown once: the next run no longer has it


def test_register_a_meter_with_a_bad_key_is_refused(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "admin")
    at.text_input(key="admin.meter_serial").input("MTR-BAD")
    at.selectbox(key="admin.meter_owner").select("alice")
    at.text_input(key="admin.meter_public_key").input("not-base58-0OIl")
    at.button(key="admin.meter_register").click().run()
    assert "public key" in at.error[0].value
    with dashboard.app.sessions() as session:
        assert session.scalar(select(Meter).where(Meter.serial == "MTR-BAD")) is None


def test_suspend_and_resume_a_meter(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "admin")
    at.selectbox(key="admin.meter_status_serial").select("MTR-B1").run()
    at.button(key="admin.meter_status_toggle").click().run()
    assert "MTR-B1 is now suspended" in at.success[0].value
    at.button(key="admin.meter_status_toggle").click().run()
    assert "MTR-B1 is now active" in at.success[0].value


@pytest.mark.parametrize(
    ("wallet", "error"),
    [("", "wallet address is required"), ("abc", "decodes to 3 bytes")],
)
def test_a_prosumer_needs_a_valid_wallet(dashboard: Dashboard, wallet: str, error: str) -> None:
    at = dashboard.open("root", "admin")
    at.text_input(key="admin.user_name").input("carol")
    at.text_input(key="admin.user_password").input("long-enough-password")
    at.text_input(key="admin.user_wallet").input(wallet)
    at.button(key="admin.user_create").click().run()
    assert error in at.error[0].value


def test_create_a_prosumer(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "admin")
    at.text_input(key="admin.user_name").input("carol")
    at.text_input(key="admin.user_password").input("long-enough-password")
    at.text_input(key="admin.user_wallet").input(wallet_for("carol"))
    at.button(key="admin.user_create").click().run()
    assert "User carol (prosumer) created" in at.success[0].value
    with dashboard.app.sessions() as session:
        carol = session.scalar(select(User).where(User.username == "carol"))
        assert carol is not None and carol.wallet_address == wallet_for("carol")


@pytest.mark.parametrize(
    ("onchain", "expected"),
    [
        (ChainRead(value=4_500_000_000), "matches"),
        (ChainRead(value=4_000_000_000), "0.5 GRX less"),
        (ChainRead(error="chain unavailable: node down"), "node down"),
    ],
)
def test_wallet_shows_chain_and_database_side_by_side(
    dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch, onchain: ChainRead[int], expected: str
) -> None:
    monkeypatch.setattr(ChainReader, "wallet_balance", lambda self, *args: onchain)
    at = dashboard.open("alice", "wallet")
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Minted to this wallet (database)"] == "4.5 GRX"
    notes = [e.value for e in (*at.success, *at.warning)]
    assert any(expected in note for note in notes), notes
    assert list(frame(at, "transaction")["GRX"])[:1] == ["4.5"]


def test_live_filters_survive_reruns(dashboard: Dashboard) -> None:
    at = dashboard.open("ops", "live")
    at.radio(key="live.range").set_value("Last 7 days")
    at.radio(key="live.split").set_value(Split.PROSUMER).run()
    at.run()  # an auto-refresh reruns the page; the choices stay
    assert at.radio(key="live.range").value == "Last 7 days"
    assert at.radio(key="live.split").value == Split.PROSUMER
    assert len(at.get("plotly_chart")) == 2


def test_event_filters(dashboard: Dashboard) -> None:
    at = dashboard.open("ops", "events")
    at.selectbox(key="events.range").select("All time")
    at.multiselect(key="events.types").select("tokens_minted")
    at.text_input(key="events.text").input("bob").run()
    assert list(frame(at, "what happened")["type"]) == ["tokens_minted"]


def test_register_with_registry_fields_then_edit_them(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "admin")
    meters = frame(at, "serial")
    row = meters[meters["serial"] == "MTR-B1"].iloc[0]
    assert row["certificates"].startswith("cannot issue certificates: missing technology")
    at.text_input(key="admin.meter_serial").input("MTR-PV")
    at.selectbox(key="admin.meter_owner").select("alice")
    at.text_input(key="admin.meter_public_key").input(str(keypair_for("pv").pubkey()))
    at.selectbox(key="admin.meter_new.technology").select("solar_pv")
    at.text_input(key="admin.meter_new.capacity_kw").input("5.5")
    at.text_input(key="admin.meter_new.country").input("th")
    at.text_input(key="admin.meter_new.region").input("TH-PEA")
    at.text_input(key="admin.meter_new.commissioned").input("2024-03-01")
    at.button(key="admin.meter_register").click().run()
    assert not at.error
    meters = frame(at, "serial")
    row = meters[meters["serial"] == "MTR-PV"].iloc[0]
    assert (row["technology"], row["capacity (kW)"], row["country"]) == ("solar_pv", "5.5", "TH")
    assert row["certificates"] == "can issue"

    at.selectbox(key="admin.device_serial").select("MTR-PV").run()
    at.text_input(key="admin.device.MTR-PV.capacity_kw").input("abc")
    at.button(key="admin.device_save").click().run()
    assert "not a decimal" in at.error[0].value
    at.text_input(key="admin.device.MTR-PV.capacity_kw").input("6.25")
    at.button(key="admin.device_save").click().run()
    assert "Registry fields of MTR-PV saved" in at.success[0].value
    with dashboard.app.sessions() as session:
        meter = session.scalar(select(Meter).where(Meter.serial == "MTR-PV"))
        assert meter is not None and str(meter.capacity_kw) == "6.25"


def test_register_a_meter_with_a_hex_key(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "admin")
    pubkey = keypair_for("hex-meter").pubkey()
    at.text_input(key="admin.meter_serial").input("MTR-HEX")
    at.selectbox(key="admin.meter_owner").select("alice")
    at.text_input(key="admin.meter_public_key").input(bytes(pubkey).hex())
    at.button(key="admin.meter_register").click().run()
    assert not at.error
    with dashboard.app.sessions() as session:
        stored = session.scalar(select(Meter.public_key).where(Meter.serial == "MTR-HEX"))
    assert stored == str(pubkey)


def test_a_gateway_key_is_shown_once_and_rotates(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "admin")
    at.text_input(key="admin.gateway_name").input("headend-1")
    at.multiselect(key="admin.gateway_meters").select("MTR-B1")
    at.button(key="admin.gateway_create").click().run()
    [first] = [block.value for block in at.code]
    assert first.startswith("gtxgw_")
    assert list(frame(at, "name")["meters"]) == [1]  # a count: a gateway holds ~1,000
    assert "headend-1 submits for 1 meter(s)." in [c.value for c in at.caption]
    at.button(key="admin.gateway_rotate").click().run()
    [second] = [block.value for block in at.code]
    assert second.startswith("gtxgw_") and second != first
    at.button(key="admin.gateway_revoke").click().run()
    assert "revoked" in at.success[0].value
    assert list(frame(at, "name")["status"]) == ["revoked"]
