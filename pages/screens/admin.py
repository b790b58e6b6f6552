"""Meters, gateways and users (admins): register meters (API key shown once) with
their registry fields, edit those, suspend and resume meters, give head-end gateways
a key for a set of meters, create users with validated wallets, disable logins, end
a user's sessions. Every list is a searched page and every choice a search, then a
pick (pages.common.paging): a fleet is 100,000 meters and as many prosumers."""

from __future__ import annotations

import streamlit as st

from core import views
from core.db.models import MeterStatus, Role
from core.device_attributes import Technology, shown
from core.meters import register_meter, set_meter_status, update_device_attributes
from core.sessions import end_user_sessions
from core.settlement.queries import recent_intervals
from core.units import format_kwh
from core.users import create_user, get_user, set_user_disabled
from pages.common import exports, paging, session, ui
from pages.common.gateway_panel import gateway_panel

NEW_KEY = "admin.new_api_key"
TECHNOLOGIES = [t.value for t in Technology]


def device_inputs(prefix: str, current: object = None) -> dict[str, object]:
    """The registry fields as widgets; blank text means "not set"."""

    def now(name: str) -> str:
        return shown(getattr(current, name, None)) or ""

    technology = now("technology")
    left, right = st.columns(2)
    values: dict[str, object] = {
        "technology": left.selectbox(
            "Technology",
            TECHNOLOGIES,
            index=TECHNOLOGIES.index(technology) if technology else None,
            key=f"{prefix}.technology",
        ),
        "capacity_kw": right.text_input(
            "Rated capacity (kW)", now("capacity_kw"), key=f"{prefix}.capacity_kw"
        ),
        "country": left.text_input(
            "Country (ISO 3166-1 alpha-2)", now("country"), key=f"{prefix}.country"
        ),
        "grid_region": right.text_input(
            "Grid region (bidding zone, e.g. TH-PEA)", now("grid_region"), key=f"{prefix}.region"
        ),
        "latitude": left.text_input("Latitude", now("latitude"), key=f"{prefix}.latitude"),
        "longitude": right.text_input("Longitude", now("longitude"), key=f"{prefix}.longitude"),
        "commissioning_date": left.text_input(
            "Commissioning date (YYYY-MM-DD)",
            now("commissioning_date"),
            key=f"{prefix}.commissioned",
        ),
    }
    return values


app = ui.get_app()
viewer = session.viewer_for(app, "admin")
st.title("Meters & users")
ui.show_flash()


def usernames_like(needle: str, current: str | None, role: Role | None = None) -> list[str]:
    with ui.reading(app) as reading:
        found = views.users(reading, viewer, role=role, search=needle, enabled_only=role
                            is not None, limit=paging.MATCHES + 1)  # fmt: skip
    names = [u.username for u in found if u.username != viewer.username][: paging.MATCHES]
    return ([current] if current and current not in names else []) + names


def meter_row(m: views.MeterRow) -> dict[str, object]:
    return {
        "serial": m.serial,
        "owner": m.owner,
        "status": m.status,
        "technology": m.technology or "",
        "capacity (kW)": shown(m.capacity_kw) or "",
        "country": m.country or "",
        "grid region": m.grid_region or "",
        "location": f"{m.latitude}, {m.longitude}" if m.latitude is not None else "",
        "commissioned": shown(m.commissioning_date) or "",
        "certificates": m.certificates_blocked or "can issue",
        "registered (UTC)": ui.when(m.created_at),
        "last seen (UTC)": ui.when(m.last_seen_at),
    }


def chosen_meter(serial: str) -> views.MeterRow | None:
    with ui.reading(app) as reading:
        return views.meter_row(reading, viewer, serial)


