"""Configuration: defaults plus environment variables, read in one place.

Every environment variable the product understands is read by `load_settings`; nothing
else in the code touches `os.environ` for configuration. The table in the README is the
user-facing copy of `VARIABLES`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CATALOG = Path(__file__).with_name("catalog.toml")

# name, default, description: the single source for the README's configuration table.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "REDIS_URL",
        "(private Redis)",
        "Redis for counters, detection state and incidents. "
        "Unset: `outage up` starts a private Redis in the data directory; other commands use "
        "the URL that a running `outage up` wrote there. A Redis Cluster: "
        "`redis+cluster://[:password@]host:port[,host:port...]`; a Sentinel-managed primary: "
        "`redis+sentinel://[:password@]host:port[,host:port...]/<master name>` "
        "(`rediss+...` for TLS).",
    ),
    (
        "RQ_REDIS_URL",
        "REDIS_URL",
        "Redis for the RQ job queues (may be a separate server). "
        "Plain or Sentinel, never a cluster: required when REDIS_URL is a cluster.",
    ),
    (
        "OUTAGE_DATA_DIR",
        "./var",
        "Where the private Redis keeps its AOF, the generated secret key and `redis.url`.",
    ),
    (
        "OUTAGE_SECRET_KEY",
        "(generated)",
        "Server secret for sessions, CSRF and the keyed "
        "hashes of reporters. Generated once and kept in the data directory when unset.",
    ),
    ("OUTAGE_CATALOG", "(built-in)", "Path of a TOML service catalog replacing the shipped one."),
    (
        "OUTAGE_API_KEYS",
        "(none)",
        "Comma-separated API keys for batch ingestion, each "
        "`id:secret` or just `secret` (the id is then derived).",
    ),
    (
        "OUTAGE_TRUSTED_PROXIES",
        "0",
        "Number of reverse proxies in front of the web server whose X-Forwarded-For is trusted.",
    ),
    ("OUTAGE_DEDUP_SECONDS", "900", "One counted report per reporter per service per window."),
    ("OUTAGE_RATE_LIMIT", "10 per minute", "Anonymous reports per client IP."),
    ("OUTAGE_API_RATE_LIMIT", "600 per minute", "Report requests per API key."),
    (
        "OUTAGE_API_KEY_SERVICE_LIMIT",
        "300",
        "Reports per API key, service and minute; the rest of a batch is rejected by index.",
    ),
    (
        "OUTAGE_IPV4_PREFIX",
        "24",
        "Anonymous reporters are identified (dedup, rate limits) by their IPv4 /24, or by "
        "their address with 32; IPv6 always by the /64.",
    ),
    ("OUTAGE_DETECT_INTERVAL", "15", "Seconds between detection cycles."),
    (
        "OUTAGE_DETECT_GRACE",
        "5",
        "Seconds after a minute ends before detection reads it, so "
        "reports still in flight are counted.",
    ),
    ("OUTAGE_SHARDS", "4", "Detection jobs per cycle; services are spread over them."),
    ("OUTAGE_RETENTION_DAYS", "15", "Days of per-minute counters kept in Redis."),
    ("OUTAGE_STREAM_MAXLEN", "10000", "Recent raw reports kept per service (no IPs)."),
    ("OUTAGE_COMMENTS_MAXLEN", "200", "Recent report comments kept per service."),
    (
        "OUTAGE_APPENDFSYNC",
        "everysec",
        "AOF fsync policy of the private Redis (`always` loses no acknowledged report on a crash).",
    ),
    ("OUTAGE_REDIS_PORT", "0", "Port of the private Redis; 0 picks a free one."),
    (
        "OUTAGE_WEBHOOKS",
        "(none)",
        'JSON list of webhook subscriptions: `[{"url": ..., "secret": ..., "services": [...]}]`.',
    ),
    ("OUTAGE_INCIDENT_DAYS", "90", "Days a closed incident stays queryable."),
    (
        "OUTAGE_WEBHOOK_TIMEOUT",
        "5",
        "Seconds one webhook delivery may take before it counts as failed and is retried.",
    ),
    (
        "OUTAGE_DETECTOR_PARAMS",
        "(defaults)",
        "JSON object overriding detector parameters "
        '(fields of `detector.params.Params`), e.g. `{"close_quiet_minutes": 10}`. Changing '
        "buffer sizes makes the workers rebuild detector state from stored counts. "
        "`outage replay` uses it too (its `--params` overrides it).",
    ),
    ("OUTAGE_WEB_WORKERS", "2", "gunicorn worker processes for `outage web`."),
    ("OUTAGE_LOG_JSON", "0", "1 writes logs as JSON lines."),
    ("OUTAGE_LOG_LEVEL", "INFO", "Least severe log level written (DEBUG, INFO, WARNING, ERROR)."),
    ("OUTAGE_WEB_THREADS", "4", "Threads per gunicorn worker process for `outage web`."),
    (
        "OUTAGE_METRICS_DIR",
        "(data dir)/metrics/web-<bind>",
        "Directory of the Prometheus "
        "multiprocess files of one gunicorn master, emptied when it starts (a "
        "PROMETHEUS_MULTIPROC_DIR already set is used when this is unset).",
    ),
    (
        "OUTAGE_METRICS_TOKEN",
        "(none)",
        "When set, GET /metrics requires `Authorization: Bearer <token>`.",
    ),
    (
        "OUTAGE_BENCH_CEILING",
        "0",
        "1 adds the bare ingestion endpoint that `outage bench "
        "ingest` measures as its ceiling. Never set it in production.",
    ),
)


class ConfigError(ValueError):
    """A configuration value that cannot be used."""


@dataclass(frozen=True)
class ApiKey:
    """One partner API key: a public id (used in hashes and limits) and its secret."""

    id: str
    secret: str


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with its default."""

    data_dir: Path = Path("var")
    redis_url: str | None = None
    rq_redis_url: str | None = None
    secret_key: str = ""
    catalog_path: Path = DEFAULT_CATALOG
    api_keys: tuple[ApiKey, ...] = ()
    trusted_proxies: int = 0
    dedup_seconds: int = 900
    rate_limit: str = "10 per minute"
    api_rate_limit: str = "600 per minute"
    api_key_service_limit: int = 300
    ipv4_prefix: int = 24
    detect_interval: float = 15.0
    detect_grace: float = 5.0
    shards: int = 4
    retention_days: int = 15
    stream_maxlen: int = 10000
    comments_maxlen: int = 200
    appendfsync: str = "everysec"
    redis_port: int = 0
    webhooks: tuple[dict, ...] = field(default_factory=tuple)
    incident_days: int = 90
    webhook_timeout: float = 5.0
    detector_params: tuple[tuple[str, Any], ...] = ()
    web_workers: int = 2
    log_json: bool = False
    log_level: str = "INFO"
    web_threads: int = 4
    metrics_dir: Path | None = None
    metrics_token: str = ""
    bench_ceiling: bool = False

    def as_env(self) -> dict[str, str]:
        """Return the environment that makes a child process load these settings."""
        env = {
            "OUTAGE_DATA_DIR": str(self.data_dir),
            "OUTAGE_SECRET_KEY": self.secret_key,
            "OUTAGE_CATALOG": str(self.catalog_path),
            "OUTAGE_DETECT_INTERVAL": str(self.detect_interval),
        }
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        if self.rq_redis_url:
            env["RQ_REDIS_URL"] = self.rq_redis_url
        return env


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(
    env: Mapping[str, str], name: str, default: float, minimum: float = 0.0, inclusive: bool = False
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum or (value == minimum and not inclusive):
        raise ConfigError(f"{name} must be {'>=' if inclusive else '>'} {minimum}, got {value}")
    return value


def parse_api_keys(raw: str) -> tuple[ApiKey, ...]:
    """Parse `id:secret,secret2` into API keys; a bare secret gets a derived id."""
    keys = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key_id, sep, secret = item.partition(":")
        if not sep:
            import hashlib

            key_id, secret = "k" + hashlib.sha256(item.encode()).hexdigest()[:10], item
        if len(secret) < 8:
            raise ConfigError("OUTAGE_API_KEYS: every key needs at least 8 characters")
        keys.append(ApiKey(id=key_id, secret=secret))
    return tuple(keys)


def parse_detector_params(
    raw: str, name: str = "OUTAGE_DETECTOR_PARAMS"
) -> tuple[tuple[str, Any], ...]:
    """Parse and check the JSON object of detector parameter overrides (errors name `name`)."""
    if not raw.strip():
        return ()
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(items, dict):
        raise ConfigError(f"{name} must be a JSON object")
    from dataclasses import fields

    from detector.params import Params

    known = {f.name for f in fields(Params)}
    unknown = sorted(set(items) - known)
    if unknown:
        raise ConfigError(f"{name}: unknown parameter {unknown[0]!r}")
    pairs = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in items.items()))
    try:
        Params(**dict(pairs))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return pairs


