"""The GridTokenX dashboard: `streamlit run app.py`.

Login against the users table (core.sessions: the API's server-side sessions, kept
in an HttpOnly cookie, pages.common.session), then navigation by role. Every page
is registered for every logged-in user, so any page URL resolves, but only the
role's pages are listed; a page outside the role refuses to render (its own guard,
pages.common.session), and the read models in core.views filter or refuse by
viewer as well.
"""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.db.models import Role
from pages.common import login, session, ui
from pages.common.export_route import export_routes
from pages.common.registry import PAGES, default_page
from pages.common.server import dashboard_middleware, dashboard_routes

# Our `pages/` is a Python package, not Streamlit's v1 multipage folder. Until the first
# st.navigation call of the process Streamlit assumes it is, and the very first run
# after a start (a bookmarked /live or /overview) answers "Page not found" before
# app.py's own navigation runs. Navigation is always app.py's: say so before any run.
PagesManager.uses_pages_directory = False

# The ASGI application `streamlit run app.py` and `python -m pages` serve: this script
# with the dashboard's limits around it (pages/common/server.py), its session-cookie
# routes (pages/common/session_cookie.py) and its CSV download route
# (pages/common/export_route.py). Streamlit finds it by its name; each session then
# runs this file as the page script, below.
app = st.App(
    __file__, middleware=dashboard_middleware(), routes=[*dashboard_routes(), *export_routes()]
)


def main() -> None:
    st.set_page_config(page_title="GridTokenX", page_icon=":material/bolt:", layout="wide")
    app = ui.get_app()
    user = session.restore(app)
    role = Role(user.role) if user else None
    home = default_page(role or Role.ADMIN)
    pages = {
        spec.url_path: st.Page(
            spec.path,
            title=spec.title,
            icon=spec.icon,
            url_path=spec.url_path,
            visibility="visible" if role in spec.roles else "hidden",
        )
        for spec in PAGES
    }

    def start() -> None:
        st.switch_page(pages[home])

    # "/" opens the role's home page under its own URL (/overview, /wallet), so every
    # page, the home page included, has a URL that survives a bookmark.
    entry = st.Page(start, title="GridTokenX", url_path="start", default=True, visibility="hidden")
    sections: dict[str, list[StreamlitPage]] = {}
    for spec in PAGES:
        sections.setdefault(spec.section, []).append(pages[spec.url_path])
    sections[PAGES[0].section].insert(0, entry)
    page = st.navigation(sections, position="sidebar" if user else "hidden")
    if user is None:
        # The asked-for page stays in the URL: after login the rerun opens it.
        login.after_logout()
        login.login_form(app)
        return
    spec = next((spec for spec in PAGES if spec.title == page.title), None)
    if spec is not None and session.just_logged_in() and role not in spec.roles:
        st.switch_page(pages[home])  # e.g. a prosumer logging in at the staff home page
    if spec is not None:  # the entry page only switches to the home page: hand off there
        session.keep_in_cookie(spec.url_path)
    login.sidebar(app, user)
    page.run()


if get_script_run_ctx() is not None:  # a session's run, not the server importing `app`
    main()