find_meters = paging.serial_finder(app, viewer)
meters_tab, gateways_tab, users_tab = st.tabs(["Meters", "Gateways", "Users"])
with meters_tab:
    new_key = st.session_state.pop(NEW_KEY, None)  # popped: the next run no longer has it
    if new_key:
        st.success(f"Meter {new_key[0]} registered. Its API key, shown this once:")
        st.code(new_key[1], language=None)
        st.warning("Copy the key now: only its hash is stored, it cannot be shown again.")
    find_col, status_col = st.columns([3, 1])
    meter_search = find_col.text_input("Serial or owner", key="admin.meters_search",
                                       placeholder="any meter")  # fmt: skip
    meter_status = status_col.selectbox("Status", [s.value for s in MeterStatus], index=None,
                                        key="admin.meters_status", placeholder="any")  # fmt: skip
    with ui.reading(app) as reading:
        meter_total = views.count_meters(reading, viewer, search=meter_search, status=meter_status)
    if meter_total:
        offset = paging.page_offset("admin.meters_page", meter_total)
        with ui.reading(app) as reading:
            page = views.meters(reading, viewer, search=meter_search, status=meter_status,
                                limit=paging.PAGE_ROWS, offset=offset)  # fmt: skip
        st.caption(paging.showing(offset, len(page), meter_total, "meters"))
        st.dataframe([meter_row(m) for m in page], hide_index=True, key="admin.meters")
        exports.download_link(
            app, viewer, "meters", views.TableFilter(), key="admin.meters_download"
        )
    elif meter_search or meter_status:
        st.info("No meter matches: clear the search.")
    else:
        st.info("No meters yet: register one below (its owner must be a prosumer with a wallet).")

    st.subheader("Register a meter")
    owner_needle = paging.find_box("Owner (prosumer)", "admin.meter_owner")
    with st.form("admin.register_meter", clear_on_submit=True):
        serial = st.text_input("Serial", key="admin.meter_serial")
        owner = paging.pick_one(
            "Owner (prosumer)", "admin.meter_owner",
            lambda needle, current: usernames_like(needle, current, Role.PROSUMER),
            needle=owner_needle,
        )  # fmt: skip
        public_key = st.text_input(
            "Public key (ed25519: base58 or 64 hex)", key="admin.meter_public_key"
        )
        reporting = st.selectbox(
            "GridTokenX telemetry registers",
            ["tick_energy", "cumulative_registers"],
            help="tick_energy: each sample's own energy (their simulator); "
            "cumulative_registers: running import/export counters, settled by difference",
            key="admin.meter_reporting",
        )
        st.caption("Registry fields (needed before the meter can issue certificates)")
        device = device_inputs("admin.meter_new")
        register = st.form_submit_button("Register", type="primary", key="admin.meter_register")
    if register:
        registered = ui.act(
            app,
            lambda s: register_meter(
                s,
                serial,
                owner or "",
                public_key,
                by=viewer.username,
                device=device,
                reporting=reporting,
            ),
        )
        if registered is not None:
            st.session_state[NEW_KEY] = (registered.meter.serial, registered.api_key)
            st.rerun()

    if meter_total or meter_search or meter_status:
        st.subheader("Registry fields")
        edited = paging.pick_one("Meter", "admin.device_serial", find_meters, first=True)
        chosen_row = chosen_meter(edited) if edited else None
        if chosen_row is not None:
            with st.form(f"admin.device_form.{edited}"):
                changes = device_inputs(f"admin.device.{edited}", chosen_row)
                save = st.form_submit_button("Save registry fields", key="admin.device_save")
            if save:
                ui.act(
                    app,
                    lambda s: update_device_attributes(s, edited, changes, by=viewer.username),
                    f"Registry fields of {edited} saved.",
                )

        st.subheader("Suspend or resume")
        chosen = paging.pick_one("Meter", "admin.meter_status_serial", find_meters, first=True)
        toggled = chosen_meter(chosen) if chosen else None
        if toggled is not None:
            current = toggled.status
            target = (
                MeterStatus.ACTIVE if current == MeterStatus.SUSPENDED else MeterStatus.SUSPENDED
            )
            label = "Resume" if target == MeterStatus.ACTIVE else "Suspend"
            if st.button(f"{label} {chosen}", key="admin.meter_status_toggle"):
                ui.act(
                    app,
                    lambda s: set_meter_status(s, chosen, target, by=viewer.username),
                    f"Meter {chosen} is now {target.value}.",
                )

        st.subheader("Telemetry intervals")
        st.caption(
            "GridTokenX samples settle into intervals; a closed interval's net surplus is "
            "minted once. Net at or below zero is kept here and never minted."
        )
        watched = paging.pick_one("Meter", "admin.interval_serial", find_meters, first=True)
        if watched:
            with ui.reading(app) as reading:
                recent = recent_intervals(reading, watched, 24)
            if recent:
                st.dataframe(
                    [
                        {
                            "interval (UTC)": ui.when(v.interval_start),
                            "status": v.status,
                            "samples": v.sample_count,
                            "net kWh": format_kwh(v.net_micro, micro=True),
                            "generated kWh": format_kwh(v.generated_micro, micro=True),
                            "consumed kWh": format_kwh(v.consumed_micro, micro=True),
                            "minted kWh": format_kwh(v.settled_micro, micro=True),
                            "closed by": v.closed_by or "",
                        }
                        for v in recent
                    ],
                    hide_index=True,
                    key="admin.intervals",
                )
            else:
                st.info(f"No telemetry from {watched} yet.")

with gateways_tab:
    gateway_panel(app, viewer)

with users_tab:
    user_search = st.text_input("Username", key="admin.users_search", placeholder="any user")
    with ui.reading(app) as reading:
        user_total = views.count_users(reading, viewer, search=user_search)
    offset = paging.page_offset("admin.users_page", user_total)
    with ui.reading(app) as reading:
        user_page = views.users(reading, viewer, search=user_search, limit=paging.PAGE_ROWS,
                                offset=offset)  # fmt: skip
    st.caption(paging.showing(offset, len(user_page), user_total, "users"))
    exports.download_link(app, viewer, "users", views.TableFilter(), key="admin.users_download")
    st.dataframe(
        [
            {
                "username": u.username,
                "role": u.role,
                "wallet": u.wallet_address or "",
                "disabled": u.disabled,
                "created (UTC)": ui.when(u.created_at),
            }
            for u in user_page
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

    st.subheader("Disable or enable a login")
    who = paging.pick_one("User", "admin.user_toggle_name", usernames_like, first=True)
    if who:
        with ui.reading(app) as reading:
            picked_user = views.user_row(reading, viewer, who)
        disabled = bool(picked_user and picked_user.disabled)
        if st.button(f"{'Enable' if disabled else 'Disable'} {who}", key="admin.user_toggle"):
            ui.act(
                app,
                lambda s: set_user_disabled(s, who, not disabled, by=viewer.username, now=ui.now()),
                f"{who} is now {'enabled' if disabled else 'disabled'}.",
            )
        st.caption(
            "End sessions logs the user out everywhere at once (API tokens, live "
            "feeds, dashboard tabs); they can log in again unless disabled."
        )
        if st.button(f"End sessions of {who}", key="admin.user_end_sessions"):
            ui.act(
                app,
                lambda s: end_user_sessions(s, get_user(s, who), now=ui.now(), by=viewer.username),
                lambda ended: f"Ended {ended} session(s) of {who}.",
            )
