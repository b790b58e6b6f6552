"""Starting the API: an un-migrated database is refused; the first admin is created once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from api.app import create_app
from core.bootstrap import App
from core.db.models import User
from core.users import admin_password_file
from tests.api.conftest import TestClient

ROOT = Path(__file__).resolve().parents[2]


def test_python_m_api_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TOKENIZATION_", "API_"))},
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "api"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "has no schema" in result.stderr and "alembic upgrade head" in result.stderr


def test_the_lifespan_creates_the_first_admin_once(app: App) -> None:
    with TestClient(create_app(app)):
        pass
    with TestClient(create_app(app)):
        pass
    with app.sessions() as session:
        admins = session.scalars(select(User).where(User.role == "admin")).all()
    assert [admin.username for admin in admins] == ["admin"]
    password_file = admin_password_file(app.settings.app)
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
