"""Certificates as EnergyTag-style JSON and as CSV cells (streamed by core.exports).

`energytag_bundle` maps one certificate row onto the EnergyTag granular
certificate attributes (the mapping is tabled in docs/CERTIFICATES.md); the
JSON Schema it must satisfy is `schemas/energytag-gc-bundle.schema.json`
beside this module (the tests validate every export against it).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

from core.chain.certificate_instructions import issue_memo
from core.views.certificates import CertificateRow

ISSUING_BODY = "GridTokenX Tokenization Console"
EXPIRY = timedelta(days=365)  # informative: the registry does not expire certificates
ENERGY_SOURCE = {
    "solar_pv": "Solar", "wind": "Wind", "hydro": "Hydro", "battery": "Storage",
    "biomass": "Biomass", "geothermal": "Geothermal", "marine": "Marine", "other": "Other",
}  # fmt: skip
STATUS = {
    "active": "Active", "retired": "Claimed", "cancelled": "Cancelled", "rejected": "Withdrawn",
    "review": "Reserved", "issuing": "Locked", "transferring": "Locked", "retiring": "Locked",
    "cancelling": "Locked", "split": "Withdrawn",
}  # fmt: skip
CSV_COLUMNS = (
    "certificate_id", "issuance_id", "status", "meter_serial", "hour_start", "wh",
    "first_id", "last_id", "technology", "capacity_kw", "country", "grid_region", "holder",
    "holder_wallet", "issue_signature", "beneficiary", "purpose", "period_start", "period_end",
    "claim_country",
)  # fmt: skip


def schema() -> dict[str, Any]:
    text = resources.files("core.certificates").joinpath("schemas/energytag-gc-bundle.schema.json")
    return json.loads(text.read_text())


def _utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def energytag_bundle(row: CertificateRow, *, mint: str | None) -> dict[str, Any]:
    storage = row.technology == "battery"
    location = None
    if row.latitude is not None and row.longitude is not None:
        location = [format(row.latitude, "f"), format(row.longitude, "f")]
    bundle: dict[str, Any] = {
        "issuance_id": str(row.bundle_id),
        "certificate_id": row.id,
        "certificate_status": STATUS[row.status],
        "account_id": row.holder_wallet,
        "bundle_id_range_start": row.first_id,
        "bundle_id_range_end": row.last_id,
        "bundle_quantity": row.wh,
        "energy_carrier": "Electricity",
        "energy_source": ENERGY_SOURCE[row.technology],
        "face_value": 1,
        "issuance_post_energy_carrier_conversion": False,
        "device_id": row.meter_serial,
        "device_name": row.meter_serial,
        "device_technology_type": row.technology,
        "device_production_start_date": row.commissioning_date.isoformat(),
        "device_capacity": int(Decimal(row.capacity_kw) * 1000),  # W, exact: kW has 3 decimals
        "device_location": location,
        "device_type": "Storage" if storage else "Production",
        "production_starting_interval": _utc(row.hour_start),
        "production_ending_interval": _utc(row.hour_start + timedelta(hours=1)),
        "expiry_datestamp": (row.hour_start + EXPIRY).date().isoformat(),
        "is_storage": storage,
        "country_of_issuance": row.country,
        "connected_grid_identification": row.grid_region,
        "issuing_body": ISSUING_BODY,
        "issue_market_zone": row.grid_region,
        "chain": {
            "mint": mint,
            "decimals": 6,
            "issue_signature": row.issue_signature,
            "issue_memo": issue_memo(row.bundle_id, row.first_id, row.last_id),
        },
    }
    if row.status == "retired" and row.period_start and row.period_end:
        bundle["claim"] = {
            "beneficiary": row.beneficiary,
            "purpose": row.purpose,
            "consumption_period_start": row.period_start.isoformat(),
            "consumption_period_end": row.period_end.isoformat(),
            "country": row.claim_country,
            "retired_at": row.finished_at and _utc(row.finished_at),
        }
    if row.cancel_reason:
        bundle["cancellation_reason"] = row.cancel_reason
    return bundle


def csv_cells(row: CertificateRow) -> list[str]:
    """One certificate as the cells of CSV_COLUMNS (core.exports streams and quotes them)."""
    return [
        str(value)
        for value in (
            row.id, row.bundle_id, row.status, row.meter_serial, _utc(row.hour_start),
            row.wh, row.first_id, row.last_id, row.technology, format(row.capacity_kw, "f"),
            row.country, row.grid_region, row.holder, row.holder_wallet,
            row.issue_signature or "", row.beneficiary or "", row.purpose or "",
            row.period_start or "", row.period_end or "", row.claim_country or "",
        )
    ]  # fmt: skip
