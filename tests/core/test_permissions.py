"""The admin-only write actions check their actor themselves: called straight from core,
an operator, a prosumer or a disabled admin is refused (403 forbidden) and nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.errors import domain_error_response
from core.db.models import Event, MeterReading, MintRequest, Setting, User
from core.minting.force_mint import force_mint_reading
from core.minting.requests import request_mint_now, request_reading_mint, retry_failed_readings
from core.permissions import NotPermitted
from core.review import approve_reading, reject_reading
from core.settings_store import reset_settings, update_settings
from tests.core.test_admin_actions import _seed

ACTIONS: dict[str, Callable[[Session, Any, int, User], object]] = {
    "approve": lambda s, base, rid, actor: approve_reading(s, rid, actor, "fine"),
    "reject": lambda s, base, rid, actor: reject_reading(s, rid, actor, "fault"),
    "force-mint": lambda s, base, rid, actor: force_mint_reading(s, rid, actor),
    "mint-request": lambda s, base, rid, actor: request_reading_mint(s, rid, actor),
    "mint-now": lambda s, base, rid, actor: request_mint_now(s, actor),
    "retry": lambda s, base, rid, actor: retry_failed_readings(s, actor),
    "settings": lambda s, base, rid, actor: update_settings(s, base, {"batch_size": 7}, by=actor),
    "reset": lambda s, base, rid, actor: reset_settings(s, base, ["batch_size"], by=actor),
}


def _actor(session: Session, kind: str) -> User:
    role, disabled = {
        "operator": ("operator", False),
        "prosumer": ("prosumer", False),
        "disabled admin": ("admin", True),
    }[kind]
    user = User(username=kind.replace(" ", "-"), role=role, password_hash="x", disabled=disabled)
    session.add(user)
    session.commit()
    return user


def _state(session: Session) -> tuple:
    session.expire_all()
    statuses = tuple(session.scalars(select(MeterReading.status).order_by(MeterReading.id)))
    counts = tuple(
        session.scalar(select(func.count()).select_from(table))
        for table in (Event, MintRequest, Setting)
    )
    return statuses, counts


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("kind", ["operator", "prosumer", "disabled admin"])
def test_a_non_admin_actor_is_refused_by_core_itself(
    sessions: sessionmaker[Session], app, action: str, kind: str
) -> None:
    base = app.settings.tokenization
    with sessions() as session:
        _admin, ids = _seed(session, ["review", "failed"])
        actor = _actor(session, kind)
        before = _state(session)
        with pytest.raises(NotPermitted) as caught:
            ACTIONS[action](session, base, ids[0], actor)
        session.rollback()
        assert _state(session) == before
    assert caught.value.code == "forbidden"
    assert domain_error_response(caught.value).status_code == 403


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_an_admin_actor_passes(sessions: sessionmaker[Session], app, action: str) -> None:
    with sessions() as session:
        admin, ids = _seed(session, ["review", "failed"])
        ACTIONS[action](session, app.settings.tokenization, ids[0], admin)
