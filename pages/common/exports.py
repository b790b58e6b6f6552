"""The "Download CSV" link every table on a page carries, with the page's filter."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from core.bootstrap import App
from core.db.models import User
from core.exports.links import LINK_TTL_SECS, sign_link
from core.views.filters import TableFilter
from pages.common import ui
from pages.common.export_route import export_url


def download_link(app: App, viewer: User, table: str, flt: TableFilter, *, key: str) -> str:
    """Show the link; return its URL (tests follow it). The expiry is real time, not the
    page's pinned clock: a link must work when clicked."""
    link = sign_link(ui.secret_key(app), viewer.id, table, flt, datetime.now(UTC))
    url = export_url(table, link)
    st.link_button(
        f"Download {table} (CSV)",
        url,
        key=key,
        icon=":material/download:",
        help=f"Every row this filter selects, streamed; the link works for "
        f"{LINK_TTL_SECS // 60} minutes.",
    )
    return url
