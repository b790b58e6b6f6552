"""Registry fields of a meter: what is accepted, what is refused and why."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.device_attributes import (
    InvalidDevice,
    Technology,
    certificate_blocker,
    device_attributes,
    parse_capacity_kw,
    parse_commissioning_date,
    parse_country,
    parse_device_attributes,
    parse_grid_region,
    parse_technology,
)

TODAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("5.5", Decimal("5.5")), (7, Decimal(7)), ("0.001", Decimal("0.001")),
     ("12.500", Decimal("12.5")), ("10000000", Decimal(10_000_000)), ("", None), (None, None)],
)  # fmt: skip
def test_capacity_is_exact_to_the_watt(given: object, expected: Decimal | None) -> None:
    assert parse_capacity_kw(given) == expected


@pytest.mark.parametrize(
    "given", ["0", "-1", "0.0001", "10000000.001", "abc", "NaN", "Infinity", 5.5, True]
)
def test_capacity_refused(given: object) -> None:
    with pytest.raises(InvalidDevice) as caught:
        parse_capacity_kw(given)
    assert caught.value.field == "capacity_kw"


def test_country_is_iso_alpha_2_upper_cased() -> None:
    assert parse_country(" th ") == "TH"
    for bad in ("XX", "THA", "T", "UK"):
        with pytest.raises(InvalidDevice) as caught:
            parse_country(bad)
        assert caught.value.field == "country"


def test_grid_region_is_one_spelling_of_a_zone_code() -> None:
    assert parse_grid_region("th-pea") == "TH-PEA"
    assert parse_grid_region("SE3") == "SE3"
    for bad in ("-TH", "TH PEA", "TH:PEA", "A" * 33, "ÄÖ"):
        with pytest.raises(InvalidDevice):
            parse_grid_region(bad)


def test_technology_is_one_of_the_enum() -> None:
    assert parse_technology("Solar_PV") is Technology.SOLAR_PV
    with pytest.raises(InvalidDevice) as caught:
        parse_technology("coal")
    assert "solar_pv" in str(caught.value) and caught.value.field == "technology"


def test_commissioning_date_is_a_past_date() -> None:
    assert parse_commissioning_date("2024-03-01", today=TODAY) == date(2024, 3, 1)
    assert parse_commissioning_date(TODAY, today=TODAY) == TODAY
    for bad in ("2026-12-03", "1879-12-31", "01/03/2024", "2024-02-30"):
        with pytest.raises(InvalidDevice):
            parse_commissioning_date(bad, today=TODAY)


@pytest.mark.parametrize(
    ("latitude", "longitude", "ok"),
    [("13.756331", "100.501762", True), ("90", "-180", True), ("90.000001", "0", False),
     ("0", "180.1", False), ("13.7563311", "100", False), ("13", None, False), ("", "", True)],
)  # fmt: skip
def test_location_is_range_checked_and_given_as_a_pair(
    latitude: str, longitude: str | None, ok: bool
) -> None:
    values = {"latitude": latitude, "longitude": longitude}
    if ok:
        parse_device_attributes(values)
    else:
        with pytest.raises(InvalidDevice):
            parse_device_attributes(values)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(InvalidDevice) as caught:
        parse_device_attributes({"colour": "green"})
    assert caught.value.field == "colour"


def test_a_meter_missing_fields_says_which() -> None:
    partial = device_attributes({"technology": "wind", "country": "DE"})
    assert certificate_blocker(partial) == (
        "cannot issue certificates: missing capacity_kw, grid_region, commissioning_date"
    )
    complete = device_attributes(
        {"technology": "wind", "capacity_kw": "3000", "country": "DE", "grid_region": "DE-LU",
         "commissioning_date": "2020-01-01"}
    )  # fmt: skip
    assert certificate_blocker(complete) is None
