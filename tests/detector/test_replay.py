"""The counts CSV and the replay entry points (the command: tests/cli/test_replay.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from detector.replay import (
    CountsFormatError,
    parse_counts,
    replay_arrays,
    replay_rows,
)
from tests.detector.fixtures import small_outage


@pytest.fixture(scope="module")
def small():
    return small_outage(seed=5, days=2)


def test_parse_counts_accepts_any_order_and_optional_reporters() -> None:
    text = (
        "reports,minute,service,region,problem\n"
        "3,2024-05-01T00:01:00Z,svc,us-ca,app\n"
        "1,2024-05-01T00:00:00Z,svc,GB,login\n"
    )
    rows = parse_counts(io.StringIO(text))
    assert rows[0][1:] == ("svc", "US-CA", "app", 3, None)
    assert rows[1][0] == rows[0][0] - 1


@pytest.mark.parametrize(
    "text,where",
    [
        ("", ":1: empty"),
        ("minute,service,region\n", ":1: header lacks problem, reports"),
        ("minute,service,region,problem,reports\n2024-05-01T00:00:00Z,s,XX,app,1\n", ":2:"),
        ("minute,service,region,problem,reports\n2024-05-01T00:00:30Z,s,US,app,1\n", ":2:"),
        ("minute,service,region,problem,reports\n2024-05-01T00:00:00Z,s,US,app,-1\n", ":2:"),
        ("minute,service,region,problem,reports\n2024-05-01T00:00:00Z,s,US,app\n", ":2:"),
        (
            "minute,service,region,problem,reports,reporters\n"
            "2024-05-01T00:00:00Z,s,US,app,1,1\n2024-05-01T00:01:00Z,s,US,app,1,2\n",
            ":3:",
        ),
        ("minute,service,region,problem,reports\nyesterday,s,US,app,1\n", ":2:"),
    ],
)
def test_bad_csv_names_the_line(text: str, where: str) -> None:
    with pytest.raises(CountsFormatError, match=where):
        parse_counts(io.StringIO(text), "c.csv")


def test_rows_and_arrays_agree_and_absent_rows_are_zero(small) -> None:
    n = small.reports.shape[1]
    via_arrays = replay_arrays(
        small.service, small.leaf_keys, small.start_minute, small.reports, small.reporters
    )
    rows = small.rows()
    rng = np.random.default_rng(0)
    rows = [rows[i] for i in rng.permutation(len(rows))]
    rows.append((small.start_minute, small.service, "US", "app", 0, 0))
    rows.append((small.start_minute + n - 1, small.service, "US", "app", 0, 0))
    via_rows = replay_rows(rows)
    assert [i.to_dict() for i in via_rows] == [i.to_dict() for i in via_arrays]
    assert len(via_rows) == 1


def test_replay_arrays_validates_shapes(small) -> None:
    with pytest.raises(ValueError):
        replay_arrays("s", small.leaf_keys[:2], 0, small.reports)
    with pytest.raises(ValueError):
        replay_arrays("s", small.leaf_keys, 0, small.reports, small.reporters[:, :5])
