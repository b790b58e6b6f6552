"""core.db.locks: a named lock another process cannot take while it is held."""

from __future__ import annotations

import fcntl
import stat

import pytest
from sqlalchemy import Engine, text

from core.db.engine import create_db_engine
from core.db.locks import exclusive, lock_file, lock_key


def others_can_take(engine: Engine, name: str) -> bool:
    """What another process would find: try the same lock without waiting, and give it back."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(name)}
            ).scalar()
            if taken:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(name)})
            connection.commit()
            return bool(taken)
    path = lock_file(engine, name)
    assert path is not None
    with path.open("a") as handle:  # a second open file: flock conflicts as across processes
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_the_lock_is_held_for_the_block_only(engine: Engine) -> None:
    assert others_can_take(engine, "grx-mint")
    with exclusive(engine, "grx-mint"):
        assert not others_can_take(engine, "grx-mint")
        assert others_can_take(engine, "certificate-mint")  # names are apart
    assert others_can_take(engine, "grx-mint")


def test_an_error_inside_releases_it(engine: Engine) -> None:
    with pytest.raises(RuntimeError), exclusive(engine, "grx-mint"):
        raise RuntimeError("the creation failed")
    assert others_can_take(engine, "grx-mint")


def test_keys_are_stable_signed_64_bit() -> None:
    assert lock_key("grx-mint") == lock_key("grx-mint") != lock_key("certificate-mint")
    assert -(2**63) <= lock_key("grx-mint") < 2**63


def test_the_sqlite_lock_file_is_private(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    with exclusive(engine, "grx-mint"):
        pass
    path = lock_file(engine, "grx-mint")
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    engine.dispose()
