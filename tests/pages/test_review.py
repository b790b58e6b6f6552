"""Review queue: approve, reject with a reason, force-mint never twice; and the
Minting page's retry of failed readings."""

from __future__ import annotations

from sqlalchemy import select

from core.db.models import Event, MeterReading
from tests.pages.conftest import Dashboard, frame


def _reading(dashboard: Dashboard, name: str) -> MeterReading:
    with dashboard.app.sessions() as session:
        reading = session.get(MeterReading, dashboard.seeded.reading_ids[name])
        assert reading is not None
        return reading


def test_the_queue_lists_readings_in_review(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "review")
    table = frame(at, "kWh")
    assert list(table["id"]) == [dashboard.seeded.reading_ids["bob_review"]]
    assert list(table["kWh"]) == ["15"]
    assert at.number_input(key="review.reading_id").value == table["id"][0]


def test_approve(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "review")
    at.text_input(key="review.note").input("checked the meter").run()
    at.button(key="review.approve").click().run()
    assert "approved" in at.success[0].value
    reading = _reading(dashboard, "bob_review")
    assert (reading.status, reading.review_note) == ("pending", "checked the meter")
    assert "Nothing to review" in at.info[0].value


def test_reject_needs_a_reason(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "review")
    at.button(key="review.reject").click().run()
    assert "a reason is required" in at.error[0].value
    assert _reading(dashboard, "bob_review").status == "review"
    at.text_input(key="review.note").input("meter fault").run()
    at.button(key="review.reject").click().run()
    assert _reading(dashboard, "bob_review").status == "rejected"
    with dashboard.app.sessions() as session:
        event = session.scalars(select(Event).where(Event.type == "reading_reviewed")).one()
        assert event.payload["decision"] == "rejected"


def test_force_mint_never_twice(dashboard: Dashboard) -> None:
    at = dashboard.open("root", "review")
    at.button(key="review.force_mint").click().run()
    assert "queued for minting" in at.success[0].value
    reading = _reading(dashboard, "bob_review")
    assert reading.status == "pending" and reading.mint_requested_at is not None
    at.button(key="review.force_mint").click().run()  # same reading id still entered
    assert "already queued" in at.error[0].value
    with dashboard.app.sessions() as session:  # the scheduler claims it meanwhile
        session.get(MeterReading, reading.id).status = "minting"
        session.commit()
    at.button(key="review.force_mint").click().run()
    assert "already minting" in at.error[0].value and "already_minted" in at.error[0].value


def test_admins_retry_failed_readings_operators_only_see_them(dashboard: Dashboard) -> None:
    ops = dashboard.open("ops", "minting")
    assert list(frame(ops, "reason")["reason"]) == ["blockhash expired 3 times"]
    assert [button.key for button in ops.button] == ["auth.logout"]
    at = dashboard.open("root", "minting")
    at.button(key="minting.retry_all").click().run()
    assert "1 readings back in the queue" in at.success[0].value
    reading = _reading(dashboard, "alice_failed")
    assert (reading.status, reading.attempts, reading.last_error) == ("pending", 0, None)
    assert "No failed readings" in at.success[-1].value
