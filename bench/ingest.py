"""`outage bench ingest`: reports/s through the real gunicorn server, next to its ceiling.

Starts a private Redis (AOF, everysec) and `outage web` (gunicorn, the production settings)
with OUTAGE_BENCH_CEILING=1, which adds a bare endpoint doing the same Redis write without
validation, rate limiting or GeoIP. Each mode runs with the same load tool (wrk when
installed, else a Python keep-alive load generator) against a flushed Redis; every report
has its own reporter, so every one is counted (no duplicate short-cuts).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import redis  # noqa: E402

from cli.redis_server import free_port, start_redis  # noqa: E402
from store import minute_hash  # noqa: E402
from store.config import child_environment  # noqa: E402

API_KEY = "bench:" + "b" * 32
SINGLE = {"service": "x", "problem": "app", "region": "US-CA"}
MODES = ("ceiling-single", "single", "ceiling-batch", "batch")
"""Run order: each mode right after its ceiling, so drift on the machine affects both."""


@dataclass
class Result:
    mode: str
    requests_per_s: float
    reports_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_report: float = 0.0
    pct_of_ceiling: float | None = None
    cpu_pct_of_ceiling: float | None = None


# ------------------------------------------------------------------------------ CPU
def server_pids(master: int, redis_pid: int) -> list[int]:
    """The gunicorn master, its workers and redis-server."""
    pids = [master, redis_pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            pids.append(int(stat.parent.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ wrk
WRK_SCRIPT = """
local counter, tid = 0, 0
local ids = 0
function setup(thread) ids = ids + 1; thread:set("tid", ids) end
local pieces = {}
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if "%(key)s" ~= "" then wrk.headers["Authorization"] = "Bearer %(key)s" end
end
function request()
  counter = counter + 1
  local who = "%(mode)s-" .. tid .. "-" .. counter
  if %(batch)d == 0 then
    wrk.headers["X-Forwarded-For"] = string.format(
      "%%d.%%d.%%d.1", 10 + tid, math.floor(counter / 256) %% 256, counter %% 256)
    return wrk.format(nil, "%(path)s", nil, '%(single)s')
  end
  for i = 1, %(batch)d do
    pieces[i] = '{"service":"x","problem":"app","region":"US","reporter":"'
      .. who .. "-" .. i .. '"}'
  end
  return wrk.format(nil, "%(path)s", nil, '{"reports":[' .. table.concat(pieces, ",") .. ']}')
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"cannot read wrk's latency {text!r}")
    value, unit = found.groups()
    return float(value) * _UNITS[unit]


def run_wrk(
    url: str,
    path: str,
    mode: str,
    batch: int,
    key: str,
    seconds: float,
    connections: int,
    workdir: Path,
) -> tuple[float, float, float, int]:
    script = workdir / f"{mode}.lua"
    script.write_text(
        WRK_SCRIPT
        % {"mode": mode, "batch": batch, "path": path, "key": key, "single": json.dumps(SINGLE)}
    )
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    text = out.stdout
    if "Latency Distribution" not in text:
        raise RuntimeError(f"wrk did not measure anything:\n{text}\n{out.stderr}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1))
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors += sum(int(x) for x in sock.groups()) if sock else 0
    return rate, p50, p99, errors


# ------------------------------------------------------------------- Python fallback
def network(tid: int, n: int) -> str:
    """Return a client address in a /24 of its own for request `n` of load thread `tid`."""
    return f"{10 + tid % 200}.{(n >> 8) & 255}.{n & 255}.1"


def run_python(
    port: int, path: str, mode: str, batch: int, key: str, seconds: float, connections: int
) -> tuple[float, float, float, int]:
    """A keep-alive HTTP/1.1 load generator: one thread per connection."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(tid: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, n = [], 0
        while time.monotonic() < deadline:
            n += 1
            who = f"{mode}-{tid}-{n}"
            # Anonymous reporters are networks: each single report comes from its own /24.
            headers = {"Content-Type": "application/json", "X-Forwarded-For": network(tid, n)}
            if key:
                headers["Authorization"] = f"Bearer {key}"
            if batch:
                body = json.dumps(
                    {
                        "reports": [
                            {
                                "service": "x",
                                "problem": "app",
                                "region": "US",
                                "reporter": f"{who}-{i}",
                            }
                            for i in range(batch)
                        ]
                    }
                )
            else:
                body = json.dumps(SINGLE)
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            mine.append((time.perf_counter() - started) * 1000)
            if resp.status != 202:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def pick(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))]
            if latencies
            else float("nan")
        )

    return len(latencies) / elapsed, pick(0.50), pick(0.99), errors[0]


# --------------------------------------------------------------------------- stack
def start_web(
    port: int, redis_url: str, data_dir: Path, workers: int | None, log: Path
) -> subprocess.Popen:
    env = child_environment(
        {
            "REDIS_URL": redis_url,
            "OUTAGE_DATA_DIR": str(data_dir),
            "OUTAGE_SECRET_KEY": "bench-secret-" + "s" * 20,
            "OUTAGE_API_KEYS": API_KEY,
            "OUTAGE_RATE_LIMIT": "100000000 per minute",
            "OUTAGE_API_RATE_LIMIT": "100000000 per minute",
            "OUTAGE_BENCH_CEILING": "1",
            # Throughput, not abuse: one key may send every report, from any address.
            "OUTAGE_API_KEY_SERVICE_LIMIT": "100000000",
            "OUTAGE_TRUSTED_PROXIES": "1",
            "PYTHONPATH": str(_ROOT),
        }
    )
    args = [sys.executable, "-m", "cli.main", "web", "--port", str(port)]
    if workers:
        args += ["--workers", str(workers)]
    proc = subprocess.Popen(
        args,
        cwd=_ROOT,
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the web server exited:\n{log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the web server did not become ready in 30 s")


def warm_up(port: int, key: str) -> None:
    """Load every worker's lazy parts (GeoIP, scripts, pools) before measuring."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(200):
        body = json.dumps({"service": "x", "problem": "app"})
        for path in ("/api/v1/reports", "/api/v1/_ceiling/reports"):
            conn.request(
                "POST",
                path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": f"warm-{i}",
                    "Authorization": f"Bearer {key}",
                },
            )
            conn.getresponse().read()
    conn.close()


