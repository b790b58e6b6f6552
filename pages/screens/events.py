"""Events: the event and audit log, filtered by type, time range and text.

Prosumers see only events about themselves (core.views.event_log filters by user).
"""

from __future__ import annotations

import json
from datetime import timedelta

import streamlit as st

from core import views
from pages.common import session, ui

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
st.title("Events")
types_col, range_col, text_col = st.columns([2, 1, 2])
types = types_col.multiselect(
    "Types", views.EVENT_TYPES, key="events.types", placeholder="All types"
)
range_label = range_col.selectbox("Time range", list(RANGES), index=1, key="events.range")
text = text_col.text_input(
    "Contains", key="events.text", placeholder="e.g. a serial, a username, a signature"
)

span = RANGES[range_label]
with ui.reading(app) as session:
    rows = views.event_log(
        session,
        viewer,
        types=types,
        since=None if span is None else ui.now() - span,
        text=text,
        limit=LIMIT,
    )
if not rows:
    st.info("No events match: widen the time range or clear the filters.")
else:
    st.caption(f"Newest {len(rows)} events{' (limit reached)' if len(rows) == LIMIT else ''}.")
    st.dataframe(
        [
            {
                "id": row.id,
                "time (UTC)": ui.when(row.created_at),
                "type": row.type,
                "details": json.dumps(row.payload, sort_keys=True, separators=(", ", ": ")),
            }
            for row in rows
        ],
        hide_index=True,
        key="events.table",
    )
