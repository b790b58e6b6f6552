"""The editable runtime settings as fields (label, kind, range), read from the model itself.

The allowed ranges are the TokenizationConfig Field constraints: a form shows and
enforces exactly what `update_settings` validates, with no number written twice.
Amounts are Decimal text inputs (a float input would round 0.1); integers are ints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from core.config import OVERRIDABLE_KEYS, TokenizationConfig
from core.settings_store import InvalidSetting
from core.units import tokens_for_display

Kind = Literal["bool", "int", "decimal"]

LABELS: dict[str, str] = {
    "kwh_to_token_ratio": "GRX per kWh (ratio)",
    "auto_mint_enabled": "Auto-mint",
    "polling_interval_secs": "Mint cycle interval (s)",
    "batch_size": "Readings claimed per cycle",
    "max_reading_kwh": "Largest reading accepted (kWh)",
    "reading_max_age_days": "Oldest reading accepted (days)",
    "duplicate_window_secs": "Duplicate window per meter (s)",
    "max_clock_skew_secs": "Future timestamps tolerated (s)",
    "max_retries": "Mint retries before failed",
    "retry_base_secs": "Retry backoff base (s)",
    "review_threshold_kwh": "Review readings above (kWh; empty = no review)",
    "max_kw_per_meter": "Rated power of a meter without its own (kW)",
    "max_backfill_hours": "Back-filled readings older than this wait in review (h)",
    "max_mint_wait_secs": "Longest wait to fill a transaction (s; 0 = send at once)",
    "priority_fee_microlamports": "Priority fee (micro-lamports per compute unit)",
    "fee_payer_min_sol": "Alert when the fee payer holds less than (SOL)",
    "create_token_accounts": "Create missing token accounts",
}
PREVIEW_KWH = Decimal("10.5")


@dataclass(frozen=True, slots=True)
class SettingField:
    name: str
    label: str
    kind: Kind
    optional: bool
    minimum: Decimal | int | None
    minimum_exclusive: bool
    maximum: Decimal | int | None
    decimal_places: int | None

    @property
    def allowed(self) -> str:
        """The range in words, e.g. "> 0 and ≤ 1000, at most 9 decimals"."""
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.minimum_exclusive else '≥'} {self.minimum}")
        if self.maximum is not None:
            parts.append(f"≤ {self.maximum}")
        text = " and ".join(parts)
        if self.decimal_places is not None:
            text += f", at most {self.decimal_places} decimals"
        if self.optional:
            text += "; empty for none"
        return text


def _field(name: str) -> SettingField:
    info = TokenizationConfig.model_fields[name]
    bounds: dict[str, Any] = {}
    for constraint in info.metadata:
        for attribute in ("gt", "ge", "le", "decimal_places"):
            value = getattr(constraint, attribute, None)
            if value is not None:
                bounds[attribute] = value
    annotation = str(info.annotation)
    kinds: dict[Any, Kind] = {bool: "bool", int: "int"}
    kind = kinds.get(info.annotation, "decimal")
    return SettingField(
        name=name,
        label=LABELS.get(name, name),
        kind=kind,
        optional="None" in annotation,
        minimum=bounds.get("gt", bounds.get("ge")),
        minimum_exclusive="gt" in bounds,
        maximum=bounds.get("le"),
        decimal_places=bounds.get("decimal_places"),
    )


SETTING_FIELDS: tuple[SettingField, ...] = tuple(_field(name) for name in OVERRIDABLE_KEYS)


def field_by_name(name: str) -> SettingField:
    return next(field for field in SETTING_FIELDS if field.name == name)


def as_text(value: Decimal | None) -> str:
    """A Decimal setting as the text the page shows ("" for unset)."""
    return "" if value is None else format(value.normalize(), "f")


def parse_changes(raw: Mapping[str, Any], current: TokenizationConfig) -> dict[str, Any]:
    """The inputs that differ from the current configuration, typed for update_settings.

    Decimal inputs arrive as text; unparsable text is an InvalidSetting naming the
    field. Range checks stay with TokenizationConfig (via update_settings).
    """
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        field = field_by_name(name)
        typed: Any = value
        if field.kind == "decimal":
            text = str(value or "").strip()
            if not text and field.optional:
                typed = None
            else:
                try:
                    typed = Decimal(text)
                except InvalidOperation as exc:
                    raise InvalidSetting(
                        f"{field.label}: {text!r} is not a number", field=name
                    ) from exc
        elif field.kind == "int":
            typed = int(value)
        else:
            typed = bool(value)
        if typed != getattr(current, name):
            changes[name] = typed
    return changes


def ratio_preview(ratio: Decimal, decimals: int, kwh: Decimal = PREVIEW_KWH) -> str:
    """What a reading becomes at `ratio`, exactly as minted: "10.5 kWh -> 10.5 GRX"."""
    return f"{as_text(kwh)} kWh -> {tokens_for_display(kwh, ratio, decimals)} GRX"