def load_detector_params(env: Mapping[str, str] | None = None) -> tuple[tuple[str, Any], ...]:
    """Read OUTAGE_DETECTOR_PARAMS alone: for offline commands (`outage replay`) that need
    neither Redis nor the server secret that load_settings would create."""
    env = os.environ if env is None else env
    return parse_detector_params(env.get("OUTAGE_DETECTOR_PARAMS", ""))


def parse_webhooks(raw: str) -> tuple[dict, ...]:
    """Parse the JSON list of webhook subscriptions."""
    if not raw.strip():
        return ()
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"OUTAGE_WEBHOOKS is not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise ConfigError("OUTAGE_WEBHOOKS must be a JSON list")
    subs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise ConfigError(f"OUTAGE_WEBHOOKS[{i}] needs a string 'url'")
        services = item.get("services") or []
        if not isinstance(services, list):
            raise ConfigError(f"OUTAGE_WEBHOOKS[{i}].services must be a list")
        subs.append(
            {
                "url": item["url"],
                "secret": str(item.get("secret", "")),
                "services": [str(s) for s in services],
            }
        )
    return tuple(subs)


def secret_key_for(data_dir: Path) -> str:
    """Return the secret kept in the data directory, creating it on first use."""
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    try:
        os.link(tmp, path)  # first writer wins when several processes start at once
    except FileExistsError:
        pass
    tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def running_redis_url(data_dir: Path) -> str | None:
    """Return the URL a running `outage up` wrote into the data directory, if any."""
    try:
        return (data_dir / "redis.url").read_text().strip() or None
    except FileNotFoundError:
        return None


CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
PLAIN_SCHEMES = ("redis", "rediss", "unix")


def redis_kind(url: str, name: str = "REDIS_URL") -> str:
    """Return `plain`, `cluster` or `sentinel` for a Redis URL, from its scheme."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in PLAIN_SCHEMES:
        return "plain"
    if scheme in CLUSTER_SCHEMES:
        return "cluster"
    if scheme in SENTINEL_SCHEMES:
        return "sentinel"
    raise ConfigError(
        f"{name} must start with redis://, rediss://, unix://, redis+cluster:// "
        f"or redis+sentinel://, got {url.partition('://')[0]!r}"
    )


def _rq_url(env: Mapping[str, str], redis_url: str | None) -> str | None:
    """RQ_REDIS_URL, else REDIS_URL unless that is a cluster (RQ needs one server)."""
    explicit = env.get("RQ_REDIS_URL")
    if explicit:
        if redis_kind(explicit, "RQ_REDIS_URL") == "cluster":
            raise ConfigError(
                "RQ_REDIS_URL cannot be a Redis Cluster: RQ keeps a queue's keys "
                "on one server; point it at a plain or Sentinel-managed Redis"
            )
        return explicit
    if redis_url and redis_kind(redis_url) == "cluster":
        return None
    return redis_url


def _rate_limit(env: Mapping[str, str], name: str, default: str) -> str:
    """Return a flask-limiter rate string, refusing one it cannot parse (flask-limiter would
    otherwise log the error and apply no limit at all)."""
    from limits import parse_many

    raw = (env.get(name) or "").strip() or default
    try:
        parse_many(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a rate such as '10 per minute' or '10/minute;100/hour', got {raw!r}"
        ) from None
    return raw


def _ipv4_prefix(env: Mapping[str, str]) -> int:
    value = _int(env, "OUTAGE_IPV4_PREFIX", 24)
    if value not in (24, 32):
        raise ConfigError(f"OUTAGE_IPV4_PREFIX must be 24 or 32, got {value}")
    return value


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("OUTAGE_LOG_LEVEL") or "INFO").strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"OUTAGE_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    return level


def _metrics_dir(env: Mapping[str, str]) -> Path | None:
    raw = env.get("OUTAGE_METRICS_DIR") or env.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(raw).expanduser().absolute() if raw else None


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """Return the environment of a child process: this one's, with overrides applied."""
    return {**os.environ, **overrides}


