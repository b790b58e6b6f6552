"""Read models to JSON: kWh as exact 6-decimal strings, tokens as integers, RFC 3339 times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.readings import ItemResult, ReadingRejected
from core.readings.queries import ReadingView
from core.units import format_kwh


def rfc3339(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def reading_out(view: ReadingView) -> dict[str, Any]:
    return {
        "id": view.id,
        "meter_serial": view.meter_serial,
        "user_id": view.user_id,
        "wallet_address": view.wallet_address,
        "kwh_amount": format_kwh(view.kwh_micro, micro=True),
        "reading_timestamp": rfc3339(view.reading_timestamp),
        "submitted_at": rfc3339(view.submitted_at),
        "status": view.status,
        "minted": view.minted,
        "token_base_units": view.token_base_units,
        "mint_tx_signature": view.mint_tx_signature,
    }


def mint_status_out(view: ReadingView) -> dict[str, Any]:
    return {
        **reading_out(view),
        "mint_batch_id": view.mint_batch_id,
        "minted_at": rfc3339(view.minted_at),
        "attempts": view.attempts,
        "next_attempt_at": rfc3339(view.next_attempt_at),
        "last_error": view.last_error,
        "review_reason": view.review_reason,
    }


def error_out(error: ReadingRejected) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.field:
        body["field"] = error.field
    body.update(error.details)
    return body


def item_out(result: ItemResult) -> dict[str, Any]:
    body: dict[str, Any] = {"index": result.index, "status": result.status}
    if result.id is not None:
        body["id"] = result.id
    if result.error is not None:
        body["error"] = error_out(result.error)
    return body
