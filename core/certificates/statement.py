"""The retirement statement: what was claimed, for whom, from which device and hour,
and where on chain it was burned; a printable HTML page (every value escaped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from html import escape

from sqlalchemy.orm import Session

from core.certificates.export import ENERGY_SOURCE, ISSUING_BODY
from core.db.models import User
from core.errors import NotFound
from core.views.certificates import CertificateHistory, certificate_history


@dataclass(frozen=True)
class Statement:
    history: CertificateHistory
    burn_signature: str | None


def retirement_statement(session: Session, viewer: User, certificate_id: int) -> Statement:
    """The retired certificate's statement; NotFound when not visible or not retired."""
    history = certificate_history(session, viewer, certificate_id)
    if history is None or history.certificate.status != "retired":
        raise NotFound(f"no retirement statement for certificate {certificate_id}")
    burns = [
        op.signature
        for op in history.operations
        if op.action == "retire" and op.status == "confirmed"
    ]
    return Statement(history, burns[-1] if burns else None)


def retirement_statement_html(session: Session, viewer: User, certificate_id: int) -> str:
    found = retirement_statement(session, viewer, certificate_id)
    row = found.history.certificate
    hour_end = row.hour_start + timedelta(hours=1)
    facts = [
        ("Certificate", f"#{row.id} (bundle {row.bundle_id})"),
        ("Energy", f"{row.wh} Wh ({Decimal(row.wh).scaleb(-6):.6f} MWh)"),
        ("Certificate ids", f"{row.first_id} – {row.last_id}"),
        ("Beneficiary", row.beneficiary or ""),
        ("Purpose", row.purpose or ""),
        ("Consumption period", f"{row.period_start} to {row.period_end}"),
        ("Consumption country", row.claim_country or ""),
        ("Retired at (UTC)", str(row.finished_at or "")),
        ("Retired by", row.holder),
        ("Production device", row.meter_serial),
        ("Energy source", f"{ENERGY_SOURCE[row.technology]} ({row.technology})"),
        ("Production hour (UTC)", f"{row.hour_start:%Y-%m-%d %H:%M} – {hour_end:%H:%M}"),
        ("Country, grid region", f"{row.country}, {row.grid_region}"),
        ("Rated capacity", f"{row.capacity_kw} kW, commissioned {row.commissioning_date}"),
        ("Issued in transaction", row.issue_signature or ""),
        ("Burned in transaction", found.burn_signature or ""),
        ("Issuing body", ISSUING_BODY),
    ]
    rows = "\n".join(
        f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in facts
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Retirement statement – certificate {row.id}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 46rem; color: #111; }}
h1 {{ font-size: 1.4rem; }} th {{ text-align: left; padding: .3rem 1rem .3rem 0; }}
td {{ font-family: ui-monospace, monospace; word-break: break-all; }}
@media print {{ body {{ margin: 1cm; }} }}
</style></head>
<body>
<h1>Renewable electricity retirement statement</h1>
<p>The granular certificates below were retired (cancelled for a claim) on behalf of the
beneficiary and can never be claimed again. Each certificate stands for 1 Wh produced by the
device in the hour shown.</p>
<table>
{rows}
</table>
</body></html>
"""
