"""Fleet health (staff): every meter's state, last contact, readings, energy and
rejections in a range; pick one for its curve, its rejections and its mints."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import streamlit as st

from core import event_sentences, views
from core.db.models import ReadingStatus
from core.views.fleet import (
    LATE_AFTER,
    SILENT_AFTER,
    Health,
    fleet,
    meter_curve,
    meter_serials,
)
from pages.common import charts, refresh, session, ui

REFRESH_SECS = 30
# label -> (span s, drill-down bucket s, bucket name). No 30 days: summing a month of
# readings per meter takes over a second at 1,000,000 readings (docs/PERFORMANCE.md).
RANGES = {
    "Last 24 hours": (86_400, 900, "15 minutes"),
    "Last 7 days": (7 * 86_400, 3600, "hour"),
}

app = ui.get_app()
viewer = session.viewer_for(app, "fleet")
refresh.refresh_on_events(app, viewer)
st.title("Fleet health")
st.caption(
    f"Reporting: seen in the last {int(LATE_AFTER.total_seconds() // 60)} minutes; late: "
    f"within {int(SILENT_AFTER.total_seconds() // 3600)} hours; silent: longer or never."
)
range_col, health_col, search_col = st.columns([1, 2, 2])
range_label = range_col.selectbox("Range", list(RANGES), key="fleet.range")
states = health_col.multiselect(
    "State", list(Health), key="fleet.health", placeholder="Every state"
)
search = search_col.text_input("Serial or owner", key="fleet.search", placeholder="any meter")
flagged_only = st.toggle("Flagged only", key="fleet.flagged")


@st.fragment(run_every=REFRESH_SECS)
def table() -> None:
    span, _, _ = RANGES[range_label]
    now = ui.now()
    with ui.reading(app) as session:
        meters = fleet(session, viewer, now, now - timedelta(seconds=span))
    needle = search.strip().lower()
    shown = [
        m
        for m in meters
        if (not states or m.health in states)
        and (not flagged_only or m.flags)
        and (not needle or needle in m.serial.lower() or needle in m.owner.lower())
    ]
    counts = {state: sum(1 for m in meters if m.health == state) for state in Health}
    cells = st.columns(len(Health) + 1)
    for cell, state in zip(cells, Health, strict=False):
        cell.metric(state.value.title(), f"{counts[state]:,}")
    cells[-1].metric("Flagged", f"{sum(1 for m in meters if m.flags):,}")
    rows = [
        {
            "serial": m.serial,
            "owner": m.owner,
            "state": m.health.value,
            "last seen (UTC)": ui.when(m.last_seen_at),
            "readings": m.readings,
            "kWh": ui.kwh(m.kwh_micro),
            "seconds per reading": m.cadence_secs,
            "rejected": m.rejected,
            "rejections by code": ", ".join(f"{c} {n}" for c, n in sorted(m.rejections.items())),
            "flags": ", ".join(f"{f} {n}" for f, n in sorted(m.flags.items())),
        }
        for m in shown
    ]
    if not rows:
        st.info("No meter matches: clear the filters, or register meters on Meters & users.")
        return
    st.dataframe(rows, hide_index=True, key="fleet.table")
    # One row per meter: small enough to build in memory, unlike the readings exports.
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    st.download_button(
        "Download fleet (CSV)",
        buffer.getvalue().encode(),
        file_name="fleet.csv",
        mime="text/csv",
        key="fleet.download",
        icon=":material/download:",
        on_click="ignore",
    )


table()

st.subheader("One meter")
with ui.reading(app) as session:
    serials = meter_serials(session, viewer)
if "fleet.meter" not in st.session_state and st.query_params.get("meter") in serials:
    st.session_state["fleet.meter"] = st.query_params["meter"]
serial = st.selectbox("Meter", serials, index=None, key="fleet.meter", placeholder="Pick a meter")
if serial:
    span, bucket, bucket_name = RANGES[range_label]
    now = ui.now()
    since = now - timedelta(seconds=span)
    with ui.reading(app) as session:
        curve = meter_curve(session, viewer, serial, since, bucket)
        rejected = views.filtered_events(
            session,
            viewer,
            views.TableFilter(
                since=since,
                meter=serial,
                types=("meter_reading_validation_failed", "meter_flagged"),
            ),
            limit=20,
        )
        mints = views.filtered_readings(
            session,
            viewer,
            views.TableFilter(since=since, meter=serial, status=ReadingStatus.MINTED),
            limit=20,
        )
    st.plotly_chart(charts.meter_chart(curve, serial, bucket_name), key="fleet.curve")
    live, events = st.columns(2)
    live.page_link(
        "pages/screens/live.py", label=f"Readings of {serial}", query_params={"meter": serial}
    )
    events.page_link(
        "pages/screens/events.py", label=f"Events of {serial}", query_params={"meter": serial}
    )
    st.markdown("**Latest rejections and flags**")
    if rejected:
        st.dataframe(
            [
                {
                    "time (UTC)": ui.when(e.created_at),
                    "code": e.payload.get("error_code") or e.payload.get("flag", ""),
                    "what": event_sentences.sentence(e.type, e.payload),
                }
                for e in rejected
            ],
            hide_index=True,
            key="fleet.rejections",
        )
    else:
        st.success("No rejections or flags in this range.")
    st.markdown("**Latest mints**")
    decimals = app.config().decimals
    if mints:
        st.dataframe(
            [
                {
                    "reading": r.id,
                    "reading time (UTC)": ui.when(r.reading_timestamp),
                    "kWh": ui.kwh(r.kwh_micro),
                    "GRX": ""
                    if r.token_base_units is None
                    else ui.grx(r.token_base_units, decimals),
                    "transaction": r.mint_tx_signature or "",
                }
                for r in mints
            ],
            hide_index=True,
            key="fleet.mints",
        )
    else:
        st.info("No minted readings in this range.")
