"""Every event type of docs/EVENTS.md reads as a sentence naming its key fields.

The payloads are the catalogue's own examples, so a renamed field in the docs (or a
type added without a sentence) fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.event_sentences import SENTENCES, meter, sentence, transaction
from core.events import EventType

DOC = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"
# The catalogue's examples: fenced at the start of a line (an indented block in a list
# is a message of the feed, not an event) and carrying an event id.
EXAMPLES = {
    example["type"]: example
    for example in (
        json.loads(block)
        for block in re.findall(r"^```json\n(.*?)\n```$", DOC.read_text(), re.S | re.M)
    )
    if "id" in example
}
# type -> what its sentence must say, read off the example by hand.
EXPECTED = {
    "meter_reading_received": ["Meter MTR-00042", "3.4125 kWh", "reading 5120", "accepted"],
    "meter_reading_validation_failed": ["MTR-00042", "duplicate_reading", "already sent"],
    "tokens_minted": ["5012500000 GRX base units", "5.0125 kWh", "2 readings",
                      "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", "5VERv8NMvzbJ"],
    "batch_minting_completed": ["batch 311", "19 of 19", "0 failed", "5VERv8NMvzbJ"],
    "mint_failed": ["2 readings", "batch 312", "Custom(4)", "will retry"],
    "settings_changed": ["admin changed kwh_to_token_ratio from 1.0 to 1.5"],
    "reconcile_mismatch": ["120000000000", "118500000000", "auto-mint paused"],
    "reading_reviewed": ["admin approved reading 5200", "checked with the site"],
    "mint_requested": ["admin asked to mint 1 reading", "from failed"],
    "scheduler_job_error": ["mint-cycle", "server closed the connection"],
    "user_changed": ["admin disabled user alice"],
    "meter_changed": ["admin suspended meter MTR-00042"],
    "fee_payer_low": ["26qHbGhX", "0.912 SOL", "minimum 1 SOL", "9.6 days"],
    "signer_unavailable": ["vault-transit:transit/grx-mint-authority", "signer_unavailable",
                           "3 batches released"],
    "mint_authority_changed": ["26qHcV4n", "4YEq1rHt", "3nQbV8ZD"],
    "gateway_changed": ["admin: gateway headend-1 created"],
    "meter_flagged": ["Meter GTX-0001 flagged for missing intervals", "count 2",
                      "before 2026-11-27T10:00:00+00:00"],
    "certificate_issued": ["Issued certificate 88 of 1342 Wh from meter MTR-00042",
                           "2026-12-02T08:00:00Z", "solar_pv", "5xJv3fQ8"],
}  # fmt: skip


def test_every_type_has_a_sentence_and_an_example() -> None:
    types = {member.value for member in EventType}
    assert set(SENTENCES) == types
    # Types that share their section's example with another type.
    shared = {"scheduler_job_missed", "certificate_transferred", "certificate_retired",
              "certificate_cancelled"}  # fmt: skip
    assert set(EXAMPLES) | shared == types


@pytest.mark.parametrize("event_type", sorted(EXPECTED))
def test_sentence(event_type: str) -> None:
    text = sentence(event_type, EXAMPLES[event_type])
    for part in EXPECTED[event_type]:
        assert part in text, (part, text)
    assert "?" not in text.replace("?cluster", ""), text  # no field of the example missed


def test_scheduler_job_missed() -> None:
    text = sentence(
        "scheduler_job_missed", {"job_id": "mint-cycle", "scheduled_run_time": "2026-11-27T10:02Z"}
    )
    assert text == "Scheduler job mint-cycle missed its run at 2026-11-27T10:02Z."


def test_certificate_moves() -> None:
    issued = EXAMPLES["certificate_issued"]
    moved = dict(issued, from_user_id=7, to_user_id=9)
    assert "from user 7 to user 9" in sentence("certificate_transferred", moved)
    retired = dict(issued, beneficiary="Acme Ltd", purpose="scope 2")
    assert "for Acme Ltd (scope 2)" in sentence("certificate_retired", retired)
    cancelled = dict(issued, reason="meter recalibrated")
    assert "Cancelled certificate 88" in sentence("certificate_cancelled", cancelled)
    assert "meter recalibrated" in sentence("certificate_cancelled", cancelled)


def test_variants_and_missing_fields() -> None:
    review = dict(EXAMPLES["meter_reading_received"], status="review", review_reason="above 50")
    assert sentence("meter_reading_received", review).endswith("held for review: above 50.")
    assert "no transaction" in sentence("mint_failed", {"batch_id": None, "will_retry": False})
    everything = sentence("mint_requested", {"by": "root", "upto_reading_id": 99})
    assert everything == "root asked to mint everything pending up to reading 99."
    assert sentence("meter_changed", {}) == "? ? meter ?."  # odd payloads never raise
    assert sentence("something_new", {}) == "Something new."


def test_links() -> None:
    minted = EXAMPLES["tokens_minted"]
    assert transaction(minted) == minted["transaction_signature"]
    assert transaction(EXAMPLES["settings_changed"]) is None
    assert meter(EXAMPLES["meter_changed"]) == "MTR-00042"
    assert meter(minted) is None
