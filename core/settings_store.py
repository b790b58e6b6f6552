"""Runtime overrides of the tokenization rules, written by admins, audited as events.

The effective configuration is the environment's TokenizationConfig overlaid by the
rows of the settings table. `effective_config` is one small query, cheap enough to
call on every mint cycle and every ingest request, so a change applies without restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.config import OVERRIDABLE_KEYS, TokenizationConfig
from core.db.engine import read_only
from core.db.models import Setting, User
from core.db.types import utcnow
from core.errors import DomainError
from core.events import EventType, publish
from core.permissions import require_admin


class InvalidSetting(DomainError):
    code = "invalid_setting"


# The one row of the settings table that no admin writes: the end of the last month
# `python -m core.archive` removed, as ISO 8601 text (TokenizationConfig.archived_before).
# It lives here so the query every ingest request already makes reads it too.
ARCHIVED_BEFORE = "archive.readings_before"


def _rows(source: Session | Engine) -> dict[str, Any]:
    statement = select(Setting.key, Setting.value)
    if isinstance(source, Session):
        return dict(source.execute(statement).all())
    with read_only(source).connect() as connection:
        return dict(connection.execute(statement).all())


def read_overrides(source: Session | Engine) -> dict[str, Any]:
    """The stored overrides as {key: JSON value}."""
    return {key: value for key, value in _rows(source).items() if key in OVERRIDABLE_KEYS}


def effective_config(source: Session | Engine, base: TokenizationConfig) -> TokenizationConfig:
    """The environment's rules with the admins' overrides and the archive horizon applied."""
    rows = _rows(source)
    overrides = {key: value for key, value in rows.items() if key in OVERRIDABLE_KEYS}
    config = (
        TokenizationConfig.model_validate({**base.model_dump(), **overrides}) if overrides else base
    )
    horizon = rows.get(ARCHIVED_BEFORE)
    if horizon is None:
        return config
    return config.with_archive_horizon(datetime.fromisoformat(horizon))


def raise_archive_horizon(session: Session, before: datetime, *, by: str) -> None:
    """Refuse readings before `before` from now on (never moves back). The caller commits."""
    row = session.get(Setting, ARCHIVED_BEFORE)
    if row is not None and datetime.fromisoformat(row.value) >= before:
        return
    if row is None:
        row = Setting(key=ARCHIVED_BEFORE)
        session.add(row)
    row.value, row.updated_by, row.updated_at = before.isoformat(), by, utcnow()


def update_settings(
    session: Session,
    base: TokenizationConfig,
    changes: Mapping[str, Any],
    *,
    by: str | User,
) -> TokenizationConfig:
    """Validate and store overrides; one settings_changed event per changed key. Commits.

    `by` is the admin making the change (a non-admin is refused: NotPermitted), or
    the name of a system component acting on its own (the reconciler).

    review_threshold_kwh=None stores "no review" (it overrides a threshold set in the
    environment); `reset_settings` removes overrides so the environment applies again.
    """
    by = _actor_name(by, "change settings")
    _refuse_unknown(changes)
    current = effective_config(session, base)
    try:
        updated = TokenizationConfig.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else None
        raise InvalidSetting(f"{field}: {error['msg']}", field=field) from exc
    for key in changes:
        old, new = getattr(current, key), getattr(updated, key)
        if old == new:
            continue
        row = session.get(Setting, key)
        if row is None:
            row = Setting(key=key)
            session.add(row)
        row.value, row.updated_by, row.updated_at = _to_json(new), by, utcnow()
        _audit(session, key, old, new, by)
    session.commit()
    return updated.with_archive_horizon(current.archived_before)


def reset_settings(
    session: Session, base: TokenizationConfig, keys: list[str], *, by: str | User
) -> TokenizationConfig:
    """Remove overrides so the environment's values apply again (`by` as above). Commits."""
    by = _actor_name(by, "reset settings")
    _refuse_unknown(dict.fromkeys(keys))
    current = effective_config(session, base)
    for key in keys:
        row = session.get(Setting, key)
        if row is None:
            continue
        session.delete(row)
        _audit(session, key, getattr(current, key), getattr(base, key), by)
    session.commit()
    return effective_config(session, base)


def _actor_name(by: str | User, action: str) -> str:
    if isinstance(by, User):
        require_admin(by, action)
        return by.username
    return by


def _refuse_unknown(changes: Mapping[str, Any]) -> None:
    unknown = sorted(set(changes) - set(OVERRIDABLE_KEYS))
    if unknown:
        raise InvalidSetting(f"not a runtime setting: {', '.join(unknown)}", field=unknown[0])


def _audit(session: Session, key: str, old: Any, new: Any, by: str) -> None:
    publish(
        session,
        EventType.SETTINGS_CHANGED,
        {"key": key, "old": _to_json(old), "new": _to_json(new), "by": by},
    )


def _to_json(value: Any) -> Any:
    return format(value, "f") if isinstance(value, Decimal) else value