def run_mode(
    args: argparse.Namespace,
    tool: str,
    mode: str,
    port: int,
    key: str,
    conn: redis.Redis,
    work: Path,
    round_no: int,
    pids: list[int],
) -> Result:
    """Measure one mode once, on a flushed Redis, with fresh reporter ids."""
    batch = args.batch if mode.endswith("batch") else 0
    path = "/api/v1/_ceiling/reports" if mode.startswith("ceiling") else "/api/v1/reports"
    use_key = key if batch else ""
    conns = args.connections if not batch else max(2, args.connections // 4)
    tag = f"{mode}{round_no}"
    conn.flushall()
    cpu_before = cpu_seconds(pids)
    if tool == "wrk":
        rate, p50, p99, errors = run_wrk(
            f"http://127.0.0.1:{port}", path, tag, batch, use_key, args.seconds, conns, work
        )
    else:
        rate, p50, p99, errors = run_python(port, path, tag, batch, use_key, args.seconds, conns)
    cpu = cpu_seconds(pids) - cpu_before
    counted = sum(
        int(v)
        for k in conn.scan_iter(match="{svc:x}:m:*")
        for f, v in conn.hgetall(k).items()
        if f.decode().startswith(minute_hash.REPORTERS + minute_hash.SEP)
    )
    per_request = batch or 1
    if counted < 0.9 * rate * per_request * args.seconds:
        print(f"warning: {mode}: only {counted} reports were counted", file=sys.stderr)
    return Result(
        mode,
        round(rate, 1),
        round(rate * per_request, 1),
        round(p50, 2),
        round(p99, 2),
        errors,
        round(1e6 * cpu / max(counted, 1), 1),
    )


def combine(runs: list[Result]) -> Result:
    """Average the rounds of one mode (equal durations), weighting CPU by reports; the
    latencies shown are the median round's. On a shared machine, averaging many short
    interleaved rounds cancels the load of other processes out of the ratios."""
    n = len(runs)
    reports = sum(r.reports_per_s for r in runs)
    cpu = sum(r.cpu_us_per_report * r.reports_per_s for r in runs) / reports if reports else 0
    mid = sorted(runs, key=lambda r: r.reports_per_s)[n // 2]
    return Result(
        mid.mode,
        round(sum(r.requests_per_s for r in runs) / n, 1),
        round(reports / n, 1),
        mid.p50_ms,
        mid.p99_ms,
        sum(r.errors for r in runs),
        round(cpu, 1),
    )


def measure(args: argparse.Namespace) -> list[Result]:
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
        if tool == "python":
            print(
                "wrk not found (apt-get install wrk); using the Python load generator",
                file=sys.stderr,
            )
    key = API_KEY.split(":", 1)[1]
    work = Path(tempfile.mkdtemp(prefix="outage-bench-ingest-"))
    server = start_redis(work / "redis", appendonly=True, appendfsync="everysec")
    conn = redis.Redis.from_url(server.url)
    port = free_port()
    web = None
    results: list[Result] = []
    try:
        web = start_web(port, server.url, work / "data", args.workers, work / "web.log")
        warm_up(port, key)
        pids = server_pids(web.pid, server.process.pid)
        runs: dict[str, list[Result]] = {m: [] for m in MODES}
        for round_no in range(args.rounds):
            for mode in MODES:
                runs[mode].append(run_mode(args, tool, mode, port, key, conn, work, round_no, pids))
        results = [combine(runs[m]) for m in MODES]
        by_mode = {r.mode: r for r in results}
        for r in results:
            ceiling = by_mode.get(f"ceiling-{r.mode}")
            if ceiling and ceiling.reports_per_s:
                r.pct_of_ceiling = round(100 * r.reports_per_s / ceiling.reports_per_s, 1)
            if ceiling and r.cpu_us_per_report:
                r.cpu_pct_of_ceiling = round(
                    100 * ceiling.cpu_us_per_report / r.cpu_us_per_report, 1
                )
    finally:
        if web is not None and web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
            try:
                web.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(web.pid, signal.SIGKILL)
        conn.close()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"load tool: {tool}", file=sys.stderr)
    return results


def memory(series_counts: tuple[int, ...] = (1, 10, 50), reports: int = 2) -> str:
    """Write one day of minutes through the real storage script and measure Redis memory."""
    from store.config import Settings
    from web.ingest import Report
    from web.report_store import ReportStore

    work = Path(tempfile.mkdtemp(prefix="outage-bench-memory-"))
    server = start_redis(work / "redis", appendonly=False)
    conn = redis.Redis.from_url(server.url)
    store = ReportStore(Settings(retention_days=15))
    regions = ["US", "US-CA", "GB", "DE", "FR", "CA", "BR", "IN", "JP", "AU"]
    problems = ["app", "website", "login", "images", "links"]
    lines = [
        "| series with traffic | reports per series-minute | bytes per series-day: "
        "used_memory | MEMORY USAGE of the keys | dedup marker (bytes each) "
        "| stream entry (bytes each) |",
        "|---|---|---|---|---|---|",
    ]
    try:
        for n in series_counts:
            conn.flushall()
            start = int(time.time() // 60) - 1440
            base = conn.info("memory")["used_memory"]
            for minute in range(start, start + 1440):
                batch = [
                    Report(
                        "x",
                        problems[i % 5],
                        regions[i // 5 % 10],
                        minute * 60.0,
                        f"r{minute}-{i}-{j}",
                        f"n{i}-{j}",
                    )
                    for i in range(n)
                    for j in range(reports)
                ]
                store.write(conn, batch)
            seen = next(conn.scan_iter(match="{svc:x}:seen:*"))
            marker = conn.memory_usage(seen)
            entry = conn.memory_usage("{svc:x}:reports") / max(conn.xlen("{svc:x}:reports"), 1)
            for pattern in ("{svc:x}:seen:*", "{svc:x}:reports", "{svc:x}:comments"):
                for k in conn.scan_iter(match=pattern, count=5000):
                    conn.delete(k)
            per = (conn.info("memory")["used_memory"] - base) / n
            usage = (
                sum(
                    conn.memory_usage(k) or 0 for k in conn.scan_iter(match="{svc:x}:*", count=5000)
                )
                / n
            )
            lines.append(
                f"| {n} | {reports} | {per:,.0f} | {usage:,.0f} | {marker} | {entry:,.0f} |"
            )
    finally:
        conn.close()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return "\n".join(lines)


def table(results: list[Result]) -> str:
    lines = [
        "| mode | requests/s | reports/s | p50 (ms) | p99 (ms) | % of ceiling "
        "| server CPU µs/report | % of ceiling by CPU | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        pct = "-" if r.pct_of_ceiling is None else f"{r.pct_of_ceiling:.0f}%"
        cpct = "-" if r.cpu_pct_of_ceiling is None else f"{r.cpu_pct_of_ceiling:.0f}%"
        lines.append(
            f"| {r.mode} | {r.requests_per_s:,.0f} | {r.reports_per_s:,.0f} | "
            f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {pct} | {r.cpu_us_per_report:,.0f} | "
            f"{cpct} | {r.errors} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="outage bench ingest", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="per mode and round (default 3)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=8,
        help="interleaved rounds over all modes, averaged (default 8)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="keep-alive connections for single reports (batches use 1/4)",
    )
    parser.add_argument("--batch", type=int, default=1000, help="reports per batch request")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gunicorn workers (default OUTAGE_WEB_WORKERS or 2)",
    )
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="measure Redis memory per series-day instead of throughput",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.memory:
        print(memory())
        return 0
    results = measure(args)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(table(results))
    return 0 if all(r.errors == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
