"""Planning: exact amounts per reading, one mint per wallet, invalid wallets fail alone."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.minting.plan import ClaimedReading, backoff_seconds, plan_claim, wallets_of
from core.units import kwh_to_base_units, micro_to_kwh

W1 = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
W2 = "11111111111111111111111111111111"


def reading(rid: int, micro: int, wallet: str | None = W1, user: int = 1) -> ClaimedReading:
    return ClaimedReading(id=rid, user_id=user, wallet_address=wallet, kwh_micro=micro)


def test_one_mint_per_wallet_with_the_sum_of_floored_readings() -> None:
    readings = [reading(1, 2_010_000), reading(2, 290_000), reading(3, 1_000_000, W2)]
    plan = plan_claim(readings, ratio=Decimal("1.0"), decimals=9, wallets_per_transaction=18)
    assert plan.base_units == {1: 2_010_000_000, 2: 290_000_000, 3: 1_000_000_000}
    [batch] = plan.batches
    assert [(m.wallet_address, m.base_units, m.reading_ids) for m in batch] == [
        (W1, 2_300_000_000, [1, 2]),
        (W2, 1_000_000_000, [3]),
    ]


def test_each_reading_is_floored_on_its_own() -> None:
    # 0.000001 kWh at ratio 0.3335 with 9 decimals is 333.5 base units. Floored per
    # reading: 333 + 333 = 666. Floored per wallet it would be floor(667.0) = 667.
    readings = [reading(1, 1), reading(2, 1)]
    plan = plan_claim(readings, ratio=Decimal("0.3335"), decimals=9, wallets_per_transaction=5)
    assert plan.base_units == {1: 333, 2: 333}
    assert plan.batches[0][0].base_units == 666
    assert 1 * 3_335 * 10**9 * 2 // 10**10 == 667  # the other flooring really differs


def test_invalid_wallets_fail_alone_and_zero_amounts_need_no_transaction() -> None:
    readings = [
        reading(1, 1_000_000, wallet="not-a-wallet"),
        reading(2, 1_000_000, wallet=None),
        reading(3, 1, wallet=W2),  # 0.000001 kWh at 9 decimals, ratio 1e-9 -> 0
        reading(4, 5_000_000),
    ]
    plan = plan_claim(readings, ratio=Decimal("0.000000001"), decimals=9, wallets_per_transaction=5)
    assert plan.invalid_wallet == [1, 2]
    assert plan.nothing_to_mint == [3]
    assert [[m.reading_ids for m in batch] for batch in plan.batches] == [[[4]]]


def test_wallets_are_packed_into_transactions_of_the_given_capacity() -> None:
    wallets = [str(i).rjust(32, "1") for i in range(1, 10)]  # nine distinct valid addresses
    readings = [reading(i, 1_000_000, wallet=w) for i, w in enumerate(wallets, start=1)]
    plan = plan_claim(readings, ratio=Decimal(1), decimals=9, wallets_per_transaction=4)
    assert [len(batch) for batch in plan.batches] == [4, 4, 1]


@given(
    st.lists(
        st.tuples(st.integers(1, 100_000_000), st.sampled_from([W1, W2, None])),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 10**12).map(lambda nano: Decimal(nano).scaleb(-9)),
)
def test_every_valid_reading_is_planned_exactly_once_with_exact_units(items, ratio) -> None:
    readings = [reading(i, micro, wallet) for i, (micro, wallet) in enumerate(items, start=1)]
    plan = plan_claim(readings, ratio=ratio, decimals=9, wallets_per_transaction=3)
    planned = [rid for batch in plan.batches for mint in batch for rid in mint.reading_ids]
    accounted = planned + plan.invalid_wallet + plan.nothing_to_mint
    assert sorted(accounted) == [r.id for r in readings]
    for r in readings:
        if r.wallet_address is not None:
            assert plan.base_units[r.id] == kwh_to_base_units(micro_to_kwh(r.kwh_micro), ratio, 9)
    for batch in plan.batches:
        for mint in batch:
            assert mint.base_units == sum(plan.base_units[rid] for rid in mint.reading_ids)


@pytest.mark.parametrize(
    ("attempts", "expected"), [(0, 30), (1, 30), (2, 60), (3, 120), (4, 240), (10, 15_360)]
)
def test_backoff_doubles(attempts: int, expected: int) -> None:
    assert backoff_seconds(attempts, 30) == expected


def test_backoff_scales_with_its_base() -> None:
    assert [backoff_seconds(n, 7) for n in (1, 2, 3)] == [7, 14, 28]


def test_a_capacity_of_one_puts_each_wallet_in_its_own_transaction() -> None:
    readings = [reading(1, 1_000_000, W1), reading(2, 2_000_000, W2), reading(3, 3_000_000, W1)]
    plan = plan_claim(readings, ratio=Decimal(1), decimals=6, wallets_per_transaction=1)
    assert [[(m.wallet_address, m.base_units, m.reading_ids) for m in b] for b in plan.batches] == [
        [(W1, 4_000_000, [1, 3])],
        [(W2, 2_000_000, [2])],
    ]
    assert wallets_of(plan.batches) == [W1, W2]


@pytest.mark.parametrize("capacity", [0, -1])
def test_a_capacity_below_one_is_refused(capacity: int) -> None:
    with pytest.raises(ValueError, match=r"^wallets_per_transaction must be at least 1$"):
        plan_claim([reading(1, 1)], ratio=Decimal(1), decimals=9, wallets_per_transaction=capacity)


def test_a_last_transaction_of_exactly_one_wallet() -> None:
    wallets = [str(i).rjust(32, "1") for i in range(1, 6)]
    readings = [reading(i, i * 1_000_000, wallet=w) for i, w in enumerate(wallets, start=1)]
    plan = plan_claim(readings, ratio=Decimal("2.5"), decimals=0, wallets_per_transaction=2)
    assert [[m.base_units for m in batch] for batch in plan.batches] == [[2, 5], [7, 10], [12]]
    assert wallets_of(plan.batches) == wallets
    assert plan.invalid_wallet == [] and plan.nothing_to_mint == []


def test_nothing_to_plan_is_an_empty_plan() -> None:
    plan = plan_claim([], ratio=Decimal(1), decimals=9, wallets_per_transaction=3)
    assert (plan.base_units, plan.batches, plan.invalid_wallet, plan.nothing_to_mint) == (
        {},
        [],
        [],
        [],
    )
