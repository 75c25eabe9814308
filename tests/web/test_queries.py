"""The read side: scope sums inside Redis agree with the plain Python sums."""

from __future__ import annotations

import pytest
import redis

from store import keys
from tests.workers.synth import merge, quiet_rows, write_rows
from web import queries

LEAVES = {
    ("US-CA", "app"): 2.0,
    ("US-NY", "login"): 1.0,
    ("US", "app"): 0.5,
    ("GB", "app"): 1.0,
    ("GB-ENG", "website"): 0.5,
    ("*", "app"): 0.3,
}


@pytest.mark.parametrize(
    "region,problem",
    [
        (None, None),
        ("US", None),
        ("US-CA", None),
        ("GB", "app"),
        (None, "login"),
        ("US", "app"),
        ("FR", None),
        (None, "nope"),
    ],
)
def test_scope_sums_match_python(redis_conn: redis.Redis, region, problem) -> None:
    rows = merge(quiet_rows("x", 1000, 300, LEAVES, seed=5))
    write_rows(redis_conn, rows)
    redis_conn.hset(keys.minute_counts("x", 1001), "r|US-TX|app", 4)  # raw only
    counted, raw = queries.scope_series(redis_conn, "x", region, problem, 995, 1305)
    leaves = queries.read_leaves(redis_conn, "x", 995, 1305)
    want_counted, want_raw = queries.scope_counts(leaves, region, problem)
    assert counted.tolist() == want_counted.tolist() and raw.tolist() == want_raw.tolist()
    assert (raw >= counted).all()


@pytest.mark.parametrize(
    "leaf,level,target",
    [
        ("US-CA", "country", "US"),
        ("US", "country", "US"),
        ("*", "country", None),
        ("US-CA", "US", "US-CA"),
        ("US", "US", None),
        ("GB-ENG", "US", None),
    ],
)
def test_map_regions(leaf: str, level: str, target) -> None:
    assert queries.map_region(leaf, level) == target