def export_variable(name: str, value: str) -> None:
    """Set a variable that a library reads from this process's environment (and that forked
    children inherit), e.g. prometheus_client's PROMETHEUS_MULTIPROC_DIR."""
    os.environ[name] = value


def explicit_redis_urls(env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """Return REDIS_URL and RQ_REDIS_URL as set by the user (not found in the data dir)."""
    env = os.environ if env is None else env
    return env.get("REDIS_URL") or None, env.get("RQ_REDIS_URL") or None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every OUTAGE_* / REDIS_URL variable into Settings."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("OUTAGE_DATA_DIR") or "var").expanduser().absolute()
    redis_url = env.get("REDIS_URL") or running_redis_url(data_dir)
    if redis_url:
        redis_kind(redis_url)
    fsync = env.get("OUTAGE_APPENDFSYNC", "everysec").strip() or "everysec"
    if fsync not in ("always", "everysec", "no"):
        raise ConfigError("OUTAGE_APPENDFSYNC must be always, everysec or no")
    catalog = env.get("OUTAGE_CATALOG")
    return Settings(
        data_dir=data_dir,
        redis_url=redis_url,
        rq_redis_url=_rq_url(env, redis_url),
        secret_key=env.get("OUTAGE_SECRET_KEY") or secret_key_for(data_dir),
        catalog_path=Path(catalog).expanduser() if catalog else DEFAULT_CATALOG,
        api_keys=parse_api_keys(env.get("OUTAGE_API_KEYS", "")),
        trusted_proxies=_int(env, "OUTAGE_TRUSTED_PROXIES", 0),
        dedup_seconds=_int(env, "OUTAGE_DEDUP_SECONDS", 900, minimum=1),
        rate_limit=_rate_limit(env, "OUTAGE_RATE_LIMIT", "10 per minute"),
        api_rate_limit=_rate_limit(env, "OUTAGE_API_RATE_LIMIT", "600 per minute"),
        api_key_service_limit=_int(env, "OUTAGE_API_KEY_SERVICE_LIMIT", 300, minimum=1),
        ipv4_prefix=_ipv4_prefix(env),
        detect_interval=_float(env, "OUTAGE_DETECT_INTERVAL", 15.0),
        detect_grace=_float(env, "OUTAGE_DETECT_GRACE", 5.0, inclusive=True),
        shards=_int(env, "OUTAGE_SHARDS", 4, minimum=1),
        retention_days=_int(env, "OUTAGE_RETENTION_DAYS", 15, minimum=1),
        stream_maxlen=_int(env, "OUTAGE_STREAM_MAXLEN", 10000, minimum=1),
        comments_maxlen=_int(env, "OUTAGE_COMMENTS_MAXLEN", 200, minimum=1),
        appendfsync=fsync,
        redis_port=_int(env, "OUTAGE_REDIS_PORT", 0),
        webhooks=parse_webhooks(env.get("OUTAGE_WEBHOOKS", "")),
        incident_days=_int(env, "OUTAGE_INCIDENT_DAYS", 90, minimum=1),
        webhook_timeout=_float(env, "OUTAGE_WEBHOOK_TIMEOUT", 5.0),
        detector_params=load_detector_params(env),
        web_workers=_int(env, "OUTAGE_WEB_WORKERS", 2, minimum=1),
        log_json=env.get("OUTAGE_LOG_JSON", "0").strip() in ("1", "true", "yes"),
        log_level=_log_level(env),
        web_threads=_int(env, "OUTAGE_WEB_THREADS", 4, minimum=1),
        metrics_dir=_metrics_dir(env),
        metrics_token=env.get("OUTAGE_METRICS_TOKEN", "").strip(),
        bench_ceiling=env.get("OUTAGE_BENCH_CEILING", "0").strip() in ("1", "true", "yes"),
    )
