"""Fill or wait, as pure rules: what goes now, in which transactions, and the next deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.minting.fill import Capacity, WaitingWallet, choose_transactions

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WAIT = timedelta(seconds=60)
CAPACITY = Capacity(legacy=3, by_tables=(5, 4, 3))


def wallet(name: str, age: float, table: str | None = None, forced: bool = False):
    return WaitingWallet(name, table, NOW - timedelta(seconds=age), forced)


def plan(waiting, capacity=CAPACITY, wait=WAIT):
    result = choose_transactions(waiting, capacity, now=NOW, max_wait=wait)
    shape = [([w.wallet for w in tx.wallets], tx.tables, tx.full) for tx in result.transactions]
    return shape, result.next_due_at


def test_nothing_full_nothing_due_waits_until_the_oldest_is_due() -> None:
    shape, due = plan([wallet("a", 50), wallet("b", 10, "T1")])
    assert shape == []
    assert due == NOW + timedelta(seconds=10)  # a waited 50 of its 60 s


def test_a_full_legacy_transaction_goes_at_once_and_the_rest_waits() -> None:
    shape, due = plan([wallet(n, 5) for n in "abcd"])
    assert shape == [(["a", "b", "c"], [], True)]
    assert due == NOW + timedelta(seconds=55)


def test_a_due_reading_takes_whatever_else_waits_with_it() -> None:
    shape, due = plan([wallet("a", 61), wallet("b", 1), wallet("c", 0), wallet("d", 0)])
    assert shape == [(["a", "b", "c"], [], True)]  # the full one; d is not due: it waits
    shape, due = plan([wallet("a", 61), wallet("b", 1)])
    assert shape == [(["a", "b"], [], False)]  # a is due and takes b along
    assert due is None


def test_a_full_table_goes_as_one_v0_transaction() -> None:
    waiting = [wallet(f"t{i}", 5, "T1") for i in range(6)] + [wallet("x", 5, "T2")]
    shape, due = plan(waiting)
    assert shape == [(["t0", "t1", "t2", "t3", "t4"], ["T1"], True)]
    assert due == NOW + timedelta(seconds=55)


def test_a_due_v0_transaction_adds_tables_while_capacity_allows() -> None:
    waiting = [
        wallet("a", 70, "T1"),
        wallet("b", 30, "T2"),
        wallet("c", 20, "T2"),
        wallet("d", 10, "T3"),
        wallet("e", 5, "T3"),
        wallet("l", 1),  # no table: legacy, not due
    ]
    shape, due = plan(waiting)
    # One table holds 5, two 4, three 3: a + b, c (T2) = 3 <= 4, then T3 would make 3 tables
    # of capacity 3 with 3 already in: no room.
    assert shape == [(["a", "b", "c"], ["T1", "T2"], False)]
    assert due == NOW + timedelta(seconds=50)  # d (T3) waited 10 s


def test_forced_wallets_go_now_and_take_company() -> None:
    shape, due = plan([wallet("a", 1), wallet("b", 0, forced=True), wallet("t", 3, "T1")])
    assert shape == [(["b", "a"], [], False)]  # the admin's wallet first, then who fits
    assert due == NOW + timedelta(seconds=57)  # t, in a table, still waits


def test_zero_wait_sends_everything_at_once() -> None:
    waiting = [wallet(n, 0) for n in "abcdefg"] + [wallet("t", 0, "T1")]
    shape, due = plan(waiting, wait=timedelta(0))
    assert shape == [
        (["a", "b", "c"], [], True),
        (["d", "e", "f"], [], True),
        (["g"], [], False),
        (["t"], ["T1"], False),
    ]
    assert due is None


def test_without_versioned_capacity_every_wallet_goes_legacy() -> None:
    waiting = [wallet("a", 61, "T1"), wallet("b", 0, "T2"), wallet("c", 0)]
    shape, _ = plan(waiting, capacity=Capacity(legacy=3))
    assert shape == [(["a", "b", "c"], [], True)]


def test_a_legacy_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        choose_transactions([], Capacity(legacy=0), now=NOW, max_wait=WAIT)
