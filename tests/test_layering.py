"""The packages' layering (docs/architecture.md), checked by a plain scan of their imports.

detector/ is the pure statistical core; store/ is what web/ and workers/ share; web/ and
workers/ never import each other; only cli/ (processes and commands) may import them all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

IO_FRAMEWORKS = {"redis", "rq", "flask", "plotly", "werkzeug", "gunicorn"}

FORBIDDEN: dict[str, set[str]] = {
    "detector": IO_FRAMEWORKS | {"web", "workers", "store", "cli"},
    "store": {"web", "workers", "cli"},
    "web": {"workers", "cli"},
    "workers": {"web", "cli"},
}
"""Package -> top-level modules it must not import."""


def imported_roots(path: Path) -> set[str]:
    """Return the top-level names of every absolute import in a file, lazy ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def relative_imports(path: Path) -> bool:
    """Return whether a file uses `from . import` (which the scan above cannot place)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return any(isinstance(n, ast.ImportFrom) and n.level > 0 for n in ast.walk(tree))


MODULES = [
    (package, path)
    for package in sorted(FORBIDDEN)
    for path in sorted((ROOT / package).rglob("*.py"))
]


@pytest.mark.parametrize(
    "package,path", MODULES, ids=[str(p.relative_to(ROOT)) for _, p in MODULES]
)
def test_package_imports_respect_the_layers(package: str, path: Path) -> None:
    assert not imported_roots(path) & FORBIDDEN[package]
    assert not relative_imports(path)


def test_every_package_is_scanned() -> None:
    scanned = {package for package, _ in MODULES}
    assert scanned == set(FORBIDDEN)
    assert all(any(p.name == "__init__.py" for q, p in MODULES if q == pkg) for pkg in scanned)


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import numpy\nfrom redis import Redis\n\n\ndef later():\n    from workers import jobs\n"
    )
    assert imported_roots(bad) & FORBIDDEN["detector"] == {"redis", "workers"}
    assert imported_roots(bad) & FORBIDDEN["web"] == {"workers"}
    assert imported_roots(bad) & FORBIDDEN["store"] == {"workers"}
    assert not imported_roots(bad) & FORBIDDEN["workers"]


def test_the_check_sees_a_relative_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from .jobs import detect_shard\n")
    assert relative_imports(bad)
