"""The client's country: offline GeoIP (geoip2fast's shipped data), else Accept-Language."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from detector.regions import is_valid_region

log = logging.getLogger("outage.web")

DATA_FILE = "geoip2fast-ipv6.dat.gz"
"""The geoip2fast data file shipped in its wheel that covers IPv4 and IPv6 (about 50 MB RAM)."""

_lock = threading.Lock()
_db: object | None = None
_failed = False


def _database():
    """Load the GeoIP data once per process (about 0.1 s), on first use."""
    global _db, _failed
    if _db is not None or _failed:
        return _db
    with _lock:
        if _db is None and not _failed:
            try:
                from geoip2fast import GeoIP2Fast

                _db = GeoIP2Fast(verbose=False, geoip2fast_data_file=DATA_FILE)
            except Exception:  # a missing or broken data file must not break reporting
                log.exception("GeoIP data could not be loaded; using Accept-Language only")
                _failed = True
    return _db


def country_from_ip(ip: str | None) -> str | None:
    """Return the ISO 3166-1 alpha-2 country of a public IP address, or None."""
    db = _database()
    if not ip or db is None:
        return None
    try:
        code = db.lookup(ip).country_code
    except Exception:  # geoip2fast raises on some malformed input; unknown is the answer
        return None
    return code if isinstance(code, str) and is_valid_region(code) and len(code) == 2 else None


def country_from_languages(languages: Iterable[str]) -> str | None:
    """Return the country of the first `ll-CC` tag of Accept-Language, e.g. de-CH -> CH."""
    for tag in languages:
        parts = tag.replace("_", "-").split("-")
        for part in parts[1:]:
            if len(part) == 2 and part.isalpha() and is_valid_region(part.upper()):
                return part.upper()
    return None


def client_country(ip: str | None, languages: Iterable[str] = ()) -> str | None:
    """Return the client's country from its IP, else from its language preferences."""
    return country_from_ip(ip) or country_from_languages(languages)
