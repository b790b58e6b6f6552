"""One script per dashboard page, registered by app.py (pages.common.registry)."""
