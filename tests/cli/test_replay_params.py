"""`outage replay` runs with the workers' tuning: --params, else OUTAGE_DETECTOR_PARAMS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.replay import main
from tests.detector.fixtures import small_outage, write_csv

BLIND = {"min_reporters": 100_000}
"""Params under which nothing can alarm: shows which params a replay used."""


@pytest.fixture(scope="module")
def counts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "counts.csv"
    write_csv(path, small_outage(seed=5, days=2).rows())
    return path


def replay(counts: Path, capsys, *args: str) -> tuple[int, str]:
    """Run the command; return (incidents written, summary line)."""
    assert main([str(counts), *args]) == 0
    captured = capsys.readouterr()
    return len(captured.out.splitlines()), captured.err.strip().splitlines()[-1]


def test_defaults_are_named_in_the_summary(counts: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("OUTAGE_DETECTOR_PARAMS", raising=False)
    found, summary = replay(counts, capsys)
    assert found == 1 and "with default params:" in summary


def test_the_workers_env_var_is_honoured(counts: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("OUTAGE_DETECTOR_PARAMS", json.dumps(BLIND))
    found, summary = replay(counts, capsys)
    assert found == 0
    assert 'params from OUTAGE_DETECTOR_PARAMS {"min_reporters": 100000}' in summary


def test_params_option_overrides_the_env_var(counts: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("OUTAGE_DETECTOR_PARAMS", json.dumps(BLIND))
    found, summary = replay(counts, capsys, "--params", '{"windows": [1, 5]}')
    assert found == 1 and 'params from --params {"windows": [1, 5]}' in summary
    found, summary = replay(counts, capsys, "--params", "{}")
    assert found == 1 and "with default params:" in summary


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("{not json", "--params is not valid JSON"),
        ('{"close_alpha": 0.1}', "--params: unknown parameter 'close_alpha'"),
        ('{"close_quantile": 2}', "--params: close_quantile must be in [0.5, 1)"),
    ],
)
def test_bad_params_are_a_usage_error(counts: Path, capsys, given: str, message: str) -> None:
    assert main([str(counts), "--params", given]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_env_var_is_named(counts: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("OUTAGE_DETECTOR_PARAMS", "[1]")
    assert main([str(counts)]) == 2
    assert "OUTAGE_DETECTOR_PARAMS must be a JSON object" in capsys.readouterr().err
