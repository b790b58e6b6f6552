"""Reading JSON as every ingest door reads it: exact decimals, no NaN or Infinity.

A JSON number such as 2.01 must reach the rules as Decimal("2.01"), with the literal as
written kept (core.units.JsonNumber) so "1e2" can be refused by the amount grammar.
"""

from __future__ import annotations

import json
from typing import Any

from core.readings.errors import InvalidFormat
from core.units import json_number


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_json(raw: bytes) -> Any:
    """The parsed document, or `InvalidFormat` saying why it is not JSON."""
    try:
        return json.loads(raw, parse_float=json_number, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidFormat(f"the body is not valid JSON: {exc}") from exc
