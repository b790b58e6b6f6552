"""The Gateways tab of Meters & users: gateways a page at a time with their meter
counts, create one for meters searched then picked, add and remove meters of one,
rotate and revoke its key. Every list is searched (a gateway holds ~1,000 meters)."""

from __future__ import annotations

import streamlit as st

from core.bootstrap import App
from core.db.models import GatewayStatus, User
from core.gateways import assign_meters, create_gateway, revoke_gateway, rotate_gateway_key
from core.views.gateways import count_gateways, gateway_serials, gateways
from pages.common import paging, ui

NEW_GATEWAY_KEY = "admin.new_gateway_key"


def gateway_panel(app: App, viewer: User) -> None:
    find_meters = paging.serial_finder(app, viewer)
    st.caption(
        "A gateway is a head-end system's key: it submits for the meters assigned to it, "
        "on every ingest door; each reading is still verified against its own meter's key."
    )
    new_gateway_key = st.session_state.pop(NEW_GATEWAY_KEY, None)
    if new_gateway_key:
        st.success(f"Gateway {new_gateway_key[0]}: its API key, shown this once:")
        st.code(new_gateway_key[1], language=None)
        st.warning("Copy the key now: only its hash is stored, it cannot be shown again.")
    gateway_search = st.text_input("Gateway name", key="admin.gateways_search",
                                   placeholder="any gateway")  # fmt: skip
    with ui.reading(app) as reading:
        gateway_total = count_gateways(reading, viewer, search=gateway_search)
    if gateway_total:
        offset = paging.page_offset("admin.gateways_page", gateway_total)
        with ui.reading(app) as reading:
            listed = gateways(reading, viewer, search=gateway_search, limit=paging.PAGE_ROWS,
                              offset=offset)  # fmt: skip
        st.caption(paging.showing(offset, len(listed), gateway_total, "gateways"))
        st.dataframe(
            [
                {
                    "name": g.name,
                    "status": g.status,
                    "meters": g.meters,
                    "created by": g.created_by,
                    "last seen (UTC)": ui.when(g.last_seen_at),
                }
                for g in listed
            ],
            hide_index=True,
            key="admin.gateways",
        )
    st.subheader("Create a gateway")
    gateway_name = st.text_input("Name", key="admin.gateway_name")
    new_needle = paging.find_box("Its meters", "admin.gateway_meters")
    gateway_meters = paging.pick_many("Its meters", "admin.gateway_meters",
                                      find_meters(new_needle))  # fmt: skip
    if st.button("Create", type="primary", key="admin.gateway_create"):
        issued = ui.act(
            app, lambda s: create_gateway(s, gateway_name, gateway_meters, by=viewer.username)
        )
        if issued is not None:
            st.session_state[NEW_GATEWAY_KEY] = (issued.gateway.name, issued.api_key)
            for key in ("admin.gateway_name", "admin.gateway_meters", "admin.gateway_meters.find"):
                del st.session_state[key]  # a fresh form for the next gateway
            st.rerun()

    def active_like(needle: str, current: str | None) -> list[str]:
        with ui.reading(app) as reading:
            found = gateways(reading, viewer, search=needle, status=GatewayStatus.ACTIVE.value,
                             limit=paging.MATCHES)  # fmt: skip
        names = [g.name for g in found]
        return ([current] if current and current not in names else []) + names

    st.subheader("Change a gateway")
    picked = paging.pick_one("Gateway", "admin.gateway_pick", active_like, first=True)
    if picked:
        with ui.reading(app) as reading:
            current_meters = gateway_serials(reading, viewer, picked)
        st.caption(f"{picked} submits for {len(current_meters):,} meter(s).")
        add_col, remove_col = st.columns(2)
        with add_col:
            needle = paging.find_box("Meters to add", f"admin.gateway_add.{picked}")
            adding = paging.pick_many("Meters to add", f"admin.gateway_add.{picked}",
                                      find_meters(needle))  # fmt: skip
        with remove_col:
            needle = paging.find_box("Meters to remove", f"admin.gateway_remove.{picked}")
            with ui.reading(app) as reading:
                held = gateway_serials(reading, viewer, picked, search=needle,
                                       limit=paging.MATCHES)  # fmt: skip
            removing = paging.pick_many("Meters to remove", f"admin.gateway_remove.{picked}", held)
        chosen_meters = sorted((set(current_meters) | set(adding)) - set(removing))
        assign, rotate, revoke = st.columns(3)
        if assign.button("Save meters", key="admin.gateway_assign"):
            saved = ui.act(
                app, lambda s: assign_meters(s, picked, chosen_meters, by=viewer.username)
            )
            if saved is not None:
                for key in ("add", "remove"):  # saved: nothing left to add or remove
                    st.session_state.pop(f"admin.gateway_{key}.{picked}", None)
                ui.flash(f"Gateway {picked} now submits for {len(chosen_meters)} meter(s).")
        if rotate.button("Rotate key", key="admin.gateway_rotate"):
            issued = ui.act(app, lambda s: rotate_gateway_key(s, picked, by=viewer.username))
            if issued is not None:
                st.session_state[NEW_GATEWAY_KEY] = (issued.gateway.name, issued.api_key)
                st.rerun()
        if revoke.button("Revoke", key="admin.gateway_revoke"):
            ui.act(
                app,
                lambda s: revoke_gateway(s, picked, by=viewer.username),
                f"Gateway {picked} is revoked; its key no longer works.",
            )
