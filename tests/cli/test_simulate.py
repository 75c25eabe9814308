"""The `outage simulate` command: a seeded scenario as counts.csv and labels.json."""

import csv
import json

from cli import simulate
from detector import scenarios


def test_simulate_writes_csv_and_labels(tmp_path):
    assert simulate.main(["--seed", "5", "--days", "8", "--services", "2", str(tmp_path)]) == 0
    with open(tmp_path / "counts.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["minute", "service", "region", "problem", "reports", "reporters"]
    assert rows[0]["minute"].endswith("Z") and all(int(r["reports"]) > 0 for r in rows[:100])
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert set(labels) >= {"outages", "nuisances", "eval_start", "services"}
    sc = scenarios.generate(5, days=8, n_services=2)
    total = sum(int(r["reporters"]) for r in rows)
    assert total == sum(int(s.reporters.sum()) for s in sc.services)
    o = labels["outages"][0]
    assert {
        "service",
        "regions",
        "problems",
        "start",
        "end",
        "base_per_min",
        "outage_per_min",
    } <= set(o)
    assert scenarios.parse_minute(o["start"]) == sc.start_minute + sc.outages[0]["start"]
