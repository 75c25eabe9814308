"""Region codes, series roll-up and parameter validation."""

from __future__ import annotations

import numpy as np
import pytest

from detector.params import Params
from detector.regions import is_valid_region, parent_regions, validate_region
from detector.series import SeriesIndex, expand_leaf


@pytest.mark.parametrize(
    "code,norm", [("us", "US"), ("US-CA", "US-CA"), (" gb-lnd ", "GB-LND"), ("fr", "FR")]
)
def test_validate_region_normalises(code: str, norm: str) -> None:
    assert validate_region(code) == norm
    assert is_valid_region(code)


@pytest.mark.parametrize("code", ["", "XX", "USA", "US-ZZ", "U1", "*", "US_CA", "ZZ-CA"])
def test_invalid_regions_are_rejected(code: str) -> None:
    assert not is_valid_region(code)
    with pytest.raises(ValueError):
        validate_region(code)


def test_parent_regions() -> None:
    assert parent_regions("US-CA") == ["US", "*"]
    assert parent_regions("US") == ["*"]
    assert parent_regions("*") == []


def test_leaf_rolls_up_to_every_scope() -> None:
    assert set(expand_leaf(("US-CA", "app"))) == {
        ("US-CA", "app"),
        ("US-CA", "*"),
        ("US", "app"),
        ("US", "*"),
        ("*", "app"),
        ("*", "*"),
    }


def test_series_index_is_append_only_and_round_trips() -> None:
    index = SeriesIndex()
    index.leaf_position(("US-CA", "app"))
    before = list(index.keys)
    index.leaf_position(("GB", "login"))
    assert index.keys[: len(before)] == before
    values = np.zeros(len(index.leaves))
    values[0], values[1] = 3, 4
    rolled = index.rollup(values)
    assert rolled[index.position(("*", "*"))] == 7
    assert rolled[index.position(("US", "*"))] == 3
    assert rolled[index.position(("*", "login"))] == 4
    again = SeriesIndex.from_json(index.to_json())
    assert again.keys == index.keys and again.leaves == index.leaves


@pytest.mark.parametrize(
    "bad",
    [
        dict(windows=()),
        dict(windows=(1, 500)),
        dict(cusum_ratios=(1.0,)),
        dict(min_ratio=0.5),
        dict(false_alarms_per_series_year=0.0),
        dict(smoothing_kernel=(1.0, 1.0)),
    ],
)
def test_params_validate(bad: dict) -> None:
    with pytest.raises(ValueError):
        Params(**bad)
