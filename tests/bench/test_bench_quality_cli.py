"""End-to-end `outage bench quality --quick --json`, loaded by path as the CLI does."""

import json
import runpy
import time
from pathlib import Path

import pytest

QUALITY = Path(__file__).resolve().parents[2] / "bench" / "quality.py"
NAMES = ["ours", "downdetector_style", "ewma_3sigma", "ears_c2", "ears_c3", "shesd", "oracle_cusum"]
KEYS = {
    "recall",
    "precision",
    "false_alarms_per_service_week",
    "median_delay_min",
    "p90_delay_min",
    "median_delay_ratio",
    "median_delay_ratio_poisson",
}


@pytest.mark.slow
def test_quick_json_end_to_end(capsys):
    main = runpy.run_path(str(QUALITY))["main"]
    start = time.perf_counter()
    assert main(["--quick", "--json"]) == 0
    assert time.perf_counter() - start < 60
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["detectors"]) == NAMES
    for name, metrics in doc["detectors"].items():
        assert KEYS <= set(metrics), name
        if metrics["available"]:
            assert 0 <= metrics["recall"] <= 1
    assert doc["scenario"]["outages_scored"] > 0
    oracle = doc["detectors"]["oracle_cusum"]
    assert oracle["recall"] >= 0.5


@pytest.mark.slow
def test_plot_is_self_contained(tmp_path, capsys):
    main = runpy.run_path(str(QUALITY))["main"]
    out = tmp_path / "q.html"
    assert main(["--seed", "3", "--days", "5", "--services", "2", "--plot", str(out)]) == 0
    html = out.read_text()
    assert '<script src="https://cdn' not in html and "Recall vs false alarms" in html
    assert "| ours |" in capsys.readouterr().out
