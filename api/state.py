"""What the API process holds while it runs: the composition root plus per-process parts.

Routes reach it through the `StateDep` dependency; a WebSocket router (api/ws.py)
finds it at `websocket.app.state.api`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import httpx
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from api.metrics import Metrics
from core.bootstrap import App
from core.config import TokenizationConfig
from core.db.engine import read_only
from core.group_commit import GroupCommit
from core.login_throttle import LoginThrottle
from core.readings.budget import ReadingBudget
from core.readings.shared_budget import SharedReadingBudget, reading_budget
from core.sessions import SessionPolicy, policy_of
from serving.client_address import TrustedProxies, client_address


def system_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiState:
    core: App
    secret: str
    metrics: Metrics
    # Shared by every api process on PostgreSQL, per process on SQLite.
    meter_budget: ReadingBudget | SharedReadingBudget
    login_throttle: LoginThrottle
    clock: Callable[[], datetime] = system_now
    monotonic: Callable[[], float] = time.monotonic
    # Admin overrides apply within this many seconds, without a restart.
    config_ttl_secs: float = 1.0
    # Ingest units of work running at once; sized to the connection pool.
    db_limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(10))
    http: httpx.AsyncClient | None = None
    # Individual readings accepted in groups, one commit each (api/group_ingest.py);
    # started with the app.
    reading_group: GroupCommit | None = None
    # Whose X-Forwarded-For is believed (FORWARDED_ALLOW_IPS; default nobody's).
    proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # Login lifetimes (SESSION_MAX_HOURS, SESSION_IDLE_MINUTES).
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    _config: TokenizationConfig | None = field(default=None, repr=False)
    _config_read_at: float = field(default=float("-inf"), repr=False)
    _config_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> datetime:
        return self.clock()

    def client_of(self, connection: HTTPConnection) -> str:
        """The client's address: the peer, or who a trusted proxy says it forwards."""
        peer = connection.client.host if connection.client else None
        return client_address(peer, connection.headers.getlist("x-forwarded-for"), self.proxies)

    def config(self) -> TokenizationConfig:
        """The effective tokenization rules, read from the database at most once per TTL."""
        at = self.monotonic()
        with self._config_lock:
            if self._config is not None and at - self._config_read_at < self.config_ttl_secs:
                return self._config
        config = self.core.config()
        with self._config_lock:
            self._config, self._config_read_at = config, at
        return config

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session whose transactions only read (no SQLite write lock)."""
        with Session(read_only(self.core.engine), expire_on_commit=False) as session:
            yield session


def build_state(
    core: App,
    *,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime] = system_now,
    monotonic: Callable[[], float] = time.monotonic,
    config_ttl_secs: float = 1.0,
) -> ApiState:
    app = core.settings.app
    return ApiState(
        core=core,
        secret=core.api_secret_key(),
        metrics=metrics or Metrics(),
        meter_budget=reading_budget(
            app.effective_database_url,
            app.meter_rate_limit_per_minute,
            app.meter_rate_limit_burst,
            # A test's clock; in production the database's (or time.monotonic on SQLite).
            clock=None if monotonic is time.monotonic else monotonic,
        ),
        login_throttle=LoginThrottle(clock=monotonic),
        clock=clock,
        monotonic=monotonic,
        config_ttl_secs=config_ttl_secs,
        db_limiter=anyio.CapacityLimiter(_pool_size(core)),
        proxies=TrustedProxies.parse(app.forwarded_allow_ips),
        sessions=policy_of(app),
    )


def _pool_size(core: App) -> int:
    size = getattr(core.engine.pool, "size", None)
    return max(1, size()) if callable(size) else 5
