"""What every page shares: the cached app, the logged-in viewer, formatting, errors.

Presentation only: the queries live in core.views, the actions in core; this module
holds the Streamlit glue (caching, session state, rendering a domain error).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import streamlit as st
from sqlalchemy.orm import Session

from core.bootstrap import App, bootstrap
from core.chain.reader import ChainRead, ChainReader
from core.config import ConfigError, Settings, load_settings
from core.db.migrate import DatabaseNotMigrated
from core.errors import DomainError, Forbidden
from core.units import micro_to_kwh
from core.views import read_session

T = TypeVar("T")
# Test seam: AppTest pins "now" here so counts like "today" are deterministic.
CLOCK_KEY = "clock.now"
CHAIN_TTL_SECS = 10
FLASH_KEY = "ui.flash"


def _close(app: App) -> None:
    reader = app.extras.pop("chain_reader", None)
    if isinstance(reader, ChainReader):
        reader.close()
    app.close()


@st.cache_resource(max_entries=4, on_release=_close, show_spinner=False)
def _app_for(fingerprint: str, _settings: Settings) -> App:
    """One App (engine, pool, chain reader) per distinct configuration, for every session."""
    app = bootstrap(_settings)
    app.extras["chain_reader"] = ChainReader.from_settings(_settings.app)
    app.extras["api_secret_key"] = app.api_secret_key()
    return app


def get_app() -> App:
    """The composition root, built once per configuration; stops the page on bad config."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        st.error(
            "Invalid configuration: " + "; ".join(f"{v}={x!r}: {a}" for v, x, a in exc.problems)
        )
        st.stop()
    fingerprint = hashlib.sha256(repr(settings).encode()).hexdigest()
    try:
        return _app_for(fingerprint, settings)
    except DatabaseNotMigrated as exc:
        st.error(exc.message)
        st.stop()
    raise AssertionError("unreachable")


def secret_key(app: App) -> str:
    return str(app.extras["api_secret_key"])


def chain_reader(app: App) -> ChainReader:
    reader = app.extras["chain_reader"]
    assert isinstance(reader, ChainReader)
    return reader


@st.cache_data(ttl=CHAIN_TTL_SECS, show_spinner=False)
def chain_supply(rpc_url: str, mint: str, _reader: ChainReader) -> ChainRead[int]:
    return _reader.supply(mint)


@st.cache_data(ttl=CHAIN_TTL_SECS, show_spinner=False)
def chain_health(rpc_url: str, _reader: ChainReader) -> ChainRead[str]:
    return _reader.health()


@st.cache_data(ttl=CHAIN_TTL_SECS, show_spinner=False)
def chain_balance(
    rpc_url: str, wallet: str, mint: str, program: str, _reader: ChainReader
) -> ChainRead[int]:
    return _reader.wallet_balance(wallet, mint, program)


def now() -> datetime:
    pinned = st.session_state.get(CLOCK_KEY)
    return pinned if isinstance(pinned, datetime) else datetime.now(UTC)


# Set by pages.common.session: auto-refreshing fragments rerun without the page's
# guard, so every read first re-checks (at most once a second) that the login is live.
login_check: Callable[[App], None] | None = None


@contextmanager
def reading(app: App) -> Iterator[Session]:
    """A read-only session; a Forbidden from a view becomes a refusal on the page."""
    if login_check is not None:
        login_check(app)
    with read_session(app.engine) as session:
        try:
            yield session
        except Forbidden as exc:
            st.error(f"Refused: {exc.message}.")
            st.stop()


def act(
    app: App,
    action: Callable[[Session], T],
    success: str | Callable[[T], str] | None = None,
) -> T | None:
    """Run a core use case in its own session (it commits); show its domain error.

    With `success`, the page reruns to show the change and then says `success`.
    """
    with app.sessions() as session:
        try:
            result = action(session)
        except DomainError as exc:
            session.rollback()
            show_error(exc)
            return None
    if success is not None:
        flash(success if isinstance(success, str) else success(result))
    return result


def flash(message: str) -> None:
    """Say `message` after the rerun that redraws the page with the change applied."""
    st.session_state[FLASH_KEY] = message
    st.rerun()


def show_flash() -> None:
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message, icon=":material/check_circle:")


def show_error(exc: DomainError) -> None:
    st.error(f"{exc.message} ({exc.code})")


# --- formatting: exact amounts as text; floats only for chart axes ---------------------


def kwh(micro: int) -> str:
    """Exact kWh with thousands separators and no trailing zeros: "1,234.5"."""
    return _trimmed(micro_to_kwh(micro))


def grx(base_units: int, decimals: int) -> str:
    return _trimmed(Decimal(base_units).scaleb(-decimals))


def brief(exact: str, places: int = 3) -> str:
    """A headline figure rounded for a metric tile; the exact text goes in its help."""
    amount = Decimal(exact.replace(",", "")).quantize(Decimal(1).scaleb(-places))
    return _trimmed(amount)


def _trimmed(amount: Decimal) -> str:
    text = f"{amount:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def short(signature: str | None) -> str:
    return "—" if not signature else f"{signature[:8]}…{signature[-8:]}"
