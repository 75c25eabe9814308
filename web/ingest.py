"""Report ingestion without Flask: validate, identify the reporter, write in one round trip.

Views parse the request, call `Validator.single` / `Validator.batch`, then
`web.report_store.ReportStore.write`;
`Invalid` carries the HTTP status, error code and field. No IP address leaves this module:
reporters and network prefixes are keyed hashes (HMAC-SHA256 with the server secret).
"""

from __future__ import annotations

import hmac
import json
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from detector.regions import GLOBAL, validate_region
from store.catalog import Catalog

MAX_BATCH = 1000
"""Most reports in one batch request."""

MAX_COMMENT = 280
"""Longest comment, in characters."""

MAX_REPORTER = 128
"""Longest partner reporter id, in characters."""

BACKDATE_SECONDS = 600
"""How far in the past a partner's `at` may lie."""

CLOCK_SKEW_SECONDS = 60
"""How far in the future an `at` may lie; such times are clamped to now."""

SINGLE_FIELDS = frozenset({"service", "problem", "region", "comment"})
PARTNER_FIELDS = SINGLE_FIELDS | {"reporter", "at"}
_V4_MAPPED = bytes(10) + b"\xff\xff"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # category Cc except \n and \t


class Invalid(ValueError):
    """Input that cannot be ingested: HTTP status, error code, message and field at fault."""

    def __init__(self, status: int, message: str, code: str = "invalid", field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.field = status, message, code, field

    def to_dict(self) -> dict[str, str]:
        """Return the `error` object of the JSON error body."""
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class Report(NamedTuple):
    """One validated report, ready to store: identities are keyed hashes, never IPs."""

    service: str
    problem: str
    region: str
    at: float
    reporter: str
    network: str
    comment: str = ""
    source: str = "api"

    @property
    def minute(self) -> int:
        return int(self.at // 60)


@dataclass(frozen=True)
class Sender:
    """Who sent a request: the inputs of the reporter identity and the defaults."""

    ip: str | None
    key_id: str | None = None
    default_region: str = GLOBAL
    source: str = "api"


@dataclass(frozen=True)
class Outcome:
    """How many reports were counted and how many were repeats within the dedup window."""

    accepted: int
    duplicates: int
    replayed: bool = False
    """True when an Idempotency-Key retry found every write already done."""


class Hasher:
    """Keyed hashes of reporters and network prefixes, one derived key per purpose."""

    def __init__(self, secret: str, ipv4_prefix: int = 24):
        self.ipv4_prefix = ipv4_prefix
        root = secret.encode()
        self._reporter = hmac.digest(root, b"outage/reporter/v1", "sha256")
        self._network = hmac.digest(root, b"outage/network/v1", "sha256")
        self._client = hmac.digest(root, b"outage/client/v1", "sha256")

    def anonymous(self, ip: str | None) -> str:
        """Identify an anonymous reporter by its network (see `reporter_network`).

        Not by IP and User-Agent: a client that rotates its User-Agent, or its addresses
        within one /24 or /64, is still one reporter for dedup and rate limits.
        """
        msg = f"a\0{reporter_network(ip, self.ipv4_prefix)}".encode()
        return hmac.digest(self._reporter, msg, "sha256").hex()[:24]

    def partner(self, key_id: str, reporter: str) -> str:
        """Identify a partner's reporter by API key id and the partner's opaque user id."""
        msg = f"p\0{key_id}\0{reporter}".encode()
        return hmac.digest(self._reporter, msg, "sha256").hex()[:24]

    def network(self, ip: str | None) -> str:
        """Hash the client's network prefix (/24 for IPv4, /48 for IPv6)."""
        return hmac.digest(self._network, network_prefix(ip).encode(), "sha256").hex()[:16]

    def client(self, ip: str | None) -> str:
        """Hash a client's network for rate-limit keys (limiter storage holds no IP either)."""
        msg = reporter_network(ip, self.ipv4_prefix).encode()
        return hmac.digest(self._client, msg, "sha256").hex()[:20]


def reporter_network(ip: str | None, ipv4_prefix: int = 24) -> str:
    """Return the network that identifies an anonymous reporter: the IPv4 /24 (or the
    address, with `ipv4_prefix=32`), the IPv6 /64 (one subscriber's usual allocation)."""
    return _network(ip, ipv4_prefix, 64)


def network_prefix(ip: str | None) -> str:
    """Return the /24 (IPv4) or /48 (IPv6) network of an address, `-` if it is not one."""
    return _network(ip, 24, 48)


def _network(ip: str | None, v4_bits: int, v6_bits: int) -> str:
    """Return the address's network of that many bits (a multiple of 8), or `-`."""
    # socket.inet_pton is about 20x cheaper than the ipaddress module on this hot path.
    try:
        packed = socket.inet_pton(socket.AF_INET, ip or "")
    except OSError:
        try:
            packed = socket.inet_pton(socket.AF_INET6, ip or "")
        except OSError:
            return "-"
        if packed[:12] != _V4_MAPPED:
            keep = v6_bits // 8
            return (
                f"{socket.inet_ntop(socket.AF_INET6, packed[:keep] + bytes(16 - keep))}/{v6_bits}"
            )
        packed = packed[12:]
    keep = v4_bits // 8
    return f"{socket.inet_ntop(socket.AF_INET, packed[:keep] + bytes(4 - keep))}/{v4_bits}"


def parse_json(data: bytes) -> object:
    """Decode a request body, turning every decoding failure into a 400."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise Invalid(400, "the body is not valid JSON", "malformed_json") from None


def _text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise Invalid(422, f"{name} must be a string", field=name)
    text = value.strip()
    if len(text) > limit:
        raise Invalid(422, f"{name} is longer than {limit} characters", field=name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(422, f"{name} is not valid Unicode text", field=name) from None
    if _CONTROL.search(text):
        raise Invalid(422, f"{name} contains control characters", field=name)
    return text


def clean_comment(value: object) -> str:
    """Return the trimmed comment (<= 280 characters, no control characters), or raise."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _text(value, "comment", MAX_COMMENT)


def clean_region(value: object, default: str = GLOBAL) -> str:
    """Return the normalised ISO 3166 code, `*` for unknown, or raise."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise Invalid(422, "region must be a string such as 'US' or 'US-CA'", field="region")
    if value == GLOBAL:
        return GLOBAL
    if not value.isascii():  # str.upper() would turn "ﬁ" into "FI" and "ß" into "SS"
        raise Invalid(422, "region must be an ASCII ISO 3166 code", field="region")
    try:
        return validate_region(value if len(value) <= 8 else "-")
    except ValueError:
        raise Invalid(
            422,
            f"unknown region {value[:16]!r}: use an ISO 3166-1 alpha-2 or "
            "ISO 3166-2 code such as 'US' or 'US-CA'",
            field="region",
        ) from None


def clean_at(value: object, now: float) -> float:
    """Return the report time in unix seconds: ISO 8601 with zone, in the last 10 minutes."""
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(422, "at must be an ISO 8601 time string", field="at")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(422, "at is not an ISO 8601 time", field="at") from None
    if when.tzinfo is None:
        raise Invalid(422, "at needs a time zone, e.g. 2024-05-01T12:00:00Z", field="at")
    at = when.timestamp()
    if at < now - BACKDATE_SECONDS or at > now + CLOCK_SKEW_SECONDS:
        raise Invalid(
            422, f"at must lie within the last {BACKDATE_SECONDS // 60} minutes", field="at"
        )
    return min(at, now)


class Validator:
    """Validate report bodies against the catalog and attach reporter identities."""

    def __init__(self, catalog: Catalog, hasher: Hasher):
        self.catalog, self.hasher = catalog, hasher
        self.problems = {s.slug: frozenset(s.problem_slugs) for s in catalog.services}

    def item(
        self, item: object, sender: Sender, now: float, anon: tuple[str, str] | None = None
    ) -> Report:
        """Validate one report object."""
        if type(item) is not dict:
            raise Invalid(422, "a report must be a JSON object")
        allowed = PARTNER_FIELDS if sender.key_id else SINGLE_FIELDS
        if not item.keys() <= allowed:
            extra = sorted(str(k) for k in item.keys() - allowed)[0][:40]
            hint = " (needs an API key)" if extra in PARTNER_FIELDS else ""
            raise Invalid(422, f"unknown field {extra!r}{hint}", field=extra)
        slug = item.get("service")
        if type(slug) is not str:
            raise Invalid(422, "service must be a string (a service slug)", field="service")
        problems = self.problems.get(slug)
        if problems is None:
            raise Invalid(404, f"unknown service {slug[:64]!r}", "not_found", field="service")
        problem = item.get("problem")
        if type(problem) is not str or problem not in problems:
            choices = ", ".join(self.catalog.get(slug).problem_slugs)  # type: ignore[union-attr]
            raise Invalid(422, f"problem must be one of {choices}", field="problem")
        region = item.get("region")
        region = (
            sender.default_region if region is None else clean_region(region, sender.default_region)
        )
        comment = clean_comment(item.get("comment"))
        at = item.get("at")
        at = now if at is None else clean_at(at, now)
        reporter_id = item.get("reporter")
        if sender.key_id and reporter_id is not None:
            if type(reporter_id) is int:
                reporter_id = str(reporter_id)
            reporter_id = _text(reporter_id, "reporter", MAX_REPORTER)
            if not reporter_id:
                raise Invalid(422, "reporter must not be empty", field="reporter")
            reporter = self.hasher.partner(sender.key_id, reporter_id)
            # A key is one source: its reporters are distinct people for dedup, but all of
            # them are one network for the diversity guard, so no key raises an incident alone.
            network = anon[1] if anon else self.identify(sender)[1]
        else:
            reporter, network = anon or self.identify(sender)
        return Report(slug, problem, region, at, reporter, network, comment, sender.source)

    def identify(self, sender: Sender) -> tuple[str, str]:
        """Return (reporter hash, network hash) of a request without a partner reporter id."""
        if sender.key_id:
            # Without `reporter`, every item of a key is one reporter: safe, not generous.
            ident = self.hasher.partner(sender.key_id, "")
            return ident, ident
        return self.hasher.anonymous(sender.ip), self.hasher.network(sender.ip)

    def single(self, body: object, sender: Sender, now: float | None = None) -> Report:
        """Validate a single-report body."""
        return self.item(body, sender, time.time() if now is None else now)

    def batch(
        self, body: Mapping[str, object], sender: Sender, now: float | None = None
    ) -> tuple[list[Report], list[int], list[dict[str, object]]]:
        """Validate a `{"reports": [...]}` body: good reports and their indices, and the
        rejected ones by index."""
        if body.keys() != {"reports"}:
            extra = sorted(str(k) for k in body.keys() - {"reports"})[0][:40]
            raise Invalid(422, f"unknown field {extra!r} next to reports", field=extra)
        items = body["reports"]
        if not isinstance(items, list) or not items:
            raise Invalid(
                422, "reports must be a non-empty list of report objects", field="reports"
            )
        if len(items) > MAX_BATCH:
            raise Invalid(
                413, f"at most {MAX_BATCH} reports per batch", "too_large", field="reports"
            )
        now = time.time() if now is None else now
        anon = self.identify(sender)
        good, positions, rejected = [], [], []
        for index, item in enumerate(items):
            try:
                good.append(self.item(item, sender, now, anon))
                positions.append(index)
            except Invalid as exc:
                rejected.append({"index": index, "error": exc.to_dict()})
        return good, positions, rejected
