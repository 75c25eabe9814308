"""The committed partial plotly.js bundle is the one web/plotly_bundle/build.sh makes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from web import pages

BUNDLE = Path(pages.__file__).parent / "plotly_bundle"


def test_the_bundle_is_the_version_the_build_script_pins() -> None:
    pinned = json.loads((BUNDLE / "package.json").read_text())["dependencies"]["plotly.js"]
    locked = json.loads((BUNDLE / "package-lock.json").read_text())
    assert locked["packages"]["node_modules/plotly.js"]["version"] == pinned
    assert pages.PLOTLY_VERSION == pinned
    head = pages.PLOTLY_JS.read_bytes()[:200].decode()
    assert head.startswith(f"/*! plotly.js v{pinned} partial bundle")


def test_the_bundle_holds_exactly_the_trace_types_the_figures_use() -> None:
    entry = (BUNDLE / "entry.js").read_text()
    registered = set(re.findall(r'require\("plotly\.js/lib/([a-z]+)"\)', entry)) - {"core"}
    assert registered == {"bar", "choropleth", "scattergeo"}  # core brings scatter
    used = set()
    for name in ("figures.py", "maps.py"):
        used |= set(re.findall(r'"type": "([a-z]+)"', (BUNDLE.parent / name).read_text()))
    assert used - {"date", "rect"} <= registered | {"scatter"}


def test_the_licence_ships_beside_the_bundle() -> None:
    licence = (pages.PLOTLY_JS.parent / "plotly.LICENSE.txt").read_text()
    assert "MIT" in licence or "Permission is hereby granted" in licence
