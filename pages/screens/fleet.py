"""Fleet health (staff): the fleet in counts (per state, flagged), its worst meters
(longest unseen, most refused), then the meters a filter selects a page at a time with
their readings, energy and refusals in a range; pick one for its curve, its
rejections and its mints. Counting, filtering and paging happen in SQL
(core.views.fleet, core.views.fleet_table): the page costs the same at 100 meters
or 100,000."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import streamlit as st

from core import event_sentences, views
from core.db.models import ReadingStatus
from core.views.fleet import (
    LATE_AFTER,
    SILENT_AFTER,
    FleetSummary,
    Health,
    MeterHealth,
    fleet_summary,
    meter_curve,
)
from core.views.fleet_table import FleetOrder, FleetQuery, count_fleet, fleet_page
from pages.common import charts, paging, refresh, session, ui

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
range_col, health_col, search_col, order_col = st.columns([1, 2, 2, 1])
range_label = range_col.selectbox("Range", list(RANGES), key="fleet.range")
states = health_col.multiselect(
    "State", list(Health), key="fleet.health", placeholder="Every state"
)
search = search_col.text_input("Serial or owner", key="fleet.search", placeholder="any meter")
order = order_col.selectbox("Order", list(FleetOrder), key="fleet.order")
flagged_only = st.toggle("Flagged only", key="fleet.flagged")
query = FleetQuery(tuple(states), flagged_only, search, FleetOrder(order))


def row(m: MeterHealth) -> dict[str, object]:
    return {
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


def worst(summary: FleetSummary) -> None:
    """The meters to look at first: the longest unseen, then the most refused."""
    stale, refused = st.columns(2)
    stale.markdown("**Longest unseen**")
    for serial, state, seen in summary.worst:
        stale.page_link("pages/screens/fleet.py", label=f"{serial}: {state.value}, last seen "
                        f"{ui.when(seen)} UTC", query_params={"meter": serial},
                        icon=":material/sensors_off:")  # fmt: skip
    if not summary.worst:
        stale.caption("Every meter reports.")
    refused.markdown(f"**Most refused ({range_label.lower()})**")
    for serial, count in summary.most_refused:
        refused.page_link("pages/screens/fleet.py", label=f"{serial}: {count:,} refused",
                          query_params={"meter": serial}, icon=":material/block:")  # fmt: skip
    if not summary.most_refused:
        refused.caption("No refused submission in this range.")


def download(now: datetime, since: datetime, total: int) -> None:
    """The CSV of every meter the filter selects, built only when asked: one row per
    meter, so in memory (unlike the readings exports), but the whole fleet."""
    if not st.button(f"Prepare the CSV of {paging.counted(total)} meters", key="fleet.prepare"):
        return
    with ui.reading(app) as reading:
        rows = [row(m) for m in fleet_page(reading, viewer, now, since, query, limit=None)]
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


@st.fragment(run_every=REFRESH_SECS)
def table() -> None:
    span, _, _ = RANGES[range_label]
    now = ui.now()
    since = now - timedelta(seconds=span)
    with ui.reading(app) as reading:
        summary = fleet_summary(reading, viewer, now, since=since)
        total = count_fleet(reading, viewer, now, since, query)
    cells = st.columns(len(Health) + 1)
    for cell, state in zip(cells, Health, strict=False):
        cell.metric(state.value.title(), f"{summary.counts[state]:,}")
    cells[-1].metric("Flagged", f"{summary.flagged_count:,}", help="meter_flagged events in "
                     "the last 24 hours")  # fmt: skip
    worst(summary)
    if not total:
        st.info("No meter matches: clear the filters, or register meters on Meters & users.")
        return
    offset = paging.page_offset("fleet.page", total)
    with ui.reading(app) as reading:
        shown = fleet_page(reading, viewer, now, since, query, limit=paging.PAGE_ROWS,
                           offset=offset)  # fmt: skip
    st.caption(paging.showing(offset, len(shown), total, "meters") + f", {order}")
    st.dataframe([row(m) for m in shown], hide_index=True, key="fleet.table")
    download(now, since, total)


table()

st.subheader("One meter")
if "fleet.meter" not in st.session_state and st.query_params.get("meter"):
    st.session_state["fleet.meter"] = st.query_params["meter"]


serial = paging.pick_one("Meter", "fleet.meter", paging.serial_finder(app, viewer))
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
