"""The mutable per-service arrays of the detector, growable and saved as npz bytes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from detector.dispersion import MOMENTS
from detector.params import Params
from detector.tails import TAIL_COLUMNS

_SERIES_ARRAYS: dict[str, tuple[Callable[[Params], tuple[int, ...]], type[np.float64]]] = {
    # name: (trailing shape factory, dtype)
    "ring": (lambda p: (3, p.recent_minutes), np.float64),
    "cusum": (lambda p: (len(p.cusum_ratios),), np.float64),
    "run_obs": (lambda p: (len(p.cusum_ratios),), np.float64),
    "run_exp": (lambda p: (len(p.cusum_ratios),), np.float64),
    "run_len": (lambda p: (len(p.cusum_ratios),), np.float64),
    "gap_deficit": (lambda p: (), np.float64),
    "credit": (lambda p: (), np.float64),
    "inc_obs": (lambda p: (), np.float64),
    "inc_exp": (lambda p: (), np.float64),
    "slot_counts": (lambda p: (), np.float64),
    "win": (lambda p: (3, len(p.windows)), np.float64),
    "minute_moments": (lambda p: (MOMENTS,), np.float64),
    "tail": (lambda p: (TAIL_COLUMNS,), np.float64),
}
"""Per-minute state with one row per series (the 'state' part)."""


class MinuteState:
    """Ring buffers, CUSUMs, gap credit and incident sums, one row per series."""

    def __init__(self, n: int, params: Params) -> None:
        self.params = params
        for name, (shape, dtype) in _SERIES_ARRAYS.items():
            setattr(self, name, np.zeros((n, *shape(params)), dtype=dtype))
        self.ring_prefix = np.full(params.recent_minutes, -1.0)
        self.first_minute: int | None = None
        self.last_minute: int | None = None
        self.slot: int | None = None
        self.slot_excluded = False
        self.gap_expected = 0.0
        self.credit_until = -1
        self.prefix_minute: int | None = None

    ring: np.ndarray
    """Per-minute counted reporters, expected and raw reports, shape (n, 3, recent_minutes)."""
    win: np.ndarray
    """Sliding sums of ring over each window, shape (n, 3, n_windows)."""
    cusum: np.ndarray
    run_obs: np.ndarray
    run_exp: np.ndarray
    run_len: np.ndarray
    """Minutes since each CUSUM last left zero, shape (n, n_ratios)."""
    gap_deficit: np.ndarray
    credit: np.ndarray
    inc_obs: np.ndarray
    inc_exp: np.ndarray
    slot_counts: np.ndarray
    minute_moments: np.ndarray
    """Decayed dispersion.residual_moments of one-minute counts, shape (n, MOMENTS)."""
    tail: np.ndarray
    """Evidence episode statistics of detector/tails.py, shape (n, TAIL_COLUMNS)."""

    def grow(self, n: int) -> None:
        """Append zero rows so that every per-series array has n rows."""
        for name in _SERIES_ARRAYS:
            arr = getattr(self, name)
            if arr.shape[0] < n:
                pad = np.zeros((n - arr.shape[0], *arr.shape[1:]), dtype=arr.dtype)
                setattr(self, name, np.concatenate([arr, pad]))

    @property
    def ring_x(self) -> np.ndarray:
        """Counted reporters per minute after backlog repayment, view (n, recent_minutes)."""
        return self.ring[:, 0, :]

    @property
    def ring_mu(self) -> np.ndarray:
        """Expected reporters per minute, view (n, recent_minutes)."""
        return self.ring[:, 1, :]

    @property
    def ring_raw(self) -> np.ndarray:
        """Raw reports per minute, view (n, recent_minutes)."""
        return self.ring[:, 2, :]

    def recent(self, name: str, rows: Any, start: int, end: int) -> np.ndarray:
        """Return ring values for minutes start..end inclusive (oldest first), any rows."""
        arr = getattr(self, name)
        minutes = np.arange(start, end + 1, dtype=np.int64)
        return arr[rows][..., minutes % self.params.recent_minutes]

    def meta(self) -> dict[str, Any]:
        """Return the scalar state as a JSON-ready dict."""
        return {
            "first_minute": self.first_minute,
            "last_minute": self.last_minute,
            "slot": self.slot,
            "slot_excluded": self.slot_excluded,
            "gap_expected": self.gap_expected,
            "credit_until": self.credit_until,
            "prefix_minute": self.prefix_minute,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Return every array of the state by name."""
        out = {name: getattr(self, name) for name in _SERIES_ARRAYS}
        out["ring_prefix"] = self.ring_prefix
        return out

    @classmethod
    def restore(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], params: Params
    ) -> MinuteState:
        """Rebuild a state from arrays() and meta()."""
        n = arrays["ring"].shape[0]
        state = cls(n, params)
        for name, value in arrays.items():
            if name in _SERIES_ARRAYS or name == "ring_prefix":
                setattr(state, name, np.array(value))
        for key, value in meta.items():
            setattr(state, key, value)
        return state


def pack(
    arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None, compress: bool = False
) -> bytes:
    """Serialise named arrays plus a JSON meta dict into npz bytes (no pickle)."""
    buf = io.BytesIO()
    payload: dict[str, Any] = dict(arrays)  # Any: np.savez's **kwds are typed loosely
    if meta is not None:
        payload["_meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    (np.savez_compressed if compress else np.savez)(buf, **payload)
    return buf.getvalue()


def unpack(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of pack: return (arrays, meta)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    raw = arrays.pop("_meta", None)
    meta = {} if raw is None else json.loads(raw.tobytes().decode())
    return arrays, meta
