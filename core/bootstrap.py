"""The composition root: every process builds its parts here, once.

api, scheduler, dashboard and tests call `bootstrap()` (tests with their own
settings) and receive the engine, session factory and settings they share.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings, TokenizationConfig, load_settings
from core.db.engine import create_db_engine, read_only, session_factory
from core.db.migrate import ensure_migrated
from core.file_modes import secure_data_dir
from core.secrets import ensure_secret
from core.settings_store import effective_config


@dataclass
class App:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # Read-only work: on SQLite these transactions take no write lock (see core.db.engine).
    readers: sessionmaker[Session]
    extras: dict[str, object] = field(default_factory=dict)

    def config(self) -> TokenizationConfig:
        """The effective tokenization rules now (environment + admin overrides)."""
        return effective_config(self.engine, self.settings.tokenization)

    def api_secret_key(self) -> str:
        if self.settings.app.api_secret_key:
            return self.settings.app.api_secret_key
        secret, _ = ensure_secret(self.settings.app.data_dir / "secrets" / "api_secret_key")
        return secret

    def device_key_wrap(self) -> bytes:
        """The key that seals meters' dlms-enc keys in the database (0600 under DATA_DIR)."""
        secret, _ = ensure_secret(
            self.settings.app.data_dir / "secrets" / "device_key_wrap",
            lambda: secrets.token_hex(32),
        )
        return bytes.fromhex(secret)

    def close(self) -> None:
        self.engine.dispose()


def bootstrap(
    settings: Settings | None = None, *, require_migrated: bool = True, pre_ping: bool = True
) -> App:
    """`pre_ping=False` saves a round trip per checkout for a process that retries anyway."""
    settings = settings or load_settings()
    secure_data_dir(settings.app.data_dir, settings.app.sqlite_path)
    engine = create_db_engine(settings.app.effective_database_url, pool_pre_ping=pre_ping)
    if require_migrated:
        try:
            ensure_migrated(engine)
        except Exception:
            engine.dispose()
            raise
    return App(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        readers=session_factory(read_only(engine)),
    )
