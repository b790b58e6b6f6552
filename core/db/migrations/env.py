"""Alembic environment: the URL comes from the settings object (DATABASE_URL).

Programmatic callers (tests, the launcher) may pass a URL as the `database_url`
attribute of the Alembic Config instead.
"""

from __future__ import annotations

from alembic import context

from core.db.engine import create_db_engine
from core.db.models import Base


def _database_url() -> str:
    url = context.config.attributes.get("database_url")
    if url:
        return url
    from core.config import load_settings

    return load_settings().app.effective_database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_db_engine(_database_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=True,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
