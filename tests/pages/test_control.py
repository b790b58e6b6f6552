"""Control: admin changes persist, are audited, keep to the model's ranges; Mint now."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from core.config import TokenizationConfig
from core.db.models import Event, MintRequest
from tests.pages.conftest import Dashboard


def _audit(dashboard: Dashboard) -> list[dict]:
    with dashboard.app.sessions() as session:
        rows = session.scalars(
            select(Event).where(Event.type == "settings_changed").order_by(Event.id)
        )
        return [row.payload for row in rows]


def test_inputs_take_their_ranges_from_the_model(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "control")
    batch = at.number_input(key="control.batch_size")
    limits = {type(c).__name__: c for c in TokenizationConfig.model_fields["batch_size"].metadata}
    assert (batch.min, batch.max) == (limits["Ge"].ge, limits["Le"].le)
    assert "≤ 1000, at most 9 decimals" in at.text_input(key="control.kwh_to_token_ratio").help


def test_a_change_persists_and_is_audited(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "control")
    at.number_input(key="control.batch_size").set_value(200)
    at.toggle(key="control.auto_mint_enabled").set_value(False).run()
    at.button(key="control.save").click().run()
    assert not at.error
    assert "Saved" in at.success[0].value
    config = dashboard.app.config()
    assert (config.batch_size, config.auto_mint_enabled) == (200, False)
    assert sorted(_audit(dashboard), key=lambda change: change["key"]) == [
        {"key": "auto_mint_enabled", "old": True, "new": False, "by": "root"},
        {"key": "batch_size", "old": 50, "new": 200, "by": "root"},
    ]
    # A fresh page shows the stored values.
    again = dashboard.open("root", "control")
    assert again.number_input(key="control.batch_size").value == 200


def test_a_ratio_change_shows_its_effect_and_needs_confirmation(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "control")
    at.text_input(key="control.kwh_to_token_ratio").input("2").run()
    warning = at.warning[0].value
    assert "now 10.5 kWh -> 10.5 GRX" in warning and "after saving 10.5 kWh -> 21 GRX" in warning
    at.button(key="control.save").click().run()
    assert "Confirm the ratio change" in at.error[0].value
    assert dashboard.app.config().kwh_to_token_ratio == Decimal("1.0")
    at.checkbox(key="control.confirm_ratio").check()
    at.button(key="control.save").click().run()
    assert dashboard.app.config().kwh_to_token_ratio == Decimal("2")
    assert _audit(dashboard) == [
        {"key": "kwh_to_token_ratio", "old": "1.0", "new": "2", "by": "root"}
    ]


def test_out_of_range_or_unparsable_values_are_refused(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "control")
    at.text_input(key="control.max_reading_kwh").input("lots").run()
    assert "is not a number" in at.error[0].value
    at.text_input(key="control.max_reading_kwh").input("0").run()
    at.button(key="control.save").click().run()
    assert "max_reading_kwh" in at.error[0].value
    assert dashboard.app.config().max_reading_kwh == Decimal("100.0")
    assert _audit(dashboard) == []


def test_review_threshold_can_be_set_and_cleared(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "control")
    at.text_input(key="control.review_threshold_kwh").input("75").run()
    at.button(key="control.save").click().run()
    assert dashboard.app.config().review_threshold_kwh == Decimal("75")
    at.text_input(key="control.review_threshold_kwh").input("").run()
    at.button(key="control.save").click().run()
    assert dashboard.app.config().review_threshold_kwh is None


def test_mint_now_and_reset(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "control")
    at.button(key="control.mint_now").click().run()
    assert "Mint requested" in at.success[0].value
    with dashboard.app.sessions() as session:
        [request] = session.scalars(select(MintRequest)).all()
        assert request.requested_by == dashboard.seeded.users["root"].id
    at.number_input(key="control.batch_size").set_value(10).run()
    at.button(key="control.save").click().run()
    at.button(key="control.reset").click().run()
    assert dashboard.app.config().batch_size == 50
    assert at.number_input(key="control.batch_size").value == 50
