"""Validate ISO 3166 region codes and list their parents ("*" is global)."""

from __future__ import annotations

from functools import lru_cache

import pycountry

GLOBAL = "*"


@lru_cache(maxsize=4096)
def validate_region(code: str) -> str:
    """Return the normalised upper-case ISO 3166-1 alpha-2 or ISO 3166-2 code, or raise."""
    if not isinstance(code, str):
        raise ValueError(f"region must be a string, got {type(code).__name__}")
    norm = code.strip().upper()
    if len(norm) == 2 and norm.isalpha():
        if pycountry.countries.get(alpha_2=norm) is None:
            raise ValueError(f"unknown ISO 3166-1 country code: {code!r}")
        return norm
    if len(norm) > 3 and norm[2] == "-" and norm[:2].isalpha():
        if pycountry.countries.get(alpha_2=norm[:2]) is None:
            raise ValueError(f"unknown country in ISO 3166-2 code: {code!r}")
        if pycountry.subdivisions.get(code=norm) is None:
            raise ValueError(f"unknown ISO 3166-2 subdivision code: {code!r}")
        return norm
    raise ValueError(f"not an ISO 3166 region code: {code!r}")


def is_valid_region(code: str) -> bool:
    """Tell whether code is a valid ISO 3166-1 alpha-2 or ISO 3166-2 code."""
    try:
        validate_region(code)
    except ValueError:
        return False
    return True


def parent_regions(code: str) -> list[str]:
    """List the ancestors of a region, nearest first, ending with "*" ("US-CA" -> ["US", "*"])."""
    if code == GLOBAL:
        return []
    norm = validate_region(code)
    if "-" in norm:
        return [norm[:2], GLOBAL]
    return [GLOBAL]


def region_depth(code: str) -> int:
    """Return 0 for global, 1 for a country, 2 for a subdivision."""
    if code == GLOBAL:
        return 0
    return 2 if "-" in code else 1
