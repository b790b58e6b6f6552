"""Overview, the operator's cockpit: what needs a person now, today's generation and
minting per 15 minutes, the queue and its latency, the fleet's health, what minting
costs today, auto-mint, chain health, the MQTT bridge's health line and reconcile."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import streamlit as st

from core import views
from core.chain.reader import ChainRead
from core.ingest_health import bridge_health, summary_line
from core.setting_fields import as_text
from core.views.cockpit import Attention, attention_items, today_bars
from core.views.fleet import FleetSummary, Health, fleet_summary
from core.views.supply_status import ReconcileState, reconcile
from pages.common import charts, refresh, session, ui
from pages.common.registry import BY_URL

REFRESH_SECS = 30
LATENCY_SINCE = timedelta(hours=24)
EMPTY = (
    "No readings yet: start the demo fleet with `make run`, or register a meter on the "
    "Meters & users page and point it at the API."
)

app = ui.get_app()
viewer = session.viewer_for(app, "overview")
refresh.refresh_on_events(app, viewer)
st.title("Overview")


@st.fragment(run_every=REFRESH_SECS)
def overview() -> None:
    now = ui.now()
    config = app.config()
    with ui.reading(app) as session:
        stats = views.overview(session, viewer, now)
        expected = views.expected_supply(session, viewer, app.settings.app)
        bars = today_bars(session, viewer, now)
        health = fleet_summary(session, viewer, now)
        latency = views.latency_percentiles(session, viewer, now - LATENCY_SINCE)
        spent = views.costs_today(session, viewer, now)
        bridges = bridge_health(session, now)
    reader = ui.chain_reader(app)
    chain = ui.chain_health(reader.rpc_url, reader)
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
    payer = spent.fee_payer
    items = attention_items(
        review=stats.review,
        failed=stats.failed,
        mismatch=status.state == ReconcileState.MISMATCH,
        payer_low=bool(payer and payer.low),
        silent=health.counts[Health.SILENT],
        late=health.counts[Health.LATE],
        flagged=health.flagged_count,
    )
    attention(items)
    st.plotly_chart(charts.today_chart(bars), key="overview.today_chart")
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

    st.caption(
        f"Acceptance → minted, last 24 h: p50 {_secs(latency.percentiles.get(50))}, "
        f"p90 {_secs(latency.percentiles.get(90))}, p99 {_secs(latency.percentiles.get(99))} "
        f"over {latency.readings:,} readings."
    )
    fleet_strip(health)
    costs_today(spent, decimals)

    state = st.columns(3)
    state[0].metric(
        "Auto-mint",
        "on" if config.auto_mint_enabled else "off",
        help=f"{as_text(config.kwh_to_token_ratio)} GRX per kWh, "
        f"a cycle every {config.polling_interval_secs} s",
    )
    state[1].metric("Chain", "healthy" if chain.ok else "unavailable", help=reader.rpc_url)
    state[2].metric("Reconcile", status.state.value)
    st.caption(summary_line(bridges, now))
    if not chain.ok:
        st.warning(chain.error or "chain unavailable")
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


def _secs(value: int | None) -> str:
    return "—" if value is None else f"{value} s"


def attention(items: list[Attention]) -> None:
    st.subheader("Needs attention")
    if not items:
        st.success("Nothing needs a person right now.", icon=":material/check_circle:")
        return
    for item in items:
        spec = BY_URL[item.page]
        left, right = st.columns([3, 1])
        text = f"**{item.count:,}** {item.what}" if item.count else item.what.capitalize()
        # Markdown, not st.error: an alert is the page's state, not a failure to render it.
        colour, icon = ("red", "error") if item.severity == "error" else ("orange", "warning")
        left.markdown(f":{colour}[:material/{icon}: {text}]")
        right.page_link(spec.path, label=f"Open {spec.title}", icon=spec.icon)


def fleet_strip(health: FleetSummary) -> None:
    st.subheader("Fleet")
    cells = st.columns(len(Health) + 1)
    for cell, state in zip(cells, Health, strict=False):
        cell.metric(state.value.title(), f"{health.counts[state]:,}")
    cells[-1].metric(
        "Flagged", f"{health.flagged_count:,}", help="meter_flagged events in the last 24 hours"
    )
    for serial in health.flagged[:5]:
        st.page_link(
            "pages/screens/fleet.py",
            label=f"{serial}: flagged",
            query_params={"meter": serial},
            icon=":material/flag:",
        )
    for serial, state, seen in health.worst:
        st.page_link(
            "pages/screens/fleet.py",
            label=f"{serial}: {state.value}, last seen {ui.when(seen)} UTC",
            query_params={"meter": serial},
            icon=":material/sensors_off:",
        )


def costs_today(spent: views.CostsToday, decimals: int) -> None:
    st.subheader("Costs today")
    payer = spent.fee_payer
    cells = st.columns(4)
    per_reading = spent.today.lamports_per_reading
    cells[0].metric("Lamports per reading", "—" if per_reading is None else f"{per_reading}")
    cells[1].metric("SOL spent today", sol(spent.today.fees_lamports + spent.today.rent_lamports))
    cells[2].metric("Fee payer (SOL)", "—" if payer is None else sol(payer.balance_lamports))
    cells[3].metric("Runway", "—" if spent.runway_days is None else f"{spent.runway_days} days")


def sol(lamports: int) -> str:
    return format(Decimal(lamports).scaleb(-9).quantize(Decimal("0.000001")), "f")


overview()
