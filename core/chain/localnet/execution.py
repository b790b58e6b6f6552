"""What an executed transaction leaves behind: account writes and its status meta.

getTransaction must later show what a real node shows (fee, balances before and
after, token balances, logs, compute units), but the state before execution is
gone by then, so the node captures it here once, at execution time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from base58 import b58encode
from solders.account import Account
from solders.address_lookup_table_account import LOOKUP_TABLE_META_SIZE
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import InnerInstruction, TransactionMetadata
from solders.transaction_status import (
    TransactionErrorType,
    UiCompiledInstruction,
    UiInnerInstructions,
    UiLoadedAddresses,
    UiTransactionStatusMeta,
)

LAMPORTS_PER_SIGNATURE = 5000
COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
_DEFAULT_UNITS_PER_INSTRUCTION = 200_000
_MAX_UNITS = 1_400_000

AccountWrites = list[tuple[Pubkey, Account]]


@dataclass(frozen=True, slots=True)
class ResolvedKeys:
    """Every account a message touches, static keys first, then lookup-table loads."""

    keys: list[Pubkey]
    loaded_writable: list[Pubkey]
    loaded_readonly: list[Pubkey]


def resolve_keys(svm: LiteSVM, message: Message | MessageV0) -> ResolvedKeys:
    static = list(message.account_keys)
    if isinstance(message, Message) or not message.address_table_lookups:
        return ResolvedKeys(static, [], [])
    writable: list[Pubkey] = []
    readonly: list[Pubkey] = []
    for lookup in message.address_table_lookups:
        table = svm.get_account(lookup.account_key)
        data = b"" if table is None else table.data[LOOKUP_TABLE_META_SIZE:]
        addresses = [data[i : i + 32] for i in range(0, len(data) - 31, 32)]
        for into, indexes in (
            (writable, lookup.writable_indexes),
            (readonly, lookup.readonly_indexes),
        ):
            into.extend(Pubkey.from_bytes(addresses[i]) for i in indexes if i < len(addresses))
    return ResolvedKeys(static + writable + readonly, writable, readonly)


def fee_for(message: Message | MessageV0) -> int:
    """Signature fees plus the prioritization fee the compute-budget instructions ask for."""
    header = message.header
    fee = LAMPORTS_PER_SIGNATURE * header.num_required_signatures
    keys = message.account_keys
    unit_limit: int | None = None
    micro_lamports_per_unit = 0
    other_instructions = 0
    for instruction in message.instructions:
        index = instruction.program_id_index
        if index < len(keys) and keys[index] == COMPUTE_BUDGET_PROGRAM_ID:
            data = instruction.data
            if data[:1] == b"\x02" and len(data) >= 5:
                unit_limit = int.from_bytes(data[1:5], "little")
            elif data[:1] == b"\x03" and len(data) >= 9:
                micro_lamports_per_unit = int.from_bytes(data[1:9], "little")
        else:
            other_instructions += 1
    if unit_limit is None:
        unit_limit = _DEFAULT_UNITS_PER_INSTRUCTION * other_instructions
    unit_limit = min(unit_limit, _MAX_UNITS)
    # Ceiling division, as the runtime rounds a prioritization fee up.
    return fee + -(-micro_lamports_per_unit * unit_limit // 1_000_000)


def signature_fee(message: Message | MessageV0) -> int:
    return LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures


def bill_priority_fee(
    message: Message | MessageV0, payer: Pubkey, writes: AccountWrites
) -> AccountWrites | None:
    """The writes with the prioritization fee taken from the fee payer, as a validator does.

    LiteSVM charges only the signature fee; `fee_for` is what a cluster charges.
    None when the payer cannot pay the rest: a leader would not include the transaction.
    """
    unbilled = fee_for(message) - signature_fee(message)
    if unbilled <= 0:
        return writes
    billed: AccountWrites = []
    for key, account in writes:
        if key == payer:
            if account.lamports < unbilled:
                return None
            account = Account(
                account.lamports - unbilled,
                account.data,
                account.owner,
                account.executable,
                account.rent_epoch,
            )
        billed.append((key, account))
    return billed


def _inner_instructions(groups: list[list[InnerInstruction]]) -> list[UiInnerInstructions]:
    result = []
    for index, group in enumerate(groups):
        if not group:
            continue
        instructions = [
            UiCompiledInstruction(
                compiled.program_id_index,
                bytes(compiled.accounts),
                b58encode(bytes(compiled.data)).decode(),
                inner.stack_height(),
            )
            for inner in group
            for compiled in (inner.instruction(),)
        ]
        result.append(UiInnerInstructions(index, instructions))
    return result


def status_meta_json(
    tx: VersionedTransaction,
    keys: ResolvedKeys,
    pre: Sequence[Account | None],
    post: Sequence[Account | None],
    metadata: TransactionMetadata,
    err: TransactionErrorType | None,
) -> str:
    """The transaction's status meta as getTransaction returns it (stored as JSON)."""
    return_data = metadata.return_data()
    if not return_data.data:
        return_data = None
    meta = UiTransactionStatusMeta(
        err,
        fee_for(tx.message),
        [0 if account is None else account.lamports for account in pre],
        [0 if account is None else account.lamports for account in post],
        _inner_instructions(metadata.inner_instructions()),
        metadata.logs(),
        [],  # token balances are kept packed (tokens.balance_snapshot), expanded on read
        [],
        [],
        UiLoadedAddresses(keys.loaded_writable, keys.loaded_readonly),
        return_data,
        metadata.compute_units_consumed(),
    )
    text = meta.to_json()
    if err is None:
        return text
    # solders writes "status": {"Ok": null} even for a failed transaction; nodes write Err.
    fixed = json.loads(text)
    fixed["status"] = {"Err": fixed["err"]}
    return json.dumps(fixed, separators=(",", ":"))
