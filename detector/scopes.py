"""Which series lie within an incident's scope, which of them are affected, and whether
the scope is back to normal."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from detector.baseline import Baseline
from detector.incidents import Incident, Share
from detector.nbstats import nb_quantile, nb_sf
from detector.params import Params
from detector.regions import GLOBAL, parent_regions
from detector.series import Key
from detector.state import MinuteState
from detector.step import MinuteTests


def within(region: str, scope: str) -> bool:
    """Tell whether a region is the scope region or lies inside it."""
    return scope == GLOBAL or region == scope or scope in parent_regions(region)


def contains(scope: Key, key: Key) -> bool:
    """Tell whether series `key` is `scope` or one of its descendants (region and problem)."""
    return within(key[0], scope[0]) and (scope[1] == GLOBAL or key[1] == scope[1])


@lru_cache(maxsize=256)
def child_rows(keys: tuple[Key, ...], scope: Key) -> tuple[list[int], list[int]]:
    """Rows of the regions within scope (same problem) and of the problems of its region."""
    region, problem = scope
    regions = [
        i for i, (r, q) in enumerate(keys) if q == problem and r != GLOBAL and within(r, region)
    ]
    problems = [i for i, (r, q) in enumerate(keys) if r == region and q != GLOBAL]
    return regions, problems


def attribute(
    keys: list[Key],
    scope: Key,
    obs: np.ndarray,
    exp: np.ndarray,
    base: Baseline,
    params: Params,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Share, ...], tuple[Share, ...]]:
    """List affected regions and problems by excess since onset, most affected first.

    obs, exp: counted reporters since onset per series, shape (n,).
    """
    region, problem = scope
    region_rows, problem_rows = child_rows(tuple(keys), scope)
    rows_all = np.asarray(region_rows + problem_rows, dtype=np.int64)
    exp = np.maximum(exp, 1e-9)
    p = np.ones(len(keys))
    if rows_all.size:
        p[rows_all] = nb_sf(obs[rows_all], exp[rows_all], base.variance(exp[rows_all], rows_all))
    scope_row = keys.index(scope)
    scope_excess = max(float(obs[scope_row] - exp[scope_row]), 0.0)
    hit = (
        (obs >= params.attribution_min_ratio * exp)
        & (obs - exp >= params.min_excess)
        & (obs - exp >= params.attribution_min_share * scope_excess)
        & (p <= params.attribution_alpha)
    )
    out: list[Any] = []
    for rows, pos in ((region_rows, 0), (problem_rows, 1)):
        rows = sorted(rows, key=lambda i: (-(obs[i] - exp[i]), keys[i]))
        names = tuple(keys[i][pos] for i in rows if hit[i])[: params.max_listed]
        shares = tuple(
            Share(
                keys[i][pos],
                float(obs[i]),
                float(exp[i]),
                float(obs[i] / max(obs[scope_row], 1e-9)),
                float(exp[i] / max(exp[scope_row], 1e-9)),
            )
            for i in rows[: params.max_listed]
        )
        out.extend([names, shares])
    return out[0], out[2], out[1], out[3]


def affected_rows(keys: list[Key], inc: Incident) -> list[int]:
    """Rows of the incident's scope and of the children that attribution lists as affected."""
    scope = (inc.region, inc.problem)
    region_rows, problem_rows = child_rows(tuple(keys), scope)
    regions, problems = set(inc.regions), set(inc.problems)
    return [
        keys.index(scope),
        *(i for i in region_rows if keys[i][0] in regions),
        *(i for i in problem_rows if keys[i][1] in problems),
    ]


def longest_window(params: Params) -> int:
    """Return the position of the longest window test in params.windows."""
    return int(np.argmax(params.windows))


def upper_band(expected: float, variance: float, params: Params) -> float:
    """Return the upper edge of the normal band of a window count: the larger of its
    close_quantile under the negative binomial and close_ratio x expected."""
    quantile = float(nb_quantile(params.close_quantile, np.asarray(expected), np.asarray(variance)))
    return max(quantile, params.close_ratio * expected)


def settled(
    tests: MinuteTests,
    state: MinuteState,
    base: Baseline,
    keys: list[Key],
    inc: Incident,
    params: Params,
) -> bool:
    """Tell whether this minute counts towards closing the incident: the scope's count over
    the last close_window minutes is inside its normal band, and no window test of at most
    that length alarms on the scope or on an affected child (such a test only sees minutes
    after the outage's last ones have left it: new evidence).

    Alarms elsewhere in the service, longer windows that still hold the outage's last
    minutes and what a CUSUM still remembers from the peak do not count.
    """
    row, t = keys.index((inc.region, inc.problem)), tests.minute
    w = min(params.close_window, max(params.windows))
    obs = float(state.recent("ring_x", row, t - w + 1, t).sum())
    exp = float(state.recent("ring_mu", row, t - w + 1, t).sum())
    if obs > upper_band(exp, float(base.variance(np.asarray(exp), row, minutes=w)), params):
        return False
    rows = np.asarray(affected_rows(keys, inc), dtype=np.int64)
    short = np.flatnonzero(np.asarray(params.windows) <= w)
    return not tests.window_alarm[np.ix_(rows, short)].any()


def in_band(tests: MinuteTests, keys: list[Key], inc: Incident, params: Params) -> bool:
    """Tell whether the scope's count over the longest window (15 minutes) is inside its
    normal band (a mild rise too small for the short window's band still shows there)."""
    row, k = keys.index((inc.region, inc.problem)), longest_window(params)
    band = upper_band(float(tests.window_exp[row, k]), float(tests.window_var[row, k]), params)
    return bool(tests.window_obs[row, k] <= band)
