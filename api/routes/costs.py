"""GET /api/admin/costs: what minting spent and locked, and the fee payer's runway."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter

from api.deps import ReadSessionDep, StaffUser, StateDep
from api.openapi import error_responses
from api.schemas import CostsOut
from api.serialize import rfc3339
from core.db.models import OperationKind
from core.views.costs import CostPoint, Costs, PeriodCost, costs

router = APIRouter(tags=["admin"])


def _sol(lamports: int) -> str:
    return format(Decimal(lamports).scaleb(-9).normalize(), "f")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _period(cost: PeriodCost) -> dict[str, Any]:
    return {
        "fees_lamports": cost.fees_lamports,
        "rent_lamports": cost.rent_lamports,
        "spent_sol": _sol(cost.fees_lamports + cost.rent_lamports),
        "transactions": cost.transactions,
        "readings_minted": cost.readings_minted,
        "lamports_per_reading": _text(cost.lamports_per_reading),
    }


def _point(point: CostPoint) -> dict[str, Any]:
    return {"bucket_start": rfc3339(point.bucket_start), **_period(point.cost)}


def costs_out(result: Costs) -> dict[str, Any]:
    payer = result.fee_payer
    rent = result.rent_locked_lamports
    accounts = rent.get(OperationKind.TOKEN_ACCOUNTS.value, 0)
    tables = rent.get(OperationKind.LOOKUP_TABLE.value, 0)
    return {
        "fee_payer": None
        if payer is None
        else {
            "address": payer.address,
            "balance_lamports": payer.balance_lamports,
            "balance_sol": _sol(payer.balance_lamports),
            "min_lamports": payer.min_lamports,
            "min_sol": _sol(payer.min_lamports),
            "low": payer.low,
            "read_at": rfc3339(payer.read_at),
        },
        "today": _period(result.today),
        "last_30_days": _period(result.last_30_days),
        "rent_locked": {
            "token_accounts_lamports": accounts,
            "lookup_tables_lamports": tables,
            "total_lamports": sum(rent.values()),
            "total_sol": _sol(sum(rent.values())),
        },
        "spent_last_24h_lamports": result.spent_last_24h_lamports,
        "runway_days": _text(result.runway_days),
        "mints_per_transaction": _text(result.mints_per_transaction),
        "hourly": [_point(point) for point in result.hourly],
        "daily": [_point(point) for point in result.daily],
    }


@router.get(
    "/api/admin/costs",
    response_model=CostsOut,
    summary="Fees, rent and the fee payer: recorded from the chain, per day and per hour",
    description=(
        "Every figure comes from the landed transactions' meta (getTransaction), recorded "
        "per operation. Lamports are integers; SOL, per-reading and runway figures are "
        "exact decimal strings."
    ),
    responses=error_responses("unauthenticated", "forbidden"),
)
def get_costs(viewer: StaffUser, session: ReadSessionDep, state: StateDep) -> dict[str, Any]:
    return costs_out(costs(session, viewer, state.now()))
