"""gunicorn settings for the web role: `gunicorn -c python:cli.gunicorn_conf`.

`outage web` uses this module, and deploy/gunicorn.conf.py re-exports it for operators who
start gunicorn themselves. Everything comes from the same OUTAGE_* settings; command-line
options (--bind, --workers) still override it.

Prometheus multiprocess mode: the master empties and names a metrics directory in
`on_starting`, before any worker imports prometheus_client, and `child_exit` tidies a dead
worker's live gauges. So neither this module nor the master may import prometheus_client or
the app at import time, and the app is never preloaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from store.config import export_variable, load_settings
from store.logs import ACCESS_FORMAT, gunicorn_logconfig

_settings = load_settings()
_metrics_path: Path | None = None

wsgi_app = "web:create_app()"
bind = ["127.0.0.1:8000"]
workers = _settings.web_workers
# gevent (cli/gunicorn_worker.py): a slow client parks a greenlet, not one of a few threads.
worker_class = "cli.gunicorn_worker.WebWorker"
worker_connections = 1000  # per worker process; beyond it the kernel backlog queues
# Why no max_requests: every recycled worker leaves its own multiprocess metric files.
max_requests = 0
preload_app = False
timeout = 30
graceful_timeout = 20  # below the 30 s that Kubernetes and compose wait before SIGKILL
keepalive = 5  # longer than nothing, shorter than typical load balancer idle timeouts
backlog = 2048
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level.lower()
access_log_format = ACCESS_FORMAT
logconfig_dict = gunicorn_logconfig(_settings)
proc_name = "outage-web"
# gunicorn >= 25 opens a control socket in $HOME by default: several masters on one host
# would share it, and a container's home may be read-only.
control_socket_disable = True


def metrics_dir_for(bind_addresses: list[str]) -> Path:
    """Return this master's multiprocess directory: configured, else one per bind address."""
    if _settings.metrics_dir is not None:
        return _settings.metrics_dir
    name = re.sub(r"[^A-Za-z0-9]+", "_", "-".join(bind_addresses)).strip("_") or "default"
    return _settings.data_dir / "metrics" / f"web-{name}"


def prepare_metrics_dir(path: Path) -> None:
    """Create the directory and drop files left by an earlier run of this master."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def on_starting(server) -> None:
    """Set up multiprocess metrics before the first worker is forked."""
    global _metrics_path
    path = metrics_dir_for(list(server.cfg.bind))
    prepare_metrics_dir(path)
    _metrics_path = path
    # prometheus_client reads this when a worker first imports it; workers inherit it.
    export_variable("PROMETHEUS_MULTIPROC_DIR", str(path))


def child_exit(server, worker) -> None:
    """Forget a dead worker's live gauges (its counters stay, so totals never go back)."""
    from prometheus_client import multiprocess

    if _metrics_path is not None:
        multiprocess.mark_process_dead(worker.pid, str(_metrics_path))
