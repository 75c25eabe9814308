"""Fit count noise from squared residuals: Var = phi f (linear) or phi_q f + c2 f^2.

Moments are sums over the points of a series, so the fit is cheap to keep decayed over a
stream (the one-minute noise) as well as to compute from a window of history (the baseline).
"""

from __future__ import annotations

import numpy as np

ROBUST_PASSES = 3
"""Clip-and-refit passes of the dispersion fit (each clips bursts at the previous fit)."""

MOMENTS = 6
"""Moments of squared residuals kept per series: s11, s12, s22, b1, b2 (weighted sums of
f^2, f^3, f^4, f r^2, f^2 r^2 with weights 1 / (f + 1)^2) and the number of points."""


def residual_moments(
    obs: np.ndarray, fit: np.ndarray, ok: np.ndarray, inflate: float = 1.0
) -> np.ndarray:
    """Return the MOMENTS sums of squared residuals (obs - fit)^2 * inflate over axis 1.

    obs, fit: counts and their expectations, shape (n, L); ok: valid points, shape (L,) or
    (n, L). Returns shape (n, MOMENTS).
    """
    ok = np.broadcast_to(ok, obs.shape)
    wf = ok * fit / (fit + 1.0) ** 2
    wf2 = wf * fit
    wf3 = wf2 * fit
    wr = wf * (obs - fit) ** 2 * inflate
    return np.stack(
        [wf2.sum(1), wf3.sum(1), (wf3 * fit).sum(1), wr.sum(1), (wr * fit).sum(1), ok.sum(1)],
        axis=1,
    )


def solve_dispersion(
    mom: np.ndarray,
    level_floor: float,
    cap: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit E[(y - f)^2] two ways from residual moments: phi_lin * f, and phi_q * f + c2 * f^2.

    The linear fit puts all extra variance on short windows (conservative there); the
    quadratic fit carries the level noise that dominates long windows. Each estimate is
    raised to an upper confidence bound (1 + 2 / sqrt(points)). mom: shape (n, MOMENTS).
    Returns four arrays (n,): phi_lin, phi_q, c2 and phi_free, the linear coefficient of the
    two-parameter fit before the level-noise floor on c2 lowers it (so that phi_free +
    c2 f never understates the data's short-window noise).
    """
    s11, s12, s22, b1, b2, points = mom.T
    tiny = 1e-300
    phi_lin = b1 / np.maximum(s11, tiny)
    det = s11 * s22 - s12 * s12
    good = det > 1e-9 * np.maximum(s11 * s22, tiny)
    safe = np.where(good, det, 1.0)
    phi_q = np.where(good, (b1 * s22 - b2 * s12) / safe, 1.0)
    c2 = np.where(good, (s11 * b2 - s12 * b1) / safe, 0.0)
    phi_free = np.where(good, phi_q, phi_lin)
    c2_floor = level_floor**2
    low_c = c2 < c2_floor
    phi_q = np.where(low_c, (b1 - c2_floor * s12) / np.maximum(s11, tiny), phi_q)
    c2 = np.maximum(c2, c2_floor)
    low_phi = phi_q < 1.0
    c2 = np.where(low_phi, np.maximum((b2 - s12) / np.maximum(s22, tiny), c2_floor), c2)
    ucb = 1.0 + 2.0 / np.sqrt(np.maximum(points, 1.0))
    return (
        np.clip(phi_lin * ucb, 1.0, cap),
        np.clip(phi_q, 1.0, cap),
        np.clip(c2 * ucb, c2_floor, 4.0),
        np.clip(phi_free * ucb, 1.0, cap),
    )
