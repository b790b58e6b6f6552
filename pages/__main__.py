"""`python -m pages`: the dashboard (app.py's st.App) on DASHBOARD_HOST:DASHBOARD_PORT.

The same application as `streamlit run app.py`, served by uvicorn with the serving
limits Streamlit's own runner does not set: a deadline for request headers, idle
keep-alive, a cap on open connections (serving.protocol), and no proxy headers
(the client address comes from FORWARDED_ALLOW_IPS only). `make run` starts this.
"""

from __future__ import annotations

import argparse
import sys

from core.config import ConfigError, load_settings
from serving.protocol import connection_limits, serve

# As Streamlit's own runner: pings every 30 s, the sans-I/O websockets implementation;
# messages up to server.maxMessageSize (.streamlit/config.toml: 16 MB).
WS_PING_SECS = 30.0
WS_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pages", description=__doc__)
    parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        for variable, value, allowed in exc.problems:
            print(f"invalid configuration: {variable}={value!r}: {allowed}", file=sys.stderr)
        return 2
    print(
        f"dashboard: http://{settings.app.dashboard_host}:{settings.app.dashboard_port}",
        flush=True,
    )
    started = serve(
        "app:app",
        connection_limits(settings.app),
        host=settings.app.dashboard_host,
        port=settings.app.dashboard_port,
        log_level=settings.app.log_level.lower(),
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        ws_ping_interval=WS_PING_SECS,
        ws_ping_timeout=WS_PING_SECS,
        ws_per_message_deflate=False,
    )
    return 0 if started else 3


if __name__ == "__main__":
    sys.exit(main())
