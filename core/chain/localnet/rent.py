"""The runtime's rent-state rule, which LiteSVM 0.26 does not apply.

A cluster refuses a transaction that leaves an account holding lamports below
its rent-exempt minimum (InsufficientFundsForRent), unless that account was
already rent-paying with the same size and is not topped up. Clients meet this
on devnet, so they meet it here.
"""

from __future__ import annotations

from solders.account import Account
from solders.litesvm import LiteSVM
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import SimulatedTransactionInfo
from solders.transaction_status import TransactionErrorInsufficientFundsForRent

from core.chain.localnet.execution import resolve_keys


def rent_violation(
    svm: LiteSVM, tx: VersionedTransaction, outcome: SimulatedTransactionInfo
) -> TransactionErrorInsufficientFundsForRent | None:
    for key, after in outcome.post_accounts():
        if not _rent_paying(svm, after):
            continue
        before = svm.get_account(key)
        if (
            before is not None
            and _rent_paying(svm, before)
            and len(before.data) == len(after.data)
            and after.lamports <= before.lamports
        ):
            continue
        index = resolve_keys(svm, tx.message).keys.index(key)
        return TransactionErrorInsufficientFundsForRent(index)
    return None


def _rent_paying(svm: LiteSVM, account: Account) -> bool:
    if account.lamports == 0:
        return False
    return account.lamports < svm.minimum_balance_for_rent_exemption(len(account.data))
