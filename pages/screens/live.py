"""Live readings: energy per interval, ingest rate and the latest readings.

The filters live outside the auto-refreshing fragment and keep their values in
session state (explicit keys), so a refresh redraws the charts, never the choices.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core import views
from core.db.models import ReadingStatus
from core.views import Split, Window
from pages.common import charts, exports, refresh, session, ui

REFRESH_SECS = 15
# range label -> (span, bucket, bucket name): about 60-170 points whatever the range.
RANGES = {
    "Last hour": (3600, 60, "minute"),
    "Last 24 hours": (86_400, 900, "15 minutes"),
    "Last 7 days": (7 * 86_400, 3600, "hour"),
    "Last 30 days": (30 * 86_400, 86_400, "day"),
}
# Ingest rate is a liveness signal: over long ranges it shows the last 24 hours only,
# which also spares a second scan of weeks of readings.
INGEST_RANGE = "Last 24 hours"
EMPTY = (
    "No readings in this range: start the demo fleet with `make run`, or register a "
    "meter on the Meters & users page; or pick a longer range."
)

app = ui.get_app()
viewer = session.viewer_for(app, "live")
refresh.refresh_on_events(app, viewer)
st.title("Live readings")
splits = [Split.TOTAL, Split.METER] + ([Split.PROSUMER] if views.is_staff(viewer) else [])
left, right = st.columns(2)
range_label = left.radio("Range", list(RANGES), index=1, horizontal=True, key="live.range")
split = right.radio(
    "Split by", splits, format_func=lambda s: s.value.title(), horizontal=True, key="live.split"
)
meter_col, status_col = st.columns(2)
if "live.meter" not in st.session_state and st.query_params.get("meter"):
    st.session_state["live.meter"] = st.query_params["meter"]  # a link from the fleet page
meter = meter_col.text_input("Meter (serial)", key="live.meter", placeholder="every meter")
status = status_col.selectbox(
    "Status", ["", *ReadingStatus], key="live.status", format_func=lambda s: s or "any status"
)


@st.fragment(run_every=REFRESH_SECS)
def live() -> None:
    span, bucket, bucket_name = RANGES[range_label]
    now = ui.now()
    longest = RANGES[INGEST_RANGE]
    ingest_span, ingest_bucket, ingest_name = longest if span > longest[0] else RANGES[range_label]
    with ui.reading(app) as session:
        energy = views.energy_series(session, viewer, Window.ending_at(now, span, bucket), split)
        rate = views.ingest_rate(session, viewer, Window.ending_at(now, ingest_span, ingest_bucket))
        flt = views.TableFilter(
            since=now - timedelta(seconds=span), meter=meter.strip(), status=status
        )
        latest = views.filtered_readings(session, viewer, flt, limit=50)
    decimals = app.config().decimals
    if not any(point.readings for point in energy):
        st.info(EMPTY, icon=":material/info:")
    st.plotly_chart(charts.energy_chart(energy, bucket_name), key="live.energy_chart")
    st.plotly_chart(charts.ingest_chart(rate, ingest_name), key="live.rate_chart")
    st.subheader("Latest readings")
    st.caption(f"The newest 50 of the range{' for ' + flt.meter if flt.meter else ''}.")
    exports.download_link(app, viewer, "readings", flt, key="live.download")
    st.dataframe(
        [
            {
                "id": row.id,
                "meter": row.meter_serial,
                "prosumer": row.username,
                "kWh": ui.kwh(row.kwh_micro),
                "reading time (UTC)": ui.when(row.reading_timestamp),
                "received (UTC)": ui.when(row.submitted_at),
                "status": row.status,
                "GRX": ""
                if row.token_base_units is None
                else ui.grx(row.token_base_units, decimals),
                "transaction": ui.short(row.mint_tx_signature),
            }
            for row in latest
        ],
        hide_index=True,
        key="live.latest",
    )


live()
