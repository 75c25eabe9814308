"""Append-only index of a service's series and the roll-up of leaf counts into them.

A leaf (region, problem) rolls up into {region and its parents} x {problem, "*"}.
"""

from __future__ import annotations

import json

import numpy as np

from detector.regions import GLOBAL, parent_regions, region_depth, validate_region

Key = tuple[str, str]
ALL: Key = (GLOBAL, GLOBAL)


def normalise_leaf(key: Key) -> Key:
    """Validate a (region, problem) leaf and return it normalised; raise ValueError."""
    if not isinstance(key, tuple) or len(key) != 2:
        raise ValueError(f"a series key is a (region, problem) tuple, got {key!r}")
    region, problem = key
    if not isinstance(problem, str) or not problem.strip():
        raise ValueError(f"problem must be a non-empty string, got {problem!r}")
    region = GLOBAL if region == GLOBAL else validate_region(region)
    return region, problem.strip()


def expand_leaf(key: Key) -> list[Key]:
    """List every series a leaf rolls up into, the leaf itself first."""
    region, problem = key
    regions = [region] + parent_regions(region)
    problems = [problem] if problem == GLOBAL else [problem, GLOBAL]
    return [(r, p) for r in regions for p in problems]


def donor_of(key: Key) -> Key | None:
    """Return the series whose shape a sparse series borrows, or None for global."""
    region, problem = key
    if problem != GLOBAL:
        return (region, GLOBAL)
    if region != GLOBAL:
        return (parent_regions(region)[0], GLOBAL)
    return None


def depth_of(key: Key) -> int:
    """Return the scope depth: 0 global/all, +1 per region level, +1 for a problem."""
    return region_depth(key[0]) + (key[1] != GLOBAL)


class SeriesIndex:
    """Append-only mapping of series and leaf keys to row numbers."""

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.leaves: list[Key] = []
        self._pos: dict[Key, int] = {}
        self._leaf_pos: dict[Key, int] = {}
        self._pair_leaf: list[int] = []
        self._pair_series: list[int] = []
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self.add_series(ALL)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def known_leaves(self) -> dict[Key, int]:
        """Leaf keys seen so far (as given and normalised) mapped to leaf numbers; read only."""
        return self._leaf_pos

    def position(self, key: Key) -> int | None:
        """Return the row of a series, or None if it does not exist."""
        return self._pos.get(key)

    def add_series(self, key: Key) -> int:
        """Return the row of a series, appending it if new."""
        pos = self._pos.get(key)
        if pos is None:
            pos = len(self.keys)
            self.keys.append(key)
            self._pos[key] = pos
        return pos

    def check_leaf(self, key: Key) -> Key:
        """Return the normalised leaf key, validating it if it is new; raise ValueError."""
        pos = self._leaf_pos.get(key)
        return self.leaves[pos] if pos is not None else normalise_leaf(key)

    def leaf_position(self, key: Key) -> int:
        """Return the leaf number of key, registering the leaf and its series if new."""
        pos = self._leaf_pos.get(key)
        if pos is not None:
            return pos
        norm = normalise_leaf(key)
        pos = self._leaf_pos.get(norm)
        if pos is None:
            pos = len(self.leaves)
            self.leaves.append(norm)
            self._leaf_pos[norm] = pos
            for target in expand_leaf(norm):
                self._pair_leaf.append(pos)
                self._pair_series.append(self.add_series(target))
            self._arrays = None
        self._leaf_pos[key] = pos
        return pos

    def rollup(self, leaf_values: np.ndarray) -> np.ndarray:
        """Sum leaf values (shape (n_leaves,)) into series values (shape (n_series,))."""
        if self._arrays is None:
            self._arrays = (
                np.asarray(self._pair_leaf, dtype=np.int64),
                np.asarray(self._pair_series, dtype=np.int64),
            )
        leaf, series = self._arrays
        return np.bincount(series, weights=leaf_values[leaf], minlength=len(self.keys))

    def donors(self) -> np.ndarray:
        """Return each series' donor row (-1 for none), shape (n_series,)."""
        out = np.full(len(self.keys), -1, dtype=np.int64)
        for i, key in enumerate(self.keys):
            donor = donor_of(key)
            if donor is not None:
                out[i] = self.add_series(donor) if donor in self._pos else -1
        return out

    def mix_parents(self) -> np.ndarray:
        """Return the row of (region, "*") for each problem series, -1 otherwise, shape (n,)."""
        out = np.full(len(self.keys), -1, dtype=np.int64)
        for i, (region, problem) in enumerate(self.keys):
            if problem != GLOBAL:
                out[i] = self._pos.get((region, GLOBAL), -1)
        return out

    def depths(self) -> np.ndarray:
        """Return each series' scope depth, shape (n_series,)."""
        return np.asarray([depth_of(k) for k in self.keys], dtype=np.int64)

    def to_json(self) -> bytes:
        """Serialise the index (series and leaves in order)."""
        return json.dumps({"keys": self.keys, "leaves": self.leaves}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SeriesIndex:
        """Restore an index serialised by to_json."""
        raw = json.loads(data)
        index = cls()
        for leaf in raw["leaves"]:
            index.leaf_position((leaf[0], leaf[1]))
        for key in raw["keys"]:
            index.add_series((key[0], key[1]))
        if [list(k) for k in index.keys] != raw["keys"]:
            raise ValueError("corrupt series index: order does not replay")
        return index
