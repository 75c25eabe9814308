"""detector/ is the pure statistical core: it must not import I/O frameworks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"redis", "rq", "flask", "plotly", "werkzeug", "gunicorn", "web", "workers"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize(
    "path", sorted((ROOT / "detector").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_detector_imports_no_io_framework(path: Path) -> None:
    assert not imported_roots(path) & FORBIDDEN


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom redis import Redis\n")
    assert imported_roots(bad) & FORBIDDEN == {"redis"}
