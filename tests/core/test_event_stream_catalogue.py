"""docs/EVENTS.md stays the catalogue: every event type, with an example that parses."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from core.events import EventType

DOC = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"


def examples() -> list[dict]:
    text = DOC.read_text()
    # Only fences at the start of a line: an indented one (the WebSocket summary message,
    # which is not an event) belongs to a list item, not to the catalogue.
    return [json.loads(block) for block in re.findall(r"^```json\n(.*?)```", text, re.S | re.M)]


def test_every_event_type_has_a_section_and_an_example() -> None:
    headings = set(re.findall(r"^### (.+)$", DOC.read_text(), re.M))
    documented = {name for heading in headings for name in re.findall(r"[a-z_]{4,}", heading)}
    assert {kind.value for kind in EventType} <= documented
    assert {kind.value for kind in EventType} - {"scheduler_job_missed"} <= {
        example["type"] for example in examples()
    }


def test_examples_have_the_contract_shape() -> None:
    for example in examples():
        assert list(example)[:3] == ["id", "type", "timestamp"], example
        assert isinstance(example["id"], int)
        assert datetime.fromisoformat(example["timestamp"]).utcoffset().total_seconds() == 0
