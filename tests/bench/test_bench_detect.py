"""`outage bench detect` still runs against the current detector and the deployed worker
(tiny size, not timed)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "detect.py"


def test_bench_detect_runs(capsys) -> None:
    main = runpy.run_path(str(BENCH), run_name="bench_detect")["main"]
    assert main(["--sizes", "170", "--json", "--cycles", "2"]) == 0
    [row] = json.loads(capsys.readouterr().out)["rows"]
    assert row["series"] == 170 and row["services"] == 2
    assert row["warm_s"] > 0 and row["incident_job_s"] > 0
    assert 0 < row["deployed_s"] < row["deployed_interval_s"]  # the worker's own records
    assert row["state_bytes_per_series"] > 0
    assert row["latency_s"]["p50"] > 30
