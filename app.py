"""The GridTokenX dashboard: `streamlit run app.py`.

Login against the users table (core.auth: the API's password hashing and session
tokens), then navigation by role. Every page is registered for every logged-in
user, so any page URL resolves, but only the role's pages are listed; a page
outside the role refuses to render (its own guard, pages.common.session), and the
read models in core.views filter or refuse by viewer as well.
"""

from __future__ import annotations

import streamlit as st

from core.db.models import Role
from pages.common import session, ui
from pages.common.registry import PAGES, default_page


def main() -> None:
    st.set_page_config(page_title="GridTokenX", page_icon=":material/bolt:", layout="wide")
    app = ui.get_app()
    user = session.restore(app)
    if user is None:
        st.navigation([st.Page("pages/login.py", title="Log in", icon=":material/login:")]).run()
        return
    role = Role(user.role)
    sections: dict[str, list[st.Page]] = {}
    for spec in PAGES:
        sections.setdefault(spec.section, []).append(
            st.Page(
                spec.path,
                title=spec.title,
                icon=spec.icon,
                url_path=spec.url_path,
                default=spec.url_path == default_page(role),
                visibility="visible" if role in spec.roles else "hidden",
            )
        )
    page = st.navigation(sections)
    session.sidebar(user)
    page.run()


main()
