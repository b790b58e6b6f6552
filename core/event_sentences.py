"""Each event type as one sentence a person reads: who, which meter, how much, which
transaction. Fields follow docs/EVENTS.md; a field missing from an old or odd payload
reads as "?" rather than failing, and an unknown type falls back to its name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

Payload = Mapping[str, Any]


def _get(payload: Payload, name: str) -> str:
    value = payload.get(name)
    return "?" if value is None or value == "" else str(value)


def _kwh(payload: Payload, name: str = "kwh_amount") -> str:
    try:
        amount = Decimal(str(payload[name])).normalize()
    except (KeyError, InvalidOperation):
        return "? kWh"
    return f"{amount:f} kWh"


def _count(items: Any, noun: str) -> str:
    n = len(items) if isinstance(items, list | tuple) else 0
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _sol(lamports: Any) -> str:
    try:
        return f"{(Decimal(int(lamports)).scaleb(-9)).normalize():f} SOL"
    except (TypeError, ValueError):
        return "? SOL"


def _received(p: Payload) -> str:
    text = f"Meter {_get(p, 'meter_serial')} sent {_kwh(p)} (reading {_get(p, 'reading_id')})"
    if p.get("status") == "review":
        return f"{text}, held for review: {_get(p, 'review_reason')}."
    return f"{text}, accepted."


def _rejected(p: Payload) -> str:
    text = (
        f"Meter {_get(p, 'meter_serial')}'s reading was refused ({_get(p, 'error_code')}): "
        f"{_get(p, 'error_reason')}"
    )
    more = p.get("more_rejections")
    return f"{text}; {more} more refused." if more else f"{text}."


def _minted(p: Payload) -> str:
    return (
        f"Minted {_get(p, 'tokens_minted')} GRX base units for {_kwh(p)} "
        f"({_count(p.get('reading_ids'), 'reading')}) to {_get(p, 'wallet_address')} "
        f"in transaction {_get(p, 'transaction_signature')}."
    )


def _batch(p: Payload) -> str:
    return (
        f"Mint batch {_get(p, 'batch_id')} ended: {_get(p, 'successful_mints')} of "
        f"{_get(p, 'total_readings')} readings minted, {_get(p, 'failed_mints')} failed "
        f"(transaction {_get(p, 'transaction_signature')})."
    )


def _mint_failed(p: Payload) -> str:
    batch = p.get("batch_id")
    where = f"batch {batch}" if batch is not None else "no transaction"
    retry = "will retry" if p.get("will_retry") else "out of retries"
    return (
        f"Minting {_count(p.get('reading_ids'), 'reading')} failed ({where}): "
        f"{_get(p, 'error')}; {retry}."
    )


def _settings(p: Payload) -> str:
    return f"{_get(p, 'by')} changed {_get(p, 'key')} from {_get(p, 'old')} to {_get(p, 'new')}."


def _mismatch(p: Payload) -> str:
    if p.get("check") == "running_total":  # core.minting.totals.audit
        return (
            f"The running total of minted GRX ({_get(p, 'running_base_units')} base units) "
            f"differs from the full sum of minted readings ({_get(p, 'expected_supply')})."
        )
    return (
        f"On-chain supply {_get(p, 'onchain_supply')} differs from the expected "
        f"{_get(p, 'expected_supply')} for mint {_get(p, 'mint')}: auto-mint paused."
    )


def _reviewed(p: Payload) -> str:
    note = p.get("note")
    text = f"{_get(p, 'by')} {_get(p, 'decision')} reading {_get(p, 'reading_id')}"
    return f"{text}: {note}." if note else f"{text}."


def _mint_requested(p: Payload) -> str:
    if p.get("reading_ids"):
        return (
            f"{_get(p, 'by')} asked to mint {_count(p.get('reading_ids'), 'reading')} "
            f"(from {_get(p, 'from_status')})."
        )
    upto = _get(p, "upto_reading_id")
    return f"{_get(p, 'by')} asked to mint everything pending up to reading {upto}."


def _job_error(p: Payload) -> str:
    return f"Scheduler job {_get(p, 'job_id')} failed: {_get(p, 'error')}."


def _job_missed(p: Payload) -> str:
    return f"Scheduler job {_get(p, 'job_id')} missed its run at {_get(p, 'scheduled_run_time')}."


def _user_changed(p: Payload) -> str:
    role = f" as {p['role']}" if p.get("role") else ""
    return f"{_get(p, 'by')} {_get(p, 'change')} user {_get(p, 'username')}{role}."


def _meter_changed(p: Payload) -> str:
    change = str(p.get("change") or "?").replace("_", " ")
    owner = f" for {p['owner']}" if p.get("owner") else ""
    return f"{_get(p, 'by')} {change} meter {_get(p, 'meter_serial')}{owner}."


def _fee_payer_low(p: Payload) -> str:
    runway = p.get("runway_days")
    days = f"; about {runway} days left at the last day's rate" if runway is not None else ""
    return (
        f"Fee payer {_get(p, 'fee_payer')} holds {_sol(p.get('balance_lamports'))}, below "
        f"the minimum {_sol(p.get('min_lamports'))}{days}."
    )


def _signer(p: Payload) -> str:
    return (
        f"Signer {_get(p, 'signer')} could not sign ({_get(p, 'error_code')}): {_get(p, 'error')}; "
        f"{_get(p, 'batches_released')} batches released unsigned."
    )


def _authority(p: Payload) -> str:
    return (
        f"Mint authority of {_get(p, 'mint')} moved from {_get(p, 'old_authority')} to "
        f"{_get(p, 'new_authority')} ({_get(p, 'new_signer')}) in transaction "
        f"{_get(p, 'transaction_signature')}."
    )


def _gateway(p: Payload) -> str:
    change = str(p.get("change") or "?").replace("_", " ")
    return f"{_get(p, 'by')}: gateway {_get(p, 'gateway')} {change}."


def _meter_flagged(p: Payload) -> str:
    flag = str(p.get("flag") or "?").replace("_", " ")
    evidence = p.get("evidence")
    facts = ", ".join(f"{k} {v}" for k, v in evidence.items()) if isinstance(evidence, dict) else ""
    return f"Meter {_get(p, 'meter_serial')} flagged for {flag}" + (f": {facts}." if facts else ".")


def _certificate(p: Payload) -> str:
    return (
        f"certificate {_get(p, 'certificate_id')} of {_get(p, 'wh')} Wh from meter "
        f"{_get(p, 'meter_serial')} (hour {_get(p, 'hour_start')}, {_get(p, 'technology')})"
    )


def _certificate_issued(p: Payload) -> str:
    return f"Issued {_certificate(p)} in transaction {_get(p, 'transaction_signature')}."


def _certificate_transferred(p: Payload) -> str:
    return (
        f"Transferred {_certificate(p)} from user {_get(p, 'from_user_id')} to user "
        f"{_get(p, 'to_user_id')} in transaction {_get(p, 'transaction_signature')}."
    )


def _certificate_retired(p: Payload) -> str:
    return (
        f"Retired {_certificate(p)} for {_get(p, 'beneficiary')} ({_get(p, 'purpose')}) in "
        f"transaction {_get(p, 'transaction_signature')}."
    )


def _certificate_cancelled(p: Payload) -> str:
    return (
        f"Cancelled {_certificate(p)}: {_get(p, 'reason')} (transaction "
        f"{_get(p, 'transaction_signature')})."
    )


SENTENCES: dict[str, Callable[[Payload], str]] = {
    "meter_reading_received": _received,
    "meter_reading_validation_failed": _rejected,
    "tokens_minted": _minted,
    "batch_minting_completed": _batch,
    "mint_failed": _mint_failed,
    "settings_changed": _settings,
    "reconcile_mismatch": _mismatch,
    "reading_reviewed": _reviewed,
    "mint_requested": _mint_requested,
    "scheduler_job_error": _job_error,
    "scheduler_job_missed": _job_missed,
    "user_changed": _user_changed,
    "meter_changed": _meter_changed,
    "fee_payer_low": _fee_payer_low,
    "signer_unavailable": _signer,
    "mint_authority_changed": _authority,
    "gateway_changed": _gateway,
    "meter_flagged": _meter_flagged,
    "certificate_issued": _certificate_issued,
    "certificate_transferred": _certificate_transferred,
    "certificate_retired": _certificate_retired,
    "certificate_cancelled": _certificate_cancelled,
}


def sentence(event_type: str, payload: Payload) -> str:
    render = SENTENCES.get(event_type)
    if render is None:
        return f"{event_type.replace('_', ' ').capitalize()}."
    return render(payload)


def transaction(payload: Payload) -> str | None:
    """The event's transaction signature, to link to (None when it has none)."""
    value = payload.get("transaction_signature")
    return value if isinstance(value, str) and value else None


def meter(payload: Payload) -> str | None:
    value = payload.get("meter_serial")
    return value if isinstance(value, str) and value else None
