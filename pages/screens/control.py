"""Control (admins): the runtime tokenization rules and "Mint now".

Inputs take their ranges from TokenizationConfig (core.setting_fields); saving
goes through core.settings_store.update_settings, which validates again and writes
one settings_changed event per change (who, old, new).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.errors import DomainError
from core.minting.requests import request_mint_now
from core.setting_fields import (
    SETTING_FIELDS,
    SettingField,
    as_text,
    parse_changes,
    ratio_preview,
)
from core.settings_store import read_overrides, reset_settings, update_settings
from pages.common import session, ui

MINTING = ("auto_mint_enabled", "kwh_to_token_ratio", "batch_size", "polling_interval_secs",
           "max_retries", "retry_base_secs", "max_mint_wait_secs", "priority_fee_microlamports",
           "fee_payer_min_sol", "create_token_accounts")  # fmt: skip
KEY = "control.{}".format

app = ui.get_app()
viewer = session.viewer_for(app, "control")
st.title("Control")
ui.show_flash()
base = app.settings.tokenization
config = app.config()
with ui.reading(app) as session:
    overrides = read_overrides(session)


def setting_input(field: SettingField) -> Any:
    current = getattr(config, field.name)
    label = field.label + (" (overridden)" if field.name in overrides else "")
    help_text = f"Allowed: {field.allowed}." if field.allowed else None
    if field.kind == "bool":
        return st.toggle(label, value=current, key=KEY(field.name), help=help_text)
    if field.kind == "int":
        return st.number_input(
            label, min_value=field.minimum, max_value=field.maximum, value=current, step=1,
            key=KEY(field.name), help=help_text,
        )  # fmt: skip
    return st.text_input(label, value=as_text(current), key=KEY(field.name), help=help_text)


minting, validation = st.columns(2)
values: dict[str, Any] = {}
with minting:
    st.subheader("Minting")
    for field in SETTING_FIELDS:
        if field.name in MINTING:
            values[field.name] = setting_input(field)
with validation:
    st.subheader("Validation")
    for field in SETTING_FIELDS:
        if field.name not in MINTING:
            values[field.name] = setting_input(field)

try:
    changes = parse_changes(values, config)
except DomainError as exc:
    ui.show_error(exc)
    changes = None

confirmed = True
if changes and "kwh_to_token_ratio" in changes:
    new_ratio = changes["kwh_to_token_ratio"]
    try:
        after = ratio_preview(new_ratio, config.decimals)
    except (ValueError, ArithmeticError):
        after = "not a valid ratio"
    st.warning(
        f"Ratio change: now {ratio_preview(config.kwh_to_token_ratio, config.decimals)}; "
        f"after saving {after}. It applies to readings minted from the next cycle on."
    )
    confirmed = st.checkbox("I confirm the new ratio", key="control.confirm_ratio")

if st.button("Save changes", type="primary", key="control.save", disabled=not changes):
    if not confirmed:
        st.error("Confirm the ratio change (checkbox above) before saving.")
    elif changes:
        st.session_state.pop("control.confirm_ratio", None)  # a later change confirms anew
        ui.act(
            app,
            lambda s: update_settings(s, base, changes, by=viewer),
            "Saved: " + ", ".join(f"{key} = {value}" for key, value in changes.items()),
        )

st.divider()
mint_now, reset = st.columns(2)
with mint_now:
    st.subheader("Mint now")
    st.caption("Mints every reading pending at this moment at the next cycle, auto-mint on or off.")
    if st.button("Mint now", key="control.mint_now", icon=":material/bolt:"):
        ui.act(
            app,
            lambda s: request_mint_now(s, viewer),
            lambda request: (
                f"Mint requested (#{request.id}): every reading pending up to "
                f"#{request.upto_reading_id} mints at the next cycle."
            ),
        )
with reset:
    st.subheader("Environment defaults")
    st.caption(f"Overridden here: {', '.join(sorted(overrides)) or 'nothing'}.")
    if st.button("Reset all overrides", key="control.reset", disabled=not overrides):
        done = ui.act(app, lambda s: reset_settings(s, base, sorted(overrides), by=viewer))
        if done is not None:
            for field in SETTING_FIELDS:  # the inputs show the environment's values again
                st.session_state.pop(KEY(field.name), None)
            ui.flash("Overrides removed: the environment's values apply again.")
