"""One step for the lookup tables: extend a table with room, or create a new one.

Planned in one database transaction with the outbox row that will carry it: the
table's entry count is reserved with a guarded UPDATE (two schedulers never
overfill a table), a new table is recorded `creating` with its creating
operation, and the accounts are recorded as inactive entries of that operation.
At most one table is being created at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.chain.compute_budget import ComputeBudget
from core.chain.lookup_tables import (
    MAX_ADDRESSES,
    create_table,
    extend_table,
    max_addresses_per_transaction,
)
from core.db.models import LookupTable as LookupTableRow
from core.db.models import LookupTableEntry, LookupTableStatus, OperationKind
from core.minting.outbox import Outbox


@dataclass(frozen=True)
class TableStep:
    operation_id: int
    instructions: list[Instruction]
    wallets: list[str]  # whose token accounts it adds


def plan_table_step(
    session: Session,
    outbox: Outbox,
    candidates: dict[str, Pubkey],
    *,
    authority: Pubkey,
    mint: Pubkey,
    budget: ComputeBudget,
    recent_slot: Callable[[], int],
) -> TableStep | None:
    """Plan the next step for `candidates` (wallet -> token account); commits.

    Wallets already in a table are removed from `candidates`. None when nothing
    can be planned now (no candidates, or a table is still being created).
    """
    known = set(
        session.scalars(
            select(LookupTableEntry.wallet).where(
                LookupTableEntry.wallet.in_(list(candidates)[:1000])
            )
        )
    )
    for wallet in known:
        candidates.pop(wallet, None)
    if not candidates:
        return None
    table = session.scalars(
        select(LookupTableRow)
        .where(
            LookupTableRow.status == LookupTableStatus.READY.value,
            LookupTableRow.mint == str(mint),
            LookupTableRow.authority == str(authority),
            LookupTableRow.entries < MAX_ADDRESSES,
        )
        .order_by(LookupTableRow.entries.desc())
        .limit(1)
    ).first()
    if table is not None:
        per_extend = max_addresses_per_transaction(authority, create=False, compute_budget=budget)
        count = min(per_extend, MAX_ADDRESSES - table.entries, len(candidates))
        chosen = list(candidates.items())[:count]
        reserved = session.execute(
            update(LookupTableRow)
            .where(
                LookupTableRow.address == table.address,
                LookupTableRow.entries + count <= MAX_ADDRESSES,
            )
            .values(entries=LookupTableRow.entries + count)
        ).rowcount
        if reserved != 1:
            session.rollback()
            return None
        address = Pubkey.from_string(table.address)
        instructions = [extend_table(address, authority, authority, [a for _, a in chosen])]
        operation_id = outbox.plan(
            session,
            OperationKind.LOOKUP_TABLE,
            {"table": table.address, "create": False, "accounts": [str(a) for _, a in chosen]},
        )
    else:
        creating = session.scalar(
            select(LookupTableRow.address)
            .where(
                LookupTableRow.status == LookupTableStatus.CREATING.value,
                LookupTableRow.mint == str(mint),
            )
            .limit(1)
        )
        if creating is not None:
            session.rollback()
            return None  # one creation at a time: wait for it
        per_create = max_addresses_per_transaction(authority, create=True, compute_budget=budget)
        chosen = list(candidates.items())[: per_create - 1]
        slot = recent_slot()
        address, instructions = create_table(
            authority, authority, slot, [mint, *(a for _, a in chosen)]
        )
        operation_id = outbox.plan(
            session,
            OperationKind.LOOKUP_TABLE,
            {
                "table": str(address),
                "create": True,
                "recent_slot": slot,
                "accounts": [str(a) for _, a in chosen],
            },
        )
        session.execute(
            insert(LookupTableRow).values(
                address=str(address),
                authority=str(authority),
                mint=str(mint),
                status=LookupTableStatus.CREATING.value,
                entries=1 + len(chosen),
                operation_id=operation_id,
                created_at=outbox.clock(),
            )
        )
    session.execute(
        insert(LookupTableEntry),
        [
            {
                "table_address": str(address),
                "account": str(account),
                "wallet": wallet,
                "operation_id": operation_id,
                "active": False,
            }
            for wallet, account in chosen
        ],
    )
    try:
        session.commit()
    except IntegrityError:  # another scheduler added one of them meanwhile
        session.rollback()
        return None
    return TableStep(operation_id, instructions, [wallet for wallet, _ in chosen])
