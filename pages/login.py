"""Log in: username and password (or SSO when OIDC is configured)."""

from __future__ import annotations

import streamlit as st

from pages.common import session, ui

app = ui.get_app()
st.title("GridTokenX Tokenization Console")
notice = st.session_state.get(session.NOTICE_KEY)
if notice:
    st.warning(notice)

with st.form("login", border=True):
    st.subheader("Log in")
    username = st.text_input("Username", key="login.username")
    password = st.text_input("Password", type="password", key="login.password")
    submitted = st.form_submit_button("Log in", type="primary", key="login.submit")
if submitted and session.login(app, username, password):
    st.rerun()

if session.oidc_configured() and st.button("Log in with SSO", key="login.sso"):
    st.login()

st.caption(
    "The first admin is created at first start (`make run` prints the password, also "
    "saved in DATA_DIR/secrets/admin_password). Admins create other users on the "
    "Meters & users page."
)
