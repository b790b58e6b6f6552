"""Read models for the dashboard: SQL aggregations returning small typed rows.

Pages never build SQL; they call these. Every function that returns readings, mints,
balances or events takes the viewer (a User) and filters by user_id for a prosumer,
or refuses (core.errors.Forbidden) when the data is for staff only: access is
enforced here, in the queries, not by hiding pages.

Amounts stay integers (micro-kWh, token base units); core.units formats them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.db.engine import read_only
from core.views._sql import Window, day_start, is_staff, require_admin, require_staff
from core.views.admin import (
    MeterRow,
    UserRow,
    any_user,
    count_meters,
    count_users,
    failed_readings,
    meter_row,
    meters,
    review_queue,
    user_for_email,
    user_row,
    users,
)
from core.views.costs import CostPoint, Costs, CostsToday, PeriodCost, costs, costs_today
from core.views.events import (
    EVENT_TYPES,
    EventRow,
    event_log,
    filtered_events,
    newest_event_id,
)
from core.views.filters import InvalidFilter, TableFilter, parse_filter
from core.views.minting import (
    BatchRow,
    Latency,
    QueuePoint,
    latency_percentiles,
    queue_depth,
    recent_batches,
)
from core.views.overview import (
    ExpectedSupply,
    Overview,
    current_token_mint,
    expected_supply,
    overview,
)
from core.views.readings import (
    RatePoint,
    ReadingRow,
    SeriesPoint,
    Split,
    count_by_status,
    energy_series,
    filtered_readings,
    ingest_rate,
    latest_readings,
)
from core.views.wallet import (
    DayPoint,
    MintRow,
    WalletTotals,
    daily_production,
    recent_mints,
    wallet_totals,
)


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading only: on SQLite it takes no write lock, so a dashboard
    refresh never makes the scheduler or the API wait."""
    with Session(read_only(engine)) as session:
        yield session


__all__ = [
    "EVENT_TYPES",
    "BatchRow",
    "CostPoint",
    "Costs",
    "CostsToday",
    "DayPoint",
    "EventRow",
    "ExpectedSupply",
    "InvalidFilter",
    "Latency",
    "MeterRow",
    "MintRow",
    "Overview",
    "PeriodCost",
    "QueuePoint",
    "RatePoint",
    "ReadingRow",
    "SeriesPoint",
    "Split",
    "TableFilter",
    "UserRow",
    "WalletTotals",
    "Window",
    "any_user",
    "costs",
    "costs_today",
    "count_by_status",
    "count_meters",
    "count_users",
    "current_token_mint",
    "daily_production",
    "day_start",
    "energy_series",
    "event_log",
    "expected_supply",
    "failed_readings",
    "filtered_events",
    "filtered_readings",
    "ingest_rate",
    "is_staff",
    "latency_percentiles",
    "latest_readings",
    "meter_row",
    "meters",
    "newest_event_id",
    "overview",
    "parse_filter",
    "queue_depth",
    "read_session",
    "recent_batches",
    "recent_mints",
    "require_admin",
    "require_staff",
    "review_queue",
    "user_for_email",
    "user_row",
    "users",
    "wallet_totals",
]
