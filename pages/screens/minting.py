"""Minting: queue depth over time, mint transactions, latency, failed readings."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import streamlit as st

from core import views
from core.chain.explorer import explorer_url
from core.db.models import Role
from core.minting.requests import retry_failed_readings
from core.views import Window
from pages.common import charts, exports, refresh, session, ui

REFRESH_SECS = 30
RANGES = {
    "Last hour": (3600, 60, "minute"),
    "Last 24 hours": (86_400, 900, "15 minutes"),
    "Last 7 days": (7 * 86_400, 3600, "hour"),
}
LATENCY_SINCE = timedelta(hours=24)


def retried(count: int) -> str:
    return f"{count} readings back in the queue with a fresh retry budget."


app = ui.get_app()
viewer = session.viewer_for(app, "minting")
refresh.refresh_on_events(app, viewer)
st.title("Minting")
ui.show_flash()
range_label = st.radio("Range", list(RANGES), index=1, horizontal=True, key="minting.range")


@st.fragment(run_every=REFRESH_SECS)
def queue_and_batches() -> None:
    span, bucket, bucket_name = RANGES[range_label]
    now = ui.now()
    with ui.reading(app) as session:
        queue = views.queue_depth(session, viewer, Window.ending_at(now, span, bucket))
        latency = views.latency_percentiles(session, viewer, now - LATENCY_SINCE)
        since = now - timedelta(seconds=span)
        batches = views.recent_batches(session, viewer, limit=50, since=since)
    decimals = app.config().decimals
    st.plotly_chart(charts.queue_chart(queue, bucket_name), key="minting.queue_chart")

    st.subheader("Acceptance → minted latency (last 24 h)")
    cells = st.columns(len(views.minting.PERCENTILES) + 1)
    cells[0].metric("Readings minted", f"{latency.readings:,}")
    for cell, percentile in zip(cells[1:], views.minting.PERCENTILES, strict=True):
        seconds = latency.percentiles.get(percentile)
        cell.metric(f"p{percentile}", "—" if seconds is None else f"{seconds} s")

    st.subheader("Mint transactions")
    st.caption("The newest 50 of the range.")
    exports.download_link(
        app, viewer, "mints", views.TableFilter(since=since), key="minting.download"
    )
    if not batches:
        st.info("No mint transactions yet: the scheduler mints accepted readings (`make run`).")
        return
    rpc_url = app.settings.app.effective_rpc_url
    linked = explorer_url("x", rpc_url) is not None  # public cluster: link to the Explorer
    st.dataframe(
        [
            {
                "batch": row.id,
                "status": row.status,
                "signature": (explorer_url(row.signature, rpc_url) if linked else row.signature)
                if row.signature
                else None,
                "readings": row.total_readings,
                "GRX": ui.grx(row.total_base_units, decimals),
                "created (UTC)": ui.when(row.created_at),
                "finished (UTC)": ui.when(row.finished_at),
                "avg latency (s)": row.avg_latency_secs,
                "max latency (s)": row.max_latency_secs,
                "error": row.error or "",
            }
            for row in batches
        ],
        column_config={
            "signature": st.column_config.LinkColumn("signature", display_text=r"tx/([^?]{12})")
            if linked
            else st.column_config.TextColumn("signature")
        },
        hide_index=True,
        key="minting.batches",
    )


queue_and_batches()


def sol(lamports: int) -> str:
    return format((Decimal(lamports).scaleb(-9)).quantize(Decimal("0.000001")), "f")


@st.fragment(run_every=REFRESH_SECS)
def costs_panel() -> None:
    """What minting costs, from the recorded ledger (GET /api/admin/costs has the same)."""
    st.subheader("Costs")
    with ui.reading(app) as session:
        spent = views.costs(session, viewer, ui.now())
    payer = spent.fee_payer
    balance, runway, today, month, locked = st.columns(5)
    balance.metric(
        "Fee payer (SOL)",
        "—" if payer is None else sol(payer.balance_lamports),
        help=None if payer is None else f"{payer.address}, read {ui.when(payer.read_at)}",
    )
    runway.metric(
        "Runway at this rate",
        "—" if spent.runway_days is None else f"{spent.runway_days} days",
        help="The payer's balance over the fees and rent of the last 24 hours.",
    )
    today.metric(
        "Spent today (SOL)",
        sol(spent.today.fees_lamports + spent.today.rent_lamports),
        help=f"Fees {spent.today.fees_lamports:,} + rent {spent.today.rent_lamports:,} lamports",
    )
    month.metric(
        "Spent, 30 days (SOL)",
        sol(spent.last_30_days.fees_lamports + spent.last_30_days.rent_lamports),
    )
    locked.metric(
        "Rent locked (SOL)",
        sol(sum(spent.rent_locked_lamports.values())),
        help="Deposited into token accounts and lookup tables; never spent, never refunded.",
    )
    per_reading = spent.today.lamports_per_reading
    st.caption(
        f"Today: {'—' if per_reading is None else per_reading} lamports of fees per minted "
        f"reading, {spent.today.transactions:,} transactions, "
        f"{'—' if spent.mints_per_transaction is None else spent.mints_per_transaction} "
        "MintTo per mint transaction (30 days)."
        + (" The fee payer is below its minimum: fund it." if payer and payer.low else "")
    )
    hourly, daily = st.tabs(["Last 24 hours", "Last 30 days"])
    with hourly:
        st.plotly_chart(charts.cost_chart(spent.hourly, "hour"), key="minting.cost_hourly")
    with daily:
        st.plotly_chart(charts.cost_chart(spent.daily, "day"), key="minting.cost_daily")


costs_panel()

st.subheader("Failed readings")
with ui.reading(app) as session:
    failed_total, failed = views.failed_readings(session, viewer, limit=200)
if not failed:
    st.success("No failed readings.")
else:
    st.caption(f"{failed_total:,} readings are out of retries (newest {len(failed)} shown).")
    st.dataframe(
        [
            {
                "id": row.id,
                "meter": row.meter_serial,
                "prosumer": row.username,
                "kWh": ui.kwh(row.kwh_micro),
                "reading time (UTC)": ui.when(row.reading_timestamp),
                "reason": row.last_error or "",
            }
            for row in failed
        ],
        hide_index=True,
        key="minting.failed",
    )
    if viewer.role == Role.ADMIN:
        chosen = st.multiselect(
            "Readings to retry", [row.id for row in failed], key="minting.retry_ids"
        )
        retry_some, retry_all = st.columns(2)
        if retry_some.button("Retry selected", key="minting.retry_selected", disabled=not chosen):
            ui.act(app, lambda s: retry_failed_readings(s, viewer, chosen), retried)
        if retry_all.button("Retry all failed", key="minting.retry_all", type="primary"):
            ui.act(app, lambda s: retry_failed_readings(s, viewer), retried)
