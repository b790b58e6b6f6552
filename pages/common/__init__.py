"""Shared Streamlit glue for the pages; kept in a sub-package so Streamlit never
mistakes these modules for pages (it scans only pages/*.py)."""
