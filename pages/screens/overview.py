"""Overview: today's readings and mints, the queue, auto-mint, chain health, reconcile."""

from __future__ import annotations

import streamlit as st

from core import views
from core.chain.reader import ChainRead
from core.setting_fields import as_text
from core.views.supply_status import ReconcileState, reconcile
from pages.common import session, ui

REFRESH_SECS = 10
EMPTY = (
    "No readings yet: start the demo fleet with `make run`, or register a meter on the "
    "Meters & users page and point it at the API."
)

app = ui.get_app()
viewer = session.viewer_for(app, "overview")
st.title("Overview")


@st.fragment(run_every=REFRESH_SECS)
def overview() -> None:
    now = ui.now()
    config = app.config()
    with ui.reading(app) as session:
        stats = views.overview(session, viewer, now)
        expected = views.expected_supply(session, viewer, app.settings.app)
    reader = ui.chain_reader(app)
    health = ui.chain_health(reader.rpc_url, reader)
    supply: ChainRead[int] = (
        ui.chain_supply(reader.rpc_url, expected.mint_address, reader)
        if expected
        else ChainRead(error="no GRX mint recorded yet")
    )
    status = reconcile(expected, supply)
    decimals = expected.decimals if expected else config.decimals

    if stats.last_submitted_at is None:
        st.info(EMPTY, icon=":material/info:")
    st.caption(
        f"Today = {now:%Y-%m-%d} UTC · last reading received {ui.when(stats.last_submitted_at)} UTC"
    )
    today = st.columns(4)
    today[0].metric("Readings today", f"{stats.readings_today:,}")
    energy = ui.kwh(stats.kwh_micro_today)
    minted = ui.grx(stats.base_units_minted_today, decimals)
    today[1].metric("Energy today", f"{ui.brief(energy)} kWh", help=f"exactly {energy} kWh")
    today[2].metric("GRX minted today", ui.brief(minted), help=f"exactly {minted} GRX")
    today[3].metric("Readings minted today", f"{stats.readings_minted_today:,}")

    queue = st.columns(4)
    queue[0].metric("Pending", f"{stats.pending:,}")
    queue[1].metric(
        "Minting (in flight)", f"{stats.minting:,}", help=f"{stats.open_batches} open transactions"
    )
    queue[2].metric(
        "Failed", f"{stats.failed:,}", help="Out of retries: an admin retries them on Minting"
    )
    queue[3].metric(
        "In review", f"{stats.review:,}", help="Above the review threshold: see Review queue"
    )

    state = st.columns(3)
    state[0].metric(
        "Auto-mint",
        "on" if config.auto_mint_enabled else "off",
        help=f"{as_text(config.kwh_to_token_ratio)} GRX per kWh, "
        f"a cycle every {config.polling_interval_secs} s",
    )
    state[1].metric("Chain", "healthy" if health.ok else "unavailable", help=reader.rpc_url)
    state[2].metric("Reconcile", status.state.value)
    if not health.ok:
        st.warning(health.error or "chain unavailable")
    if status.state == ReconcileState.MISMATCH:
        st.error(
            f"Reconcile mismatch: on-chain supply {ui.grx(status.onchain or 0, decimals)} GRX, "
            f"expected {ui.grx(status.expected or 0, decimals)} GRX "
            f"(difference {ui.grx(status.difference or 0, decimals)} GRX). {status.detail}."
        )
    elif status.state == ReconcileState.MATCH:
        st.success(f"On-chain supply matches: {ui.grx(status.expected or 0, decimals)} GRX.")
    else:
        expected_text = (
            ""
            if status.expected is None
            else f" Expected supply {ui.grx(status.expected, decimals)} GRX."
        )
        st.info(f"Reconcile not checked: {status.detail}.{expected_text}")


overview()
