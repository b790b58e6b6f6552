"""Review queue (admins): readings above the review threshold wait here.

Approve releases a reading to the minter, reject needs a reason, force-mint queues
it now even while auto-mint is off, and never twice.
"""

from __future__ import annotations

import streamlit as st

from core import views
from core.minting.force_mint import force_mint_reading
from core.review import approve_reading, reject_reading
from pages.common import session, ui

READING_KEY = "review.reading_id"

app = ui.get_app()
viewer = session.viewer_for(app, "review")
st.title("Review queue")
ui.show_flash()
with ui.reading(app) as session:
    total, queue = views.review_queue(session, viewer, limit=200)
threshold = app.config().review_threshold_kwh

if not queue:
    st.info(
        "Nothing to review. Readings above the review threshold "
        f"({'not set' if threshold is None else f'{threshold} kWh'}), older than the "
        "back-fill horizon or with implausible energy (see Control) wait here."
    )
else:
    st.caption(f"{total:,} readings wait in review (newest {len(queue)} shown).")
    st.dataframe(
        [
            {
                "id": row.id,
                "meter": row.meter_serial,
                "prosumer": row.username,
                "kWh": ui.kwh(row.kwh_micro),
                "reading time (UTC)": ui.when(row.reading_timestamp),
                "received (UTC)": ui.when(row.submitted_at),
                "why": row.review_reason or "",
            }
            for row in queue
        ],
        hide_index=True,
        key="review.table",
    )
    st.session_state.setdefault(READING_KEY, queue[0].id)

st.subheader("Decide")
reading_id = int(st.number_input("Reading id", min_value=1, step=1, key=READING_KEY))
note = st.text_input("Note or reason (a reason is required to reject)", key="review.note")
approve, reject, force = st.columns(3)
if approve.button("Approve", key="review.approve", type="primary"):
    ui.act(
        app,
        lambda s: approve_reading(s, reading_id, viewer, note),
        f"Reading #{reading_id} approved: it mints with the next cycle.",
    )
if reject.button("Reject", key="review.reject"):
    ui.act(
        app,
        lambda s: reject_reading(s, reading_id, viewer, note),
        f"Reading #{reading_id} rejected.",
    )
if force.button("Force mint", key="review.force_mint"):
    ui.act(
        app,
        lambda s: force_mint_reading(s, reading_id, viewer),
        f"Reading #{reading_id} queued for minting now, auto-mint on or off.",
    )
