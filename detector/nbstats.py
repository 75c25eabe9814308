"""Negative-binomial tail probabilities, quantiles and CUSUM steps, vectorised over series.

Counts in a window are modelled as NB with mean m and variance
v = max(phi*m, phi_q*m + c2*m^2): Poisson overdispersion plus a common level noise of
coefficient of variation sqrt(c2), never below the purely linear fit phi*m.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import special, stats

_MIN_EXTRA = 1e-9
"""Relative extra variance below which the NB is treated as Poisson."""

_POISSON_EXTRA = 1e-6
"""Dispersion - 1 below which the CUSUM is treated as Poisson (tilt 1)."""


def nb_variance(mean: np.ndarray, phi: np.ndarray, phi_q: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Return the window variance max(phi*m, phi_q*m + c2*m^2) (counts^2, shape of mean)."""
    mean = np.asarray(mean, dtype=float)
    return np.maximum(phi * mean, phi_q * mean + c2 * mean * mean)


def nb_size_prob(mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return scipy's (n, p) of the NB with this mean and variance (var > mean)."""
    mean = np.asarray(mean, dtype=float)
    extra = np.maximum(np.asarray(var, dtype=float) - mean, _MIN_EXTRA * mean)
    n = mean * mean / extra
    p = n / (n + mean)
    return n, p


def nb_sf(count: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Return P(X >= count) for X ~ NB(mean, var), elementwise; 1 where count <= 0."""
    count, mean, var = np.broadcast_arrays(
        np.asarray(count, dtype=float),
        np.maximum(np.asarray(mean, dtype=float), 1e-300),
        np.asarray(var, dtype=float),
    )
    extra = np.maximum(var - mean, _MIN_EXTRA * mean)
    n = mean * mean / extra
    q = mean / (n + mean)  # 1 - p, computed directly to keep tiny tails accurate
    pos = count > 0
    if pos.all():
        return special.betainc(count, n, q)
    out = np.ones(count.shape)
    out[pos] = special.betainc(count[pos], n[pos], q[pos])
    return out


def nb_cdf(count: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Return P(X <= count) for X ~ NB(mean, var), elementwise."""
    return 1.0 - nb_sf(np.asarray(count, dtype=float) + 1.0, mean, var)


def nb_quantile(q: float, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Return the q-quantile of NB(mean, var), elementwise (counts)."""
    mean = np.asarray(mean, dtype=float)
    out = np.zeros(mean.shape)
    pos = mean > 0
    if pos.any():
        n, p = nb_size_prob(mean[pos], np.asarray(var, dtype=float)[pos])
        out[pos] = stats.nbinom.ppf(q, n, p)
    return out


def cusum_tilt(dispersion: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """Return theta > 0 with E[exp(theta (x log rho - (rho - 1) m))] = 1 under the NB.

    dispersion: variance / mean (>= 1) of per-minute counts, shape (n,); ratios: rho,
    shape (k,). Scaling the Poisson CUSUM score by theta makes its exponential a
    martingale under NB counts, so ARL0 >= exp(h) holds whatever the mean; theta = 1 for
    Poisson and shrinks as overdispersion grows. Returns shape (n, k).
    """
    phi = np.maximum(np.asarray(dispersion, dtype=float), 1.0)[:, None]
    rho = np.asarray(ratios, dtype=float)[None, :]
    phi, rho = np.broadcast_arrays(phi, rho)
    out = np.ones(phi.shape)
    nb = phi - 1.0 > _POISSON_EXTRA
    if not nb.any():
        return out
    f, r = phi[nb], rho[nb]
    q = (f - 1.0) / f
    log_r = np.log(r)

    def excess(theta: np.ndarray) -> np.ndarray:
        # log E[exp(theta * score)] per unit mean; 0 at the root we want
        return (-np.log(f) - np.log1p(-q * np.exp(theta * log_r))) / (f - 1.0) - theta * (r - 1.0)

    hi = -np.log(q) / log_r * (1.0 - 1e-12)
    lo = np.zeros_like(hi)
    # the root lies where excess turns positive, between its minimum and the MGF pole
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = (excess(mid) < 0.0) | (mid < 1e-12)
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    out[nb] = lo
    return out


class TiltTable:
    """cusum_tilt on a log grid of dispersions, interpolated: the tilt of every series at
    every minute's expected rate, at the cost of one interpolation per minute."""

    def __init__(self, ratios: np.ndarray, max_dispersion: float = 1e6, size: int = 600) -> None:
        self.log_grid = np.linspace(0.0, np.log(max_dispersion), size)
        self.table = cusum_tilt(np.exp(self.log_grid), np.asarray(ratios, dtype=float))

    def __call__(self, dispersion: np.ndarray) -> np.ndarray:
        """Return the tilts (n, k) of dispersions (n,) (clipped to the grid)."""
        u = np.clip(np.log(np.maximum(dispersion, 1.0)), 0.0, self.log_grid[-1])
        step = self.log_grid[1]
        pos = u / step
        i = np.minimum(pos.astype(np.int64), len(self.log_grid) - 2)
        frac = (pos - i)[:, None]
        return (1.0 - frac) * self.table[i] + frac * self.table[i + 1]


@lru_cache(maxsize=8)
def tilt_table(ratios: tuple[float, ...]) -> TiltTable:
    """Return the (shared, read-only) TiltTable of these CUSUM ratios."""
    return TiltTable(np.asarray(ratios, dtype=float))


def cusum_step(
    score: np.ndarray, count: np.ndarray, mean: np.ndarray, tilt: np.ndarray, ratios: np.ndarray
) -> np.ndarray:
    """Return max(0, S + theta (x log rho - (rho - 1) m)), shape (n, k) like score and tilt.

    count, mean: per-minute observed and expected, shape (n,); ratios: rho, shape (k,).
    """
    rho = np.asarray(ratios, dtype=float)[None, :]
    llr = count[:, None] * np.log(rho) - (rho - 1.0) * mean[:, None]
    return np.maximum(0.0, score + tilt * llr)
