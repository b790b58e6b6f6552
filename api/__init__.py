"""The ingest and query HTTP service (FastAPI); thin over core. Run with `python -m api`."""
