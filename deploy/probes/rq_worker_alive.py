"""Exit 0 while this host's worker is alive: its RQ child is registered (RQ's heartbeat keeps
`rq:worker:<name>` alive) and its detection loop is in the live set (`keys.DETECT_WORKERS`,
a heartbeat that stops when the loop makes no progress).

usage: python rq_worker_alive.py [WORKER_NAME]   (default: the host name, i.e. the pod name;
start the worker with `outage worker --name "$(hostname)"`)

RQ refreshes `rq:worker:<name>` on every heartbeat and lets it expire when the worker's main
loop stops, so a missing key means a hung or dead worker. When RQ's Redis cannot be reached
the probe passes: restarting every worker during a Redis outage would only add load.
"""

import socket
import sys
import time


def main(name: str) -> int:
    import redis

    from store.config import ConfigError, load_settings
    from store.connections import redis_client
    from store.keys import DETECT_WORKERS

    try:
        settings = load_settings()
        if not settings.rq_redis_url:
            return 0
        with redis_client(settings.rq_redis_url, timeout=2.0) as conn:
            alive = conn.exists(f"rq:worker:{name}")
        with redis_client(settings.redis_url, timeout=2.0) as conn:
            live = conn.zrangebyscore(DETECT_WORKERS, time.time(), "+inf")
        detecting = any(m.decode().startswith(f"{name}:") for m in live)
    except (redis.RedisError, ConfigError, OSError):
        return 0
    return 0 if alive and detecting else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else socket.gethostname()))
