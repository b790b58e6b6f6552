"""Events: the event and audit log as sentences, filtered by type, time, text, meter and
user; each event's JSON one click away; the filtered log downloadable as CSV.

Prosumers see only events about themselves (core.views.events filters by user).
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core import event_sentences, views
from core.chain.explorer import explorer_url
from pages.common import exports, refresh, session, ui

RANGES = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "All time": None,
}
LIMIT = 200

app = ui.get_app()
viewer = session.viewer_for(app, "events")
refresh.refresh_on_events(app, viewer)
st.title("Events")
staff = views.is_staff(viewer)
types_col, range_col, text_col = st.columns([2, 1, 2])
types = types_col.multiselect(
    "Types", views.EVENT_TYPES, key="events.types", placeholder="All types"
)
range_label = range_col.selectbox("Time range", list(RANGES), index=1, key="events.range")
text = text_col.text_input(
    "Contains", key="events.text", placeholder="e.g. a serial, a username, a signature"
)
meter_col, user_col = st.columns(2)
# A link from another page (the fleet page's drill-down) arrives as ?meter=SERIAL.
for name in ("meter", "user"):
    if f"events.{name}" not in st.session_state and st.query_params.get(name):
        st.session_state[f"events.{name}"] = st.query_params[name]
meter = meter_col.text_input("Meter (serial)", key="events.meter", placeholder="any meter")
user = (
    user_col.text_input("User (prosumer)", key="events.user", placeholder="any user")
    if staff
    else ""
)

span = RANGES[range_label]
flt = views.TableFilter(
    since=None if span is None else ui.now() - span,
    types=tuple(types),
    text=text.strip(),
    meter=meter.strip(),
    user=user.strip(),
)
with ui.reading(app) as session:
    rows = views.filtered_events(session, viewer, flt, limit=LIMIT)
exports.download_link(app, viewer, "events", flt, key="events.download")
if not rows:
    st.info("No events match: widen the time range or clear the filters.")
else:
    rpc_url = app.settings.app.effective_rpc_url
    linked = explorer_url("x", rpc_url) is not None
    st.caption(
        f"Newest {len(rows)} events{' (limit reached)' if len(rows) == LIMIT else ''}. "
        "Select a row to see its JSON."
    )
    table = [
        {
            "id": row.id,
            "time (UTC)": ui.when(row.created_at),
            "type": row.type,
            "what happened": event_sentences.sentence(row.type, row.payload),
            "meter": event_sentences.meter(row.payload) or "",
            "transaction": (
                (explorer_url(signature, rpc_url) if linked else signature)
                if (signature := event_sentences.transaction(row.payload))
                else None
            ),
        }
        for row in rows
    ]
    picked = st.dataframe(
        table,
        column_config={
            "transaction": st.column_config.LinkColumn("transaction", display_text=r"tx/([^?]{12})")
            if linked
            else st.column_config.TextColumn("transaction"),
            "what happened": st.column_config.TextColumn("what happened", width="large"),
        },
        hide_index=True,
        key="events.table",
        on_select="rerun",
        selection_mode="single-row",
    )
    chosen = picked.selection.rows if picked is not None else []
    if chosen:
        row = rows[chosen[0]]
        st.subheader(f"Event {row.id}: {row.type}")
        st.json({"id": row.id, "type": row.type, **row.payload}, expanded=True)
