"""Refresh a page when the event stream says something changed, not only on a timer.

Every change worth showing writes an event in its own transaction (core.events), so
the newest event id the viewer may see is a cheap, exact "something changed"
signal: a small fragment reads it every WATCH_SECS (one index lookup) and reruns
the whole page when it moved. Pages keep a slower timer of their own for what
produces no event (a meter going silent, the clock crossing midnight).
streamlit-autorefresh is not used: st.fragment(run_every=...) is built in and
reruns only the watcher, not the page, between changes.
"""

from __future__ import annotations

import streamlit as st

from core import views
from core.bootstrap import App
from core.db.models import User
from pages.common import session as browser_session
from pages.common import ui

WATCH_SECS = 2
_KEY = "refresh.newest_event_id"


def refresh_on_events(app: App, viewer: User) -> None:
    @st.fragment(run_every=WATCH_SECS)
    def watch() -> None:
        with ui.reading(app) as session:
            newest = views.newest_event_id(session, viewer)
        seen = st.session_state.get(_KEY)
        st.session_state[_KEY] = newest
        if seen is not None and newest != seen:
            browser_session.rerun_automatically()  # not a click: the idle timeout keeps running

    watch()
