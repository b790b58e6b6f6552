"""The dashboard's pages (pages/screens/, one script per page) and their shared glue
(pages/common/).

No page script sits directly in pages/: when that folder holds scripts, Streamlit
(1.67) runs them as old-style pages, bypassing app.py, on any run before app.py's
st.navigation call (the first request of a fresh server, and every AppTest run).
In sub-folders they are reachable only through app.py's navigation.
"""
