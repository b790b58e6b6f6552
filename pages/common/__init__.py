"""Shared Streamlit glue for the page scripts in pages/screens/."""
