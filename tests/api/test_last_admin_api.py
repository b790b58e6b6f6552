"""POST /api/admin/users/{username}/disable: the last enabled admin answers 409 last_admin."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import Role, User
from tests.api.conftest import TestClient, auth_headers, error_of
from tests.factories import make_user


def test_the_last_enabled_admin_cannot_disable_themselves(
    client: TestClient, app: App, session: Session, admin: User
) -> None:
    headers = auth_headers(app, admin)
    response = client.post(f"/api/admin/users/{admin.username}/disable", headers=headers)
    assert response.status_code == 409
    error = error_of(response)
    assert (error["code"], error["field"]) == ("last_admin", "username")
    assert "last enabled admin" in error["message"]
    # Still an admin who can work.
    assert client.get("/api/admin/users", headers=headers).status_code == 200
    make_user(session, "deputy", role=Role.ADMIN)
    response = client.post(f"/api/admin/users/{admin.username}/disable", headers=headers)
    assert response.status_code == 200 and response.json()["disabled"] is True
