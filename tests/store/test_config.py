from __future__ import annotations

from pathlib import Path

import pytest

from store.catalog import CatalogError, load_catalog, parse_catalog
from store.config import DEFAULT_CATALOG, ConfigError, load_settings


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({"OUTAGE_DATA_DIR": str(tmp_path)})
    assert s.redis_url is None and s.detect_interval == 15.0 and s.dedup_seconds == 900
    assert s.catalog_path == DEFAULT_CATALOG


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"OUTAGE_DATA_DIR": str(tmp_path)}).secret_key
    second = load_settings({"OUTAGE_DATA_DIR": str(tmp_path)}).secret_key
    assert len(first) == 64 and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_running_up_is_found_through_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "redis.url").write_text("redis://127.0.0.1:7777/0\n")
    s = load_settings({"OUTAGE_DATA_DIR": str(tmp_path)})
    assert s.redis_url == s.rq_redis_url == "redis://127.0.0.1:7777/0"


def test_api_keys(tmp_path: Path) -> None:
    s = load_settings(
        {"OUTAGE_DATA_DIR": str(tmp_path), "OUTAGE_API_KEYS": "acme:secret-one-123, plainsecret456"}
    )
    assert [k.id for k in s.api_keys][0] == "acme"
    assert s.api_keys[1].secret == "plainsecret456" and s.api_keys[1].id.startswith("k")


@pytest.mark.parametrize(
    "name,value",
    [
        ("OUTAGE_DETECT_INTERVAL", "soon"),
        ("OUTAGE_DETECT_INTERVAL", "-1"),
        ("OUTAGE_DEDUP_SECONDS", "0"),
        ("OUTAGE_APPENDFSYNC", "sometimes"),
        ("OUTAGE_API_KEYS", "short"),
        ("OUTAGE_RATE_LIMIT", "ten per minute"),
        ("OUTAGE_API_RATE_LIMIT", "600 a minute"),
        ("OUTAGE_WEBHOOKS", "{not json"),
        ("OUTAGE_WEBHOOKS", '[{"nourl": 1}]'),
    ],
)
def test_bad_values_are_clear_errors(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({"OUTAGE_DATA_DIR": str(tmp_path), name: value})


def test_default_catalog_is_realistic() -> None:
    cat = load_catalog(DEFAULT_CATALOG)
    assert len(cat.services) >= 15
    assert len({s.category for s in cat.services}) >= 6
    isp = next(s for s in cat.services if s.category == "isp")
    assert "total-blackout" in isp.problem_slugs


@pytest.mark.parametrize(
    "data,match",
    [
        ({"services": []}, "no services"),
        ({"categories": {}, "services": [{"slug": "a", "category": "x"}]}, "unknown category"),
        (
            {
                "categories": {"c": {"problems": [{"slug": "p"}]}},
                "services": [{"slug": "Bad Slug", "category": "c"}],
            },
            "bad slug",
        ),
        (
            {
                "categories": {"c": {"problems": [{"slug": "p"}]}},
                "services": [{"slug": "a", "category": "c"}, {"slug": "a", "category": "c"}],
            },
            "twice",
        ),
    ],
)
def test_bad_catalogs(data: dict, match: str) -> None:
    with pytest.raises(CatalogError, match=match):
        parse_catalog(data)
