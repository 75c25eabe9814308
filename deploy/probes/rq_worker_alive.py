"""Exit 0 while this host's RQ worker is registered (its heartbeat keeps the key alive).

usage: python rq_worker_alive.py [WORKER_NAME]   (default: the host name, i.e. the pod name;
start the worker with `outage worker --name "$(hostname)"`)

RQ refreshes `rq:worker:<name>` on every heartbeat and lets it expire when the worker's main
loop stops, so a missing key means a hung or dead worker. When RQ's Redis cannot be reached
the probe passes: restarting every worker during a Redis outage would only add load.
"""

import socket
import sys


def main(name: str) -> int:
    import redis

    from store.config import ConfigError, load_settings
    from store.connections import redis_client

    try:
        url = load_settings().rq_redis_url
        if not url:
            return 0
        with redis_client(url, timeout=2.0) as conn:
            alive = conn.exists(f"rq:worker:{name}")
    except (redis.RedisError, ConfigError, OSError):
        return 0
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else socket.gethostname()))
