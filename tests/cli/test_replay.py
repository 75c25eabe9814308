"""The `outage replay` command: JSON Lines out, errors and help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.replay import main
from detector.replay import read_counts_csv
from tests.detector.fixtures import REPLAY_FIELDS, small_outage, write_csv


@pytest.fixture(scope="module")
def small():
    return small_outage(seed=5, days=2)


def test_main_writes_jsonl(tmp_path: Path, small, capsys) -> None:
    counts = tmp_path / "counts.csv"
    write_csv(counts, small.rows())
    assert read_counts_csv(counts)[0][1] == "small"
    out = tmp_path / "incidents.jsonl"
    assert main([str(counts), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert list(row) == list(REPLAY_FIELDS)
    assert row["started_at"].endswith("Z") and row["regions"][0] == "US"
    assert "replayed" in capsys.readouterr().err
    assert main([str(counts), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[0]) == row and captured.err == ""


def test_main_reports_errors_and_help(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("minute,service,region,problem,reports\n2024-05-01T00:00:00Z,s,QQ,app,1\n")
    assert main([str(bad)]) == 2
    assert "bad.csv:2" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.csv")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "outage replay" in capsys.readouterr().out
