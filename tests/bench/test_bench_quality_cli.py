"""End-to-end `outage bench quality --json` on a tiny scenario, loaded by path as the CLI
does (the benchmark itself is `make bench`, not a test)."""

import json
import runpy
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
def test_json_end_to_end(capsys):
    main = runpy.run_path(str(QUALITY))["main"]
    assert main(["--seed", "2", "--days", "7", "--services", "3", "--json", "--no-matched"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["detectors"]) == NAMES
    for name, metrics in doc["detectors"].items():
        assert KEYS <= set(metrics), name
        if metrics["available"] and metrics["recall"] is not None:
            assert 0 <= metrics["recall"] <= 1
    assert doc["scenario"]["outages_scored"] > 0


@pytest.mark.slow
def test_plot_is_self_contained(tmp_path, capsys):
    main = runpy.run_path(str(QUALITY))["main"]
    out = tmp_path / "q.html"
    assert main(["--seed", "3", "--days", "5", "--services", "2", "--plot", str(out)]) == 0
    html = out.read_text()
    assert '<script src="https://cdn' not in html and "Recall vs false alarms" in html
    text = capsys.readouterr().out
    assert "| ours |" in text
    assert "| detector | recall at 0.03 FA/svc-wk |" in text
    assert "| ours: target FA / series-year | 0.01 | 0.1 | 1 | 10 | 100 | 1000 |" in text


@pytest.mark.slow
def test_json_keeps_its_keys_and_adds_the_matched_table(capsys):
    main = runpy.run_path(str(QUALITY))["main"]
    assert main(["--seed", "3", "--days", "5", "--services", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["detectors"]) == NAMES
    for name, metrics in doc["detectors"].items():
        assert KEYS <= set(metrics), name
        assert set(metrics["matched"]) == {"0.03", "0.1", "0.3", "1.0", "3.0"}, name
        assert len(metrics["sweep"]) >= 6, name
    targets = [row["target_per_series_year"] for row in doc["calibration"]]
    assert targets == [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
    assert doc["scenario"]["series_equivalents_per_service"] > 1.0
