"""Meters and users (admins): register meters (API key shown once), suspend and
resume them, create users with validated wallets, disable logins."""

from __future__ import annotations

import streamlit as st

from core import views
from core.db.models import MeterStatus, Role
from core.meters import register_meter, set_meter_status
from core.users import create_user, set_user_disabled
from pages.common import session, ui

NEW_KEY = "admin.new_api_key"

app = ui.get_app()
viewer = session.viewer_for(app, "admin")
st.title("Meters & users")
ui.show_flash()
with ui.reading(app) as session:
    meters = views.meters(session, viewer)
    users = views.users(session, viewer)
prosumers = [
    u.username for u in users if u.role == Role.PROSUMER and u.wallet_address and not u.disabled
]

meters_tab, users_tab = st.tabs(["Meters", "Users"])
with meters_tab:
    new_key = st.session_state.pop(NEW_KEY, None)  # popped: the next run no longer has it
    if new_key:
        st.success(f"Meter {new_key[0]} registered. Its API key, shown this once:")
        st.code(new_key[1], language=None)
        st.warning("Copy the key now: only its hash is stored, it cannot be shown again.")
    if meters:
        st.dataframe(
            [
                {
                    "serial": m.serial,
                    "owner": m.owner,
                    "status": m.status,
                    "registered (UTC)": ui.when(m.created_at),
                    "last seen (UTC)": ui.when(m.last_seen_at),
                }
                for m in meters
            ],
            hide_index=True,
            key="admin.meters",
        )
    else:
        st.info("No meters yet: register one below (its owner must be a prosumer with a wallet).")

    with st.form("admin.register_meter", clear_on_submit=True):
        st.subheader("Register a meter")
        serial = st.text_input("Serial", key="admin.meter_serial")
        owner = st.selectbox("Owner (prosumer)", prosumers, key="admin.meter_owner", index=None)
        public_key = st.text_input("Public key (base58 ed25519)", key="admin.meter_public_key")
        register = st.form_submit_button("Register", type="primary", key="admin.meter_register")
    if register:
        registered = ui.act(
            app, lambda s: register_meter(s, serial, owner or "", public_key, by=viewer.username)
        )
        if registered is not None:
            st.session_state[NEW_KEY] = (registered.meter.serial, registered.api_key)
            st.rerun()

    if meters:
        st.subheader("Suspend or resume")
        chosen = st.selectbox("Meter", [m.serial for m in meters], key="admin.meter_status_serial")
        current = next(m.status for m in meters if m.serial == chosen)
        target = MeterStatus.ACTIVE if current == MeterStatus.SUSPENDED else MeterStatus.SUSPENDED
        label = "Resume" if target == MeterStatus.ACTIVE else "Suspend"
        if st.button(f"{label} {chosen}", key="admin.meter_status_toggle"):
            ui.act(
                app,
                lambda s: set_meter_status(s, chosen, target, by=viewer.username),
                f"Meter {chosen} is now {target.value}.",
            )

with users_tab:
    st.dataframe(
        [
            {
                "username": u.username,
                "role": u.role,
                "wallet": u.wallet_address or "",
                "disabled": u.disabled,
                "created (UTC)": ui.when(u.created_at),
            }
            for u in users
        ],
        hide_index=True,
        key="admin.users",
    )
    with st.form("admin.create_user", clear_on_submit=True):
        st.subheader("Create a user")
        username = st.text_input("Username", key="admin.user_name")
        password = st.text_input(
            "Password (8+ characters)", type="password", key="admin.user_password"
        )
        role = st.selectbox("Role", [r.value for r in Role], index=2, key="admin.user_role")
        wallet = st.text_input(
            "Wallet (Solana address; required for a prosumer)", key="admin.user_wallet"
        )
        create = st.form_submit_button("Create", type="primary", key="admin.user_create")
    if create:
        ui.act(
            app,
            lambda s: create_user(s, username, password, role, wallet or None, by=viewer.username),
            lambda user: f"User {user.username} ({user.role}) created.",
        )

    others = [u for u in users if u.username != viewer.username]
    if others:
        st.subheader("Disable or enable a login")
        who = st.selectbox("User", [u.username for u in others], key="admin.user_toggle_name")
        disabled = next(u.disabled for u in others if u.username == who)
        if st.button(f"{'Enable' if disabled else 'Disable'} {who}", key="admin.user_toggle"):
            ui.act(
                app,
                lambda s: set_user_disabled(s, who, not disabled, by=viewer.username),
                f"{who} is now {'enabled' if disabled else 'disabled'}.",
            )
