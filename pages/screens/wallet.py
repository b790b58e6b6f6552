"""My wallet (prosumers): GRX on chain beside what the database says was minted.

A difference is shown, never hidden: it means mints not yet confirmed, tokens moved
out of the wallet, or a fault for an operator to look at.
"""

from __future__ import annotations

import streamlit as st

from core import views
from core.chain.explorer import explorer_url
from core.chain.reader import ChainRead
from core.views import Window
from pages.common import charts, refresh, session, ui

DAYS = 30

app = ui.get_app()
viewer = session.viewer_for(app, "wallet")
refresh.refresh_on_events(app, viewer)
st.title("My wallet")
now = ui.now()
with ui.reading(app) as session:
    totals = views.wallet_totals(session, viewer)
    daily = views.daily_production(session, viewer, Window.ending_at(now, DAYS * 86_400, 86_400))
    mints = views.recent_mints(session, viewer, limit=50)
    readings = views.latest_readings(session, viewer, limit=50)
    mint = views.current_token_mint(session, app.settings.app)
decimals = mint.decimals if mint else app.config().decimals

st.caption(f"Wallet {totals.wallet_address or '(none: ask an admin to set one)'}")
reader = ui.chain_reader(app)
balance: ChainRead[int] = (
    ui.chain_balance(
        reader.rpc_url, totals.wallet_address, mint.address, mint.token_program, reader
    )
    if mint and totals.wallet_address
    else ChainRead(error="no GRX mint recorded yet" if not mint else "no wallet")
)
cells = st.columns(4)
cells[0].metric(
    "On-chain balance",
    f"{ui.grx(balance.value, decimals)} GRX"
    if balance.ok and balance.value is not None
    else "unavailable",
)
cells[1].metric(
    "Minted to this wallet (database)", f"{ui.grx(totals.minted_to_wallet, decimals)} GRX"
)
cells[2].metric(
    "Energy reported", f"{ui.kwh(totals.kwh_micro)} kWh", help=f"{totals.readings:,} readings"
)
cells[3].metric("Waiting to be minted", f"{totals.waiting_readings:,} readings")
if not balance.ok:
    st.warning(f"On-chain balance not read: {balance.error}. The database total is shown alone.")
elif balance.value != totals.minted_to_wallet:
    difference = (balance.value or 0) - totals.minted_to_wallet
    st.warning(
        f"Difference: the chain holds {ui.grx(difference, decimals)} GRX "
        f"{'more' if difference > 0 else 'less'} than minted here. Tokens moved in or out of "
        "the wallet, or a mint not yet recorded, explain it; ask an operator if neither does."
    )
else:
    st.success("On-chain balance matches the minted total.")

if totals.readings == 0:
    st.info("No readings yet: your meters' readings appear here once they report.")
st.plotly_chart(charts.daily_chart(daily, decimals), key="wallet.daily_chart")

rpc_url = app.settings.app.effective_rpc_url
linked = explorer_url("x", rpc_url) is not None  # a public cluster: link to the Explorer
mints_tab, readings_tab = st.tabs(["Mints", "Readings"])
with mints_tab:
    st.dataframe(
        [
            {
                "minted (UTC)": ui.when(m.minted_at),
                "readings": m.readings,
                "kWh": ui.kwh(m.kwh_micro),
                "GRX": ui.grx(m.base_units, decimals),
                "transaction": explorer_url(m.signature, rpc_url) if linked else m.signature,
            }
            for m in mints
        ],
        column_config={
            "transaction": st.column_config.LinkColumn(display_text=r"tx/([^?]{12})")
            if linked
            else st.column_config.TextColumn()
        },
        hide_index=True,
        key="wallet.mints",
    )
with readings_tab:
    st.dataframe(
        [
            {
                "id": r.id,
                "meter": r.meter_serial,
                "kWh": ui.kwh(r.kwh_micro),
                "reading time (UTC)": ui.when(r.reading_timestamp),
                "status": r.status,
                "GRX": "" if r.token_base_units is None else ui.grx(r.token_base_units, decimals),
                "transaction": r.mint_tx_signature or "",
            }
            for r in readings
        ],
        hide_index=True,
        key="wallet.readings",
    )
