"""web.ingest without Flask: identities, field cleaning, the validator."""

from __future__ import annotations

import pytest

from store.catalog import load_catalog
from store.config import DEFAULT_CATALOG
from web.ingest import (
    Hasher,
    Invalid,
    Sender,
    Validator,
    clean_at,
    clean_comment,
    clean_region,
    network_prefix,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "ip,prefix",
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("::ffff:203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:abcd:12::7", "2001:db8:abcd::/48"),
        (None, "-"),
        ("", "-"),
        ("not-an-ip", "-"),
    ],
)
def test_network_prefix(ip, prefix) -> None:
    assert network_prefix(ip) == prefix


def test_hashes_are_keyed_stable_and_never_the_input() -> None:
    a, b = Hasher("secret-one-" + "x" * 20), Hasher("secret-two-" + "x" * 20)
    assert a.anonymous("203.0.113.7") == a.anonymous("203.0.113.200")  # one /24, one reporter
    assert a.anonymous("203.0.113.7") != b.anonymous("203.0.113.7")
    assert a.anonymous("203.0.113.7") != a.anonymous("203.0.114.7")
    v4 = Hasher("secret-one-" + "x" * 20, ipv4_prefix=32)
    assert v4.anonymous("203.0.113.7") != v4.anonymous("203.0.113.200")
    assert a.network("203.0.113.7") == a.network("203.0.113.200")  # same /24
    assert a.network("203.0.113.7") != a.network("203.0.114.7")
    assert a.partner("k1", "u") != a.partner("k2", "u")
    assert "203" not in a.client("203.0.113.7") and len(a.anonymous(None)) == 24


def test_comment_cleaning() -> None:
    assert clean_comment(None) == ""
    assert clean_comment("  line one\r\nline two\t!  ") == "line one\nline two\t!"
    family = "👨\u200d👩\u200d👧 still down"
    assert clean_comment(family) == family  # zero-width joiners are not control characters
    assert clean_comment("é" * 280) == "é" * 280
    for bad in ("é" * 281, "a\x00b", "a\x1bb", "a\x85b", 5, ["x"]):
        with pytest.raises(Invalid) as exc:
            clean_comment(bad)
        assert exc.value.field == "comment" and exc.value.status == 422


def test_region_cleaning() -> None:
    assert clean_region("us-ca") == "US-CA"
    assert clean_region(" gb ") == "GB"
    assert clean_region(None, "FR") == "FR" and clean_region("", "FR") == "FR"
    assert clean_region("*") == "*"
    for bad in ("XX", "US-ZZ", "USA", 840, "U", "US" * 10):
        with pytest.raises(Invalid):
            clean_region(bad)


def test_at_window() -> None:
    assert clean_at("2023-11-14T22:13:20Z", NOW) == NOW
    assert clean_at("2023-11-14T23:13:20+01:00", NOW) == NOW
    assert clean_at("2023-11-14T22:05:00Z", NOW) == NOW - 500
    assert clean_at("2023-11-14T22:13:50Z", NOW) == NOW  # small clock skew is clamped
    for bad in (
        "2023-11-14T22:00:00Z",
        "2023-11-14T22:20:00Z",
        "2023-11-14T22:13:20",
        "yesterday",
        "",
        "2023-11-14T22:13:20Z" * 3,
    ):
        with pytest.raises(Invalid) as exc:
            clean_at(bad, NOW)
        assert exc.value.field == "at"


def test_validator_single_and_batch() -> None:
    v = Validator(load_catalog(DEFAULT_CATALOG), Hasher("s" * 32))
    anon = Sender(ip="203.0.113.7", default_region="DE")
    report = v.single({"service": "x", "problem": "app"}, anon, NOW)
    assert (report.service, report.problem, report.region, report.minute) == (
        "x",
        "app",
        "DE",
        int(NOW // 60),
    )
    assert report.reporter == v.hasher.anonymous("203.0.113.7")
    partner = Sender(ip="198.51.100.1", key_id="acme", source="key:acme")
    good, positions, rejected = v.batch(
        {
            "reports": [
                {"service": "x", "problem": "app", "reporter": "u1"},
                {"service": "x", "problem": "app"},
                {"service": "x", "problem": "bogus"},
            ]
        },
        partner,
        NOW,
    )
    assert [r.reporter for r in good] == [
        v.hasher.partner("acme", "u1"),
        v.hasher.partner("acme", ""),
    ]
    assert positions == [0, 1] and good[0].source == "key:acme"
    # A key is one network for the diversity guard, whatever reporters it names.
    assert good[0].network == good[1].network == v.hasher.partner("acme", "")
    assert rejected == [
        {
            "index": 2,
            "error": {
                "code": "invalid",
                "field": "problem",
                "message": rejected[0]["error"]["message"],
            },
        }
    ]
    assert "app" in rejected[0]["error"]["message"]
