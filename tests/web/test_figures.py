"""The pure figure builders: rows in, plotly figure dicts out, checked without a browser."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import plotly.graph_objects as go
import pycountry
import pytest

from web import figures, maps
from web.figures import Series, Span
from web.maps import ProblemRow, RegionRow

T0 = 1_703_136_000  # 2023-12-21 05:20:00 UTC
WEB = Path(figures.__file__).parent


def minutes(n: int, start: int = T0) -> list[int]:
    return [start + 60 * i for i in range(n)]


def sample_series(n: int = 90) -> Series:
    return Series(
        times=minutes(n),
        reports=[float(i % 7) for i in range(n)],
        baseline=[2.0] * n,
        upper=[6.0] * n,
    )


REGIONS = [
    RegionRow("US", 900, 60),
    RegionRow("GB", 70, 35, ratio=2.0),
    RegionRow("US-CA", 300, 20),
    RegionRow("GB-ENG", 40, 10),
    RegionRow("DE", 3, None),
    RegionRow("ZZ", 5, 1),
    RegionRow("AU-NSW", 12, 2),
]


def all_figures() -> dict[str, dict]:
    s = sample_series()
    return {
        "chart": figures.service_chart(s, [Span(T0 + 1800, T0 + 3000, "outage", "Outage")]),
        "chart-empty": figures.service_chart(Series(times=(), reports=())),
        "chart-5min-now": figures.service_chart(s, step=5, current=(T0 + 90 * 60, 3.0)),
        "world": maps.world_map(REGIONS),
        "world-empty": maps.world_map([]),
        "us": maps.us_map(REGIONS),
        "problems": maps.problem_mix(
            [ProblemRow("app", "App", 0.7, 0.45), ProblemRow("website", "Website", 0.3, 0.55)]
        ),
    }


@pytest.mark.parametrize("name", list(all_figures()))
def test_every_figure_is_valid_plotly_and_strict_json(name: str) -> None:
    fig = all_figures()[name]
    assert set(fig) == {"data", "layout", "config"}
    go.Figure(data=fig["data"], layout=fig["layout"])  # raises on any unknown property
    json.dumps(fig, allow_nan=False)  # browsers reject NaN in JSON


@pytest.mark.parametrize("name", list(all_figures()))
def test_no_figure_points_at_a_cdn(name: str) -> None:
    text = json.dumps(all_figures()[name])
    assert "http://" not in text and "https://" not in text


def test_chart_draws_the_expected_line_on_top_with_the_band_around_it() -> None:
    fig = figures.service_chart(sample_series())
    names = [t["name"] for t in fig["data"]]
    assert names == ["Band of normal", "Normal range", "Reports", "Expected"]
    assert [t["meta"]["field"] for t in fig["data"]] == ["lower", "upper", "reports", "expected"]
    assert fig["data"][1]["fill"] == "tonexty"  # from the lower edge, not from 0
    assert fig["data"][0]["y"][0] == 0.0  # 2 - (6 - 2), floored at 0
    assert fig["data"][2]["x"][0] == "2023-12-21 05:20"  # naive UTC labels
    assert fig["config"]["displayModeBar"] is False
    assert fig["layout"]["xaxis"]["range"] == ["2023-12-21 05:20", "2023-12-21 06:49"]
    assert "UTC" in fig["layout"]["xaxis"]["hoverformat"]


def test_chart_without_baseline_draws_reports_only() -> None:
    fig = figures.service_chart(Series(times=minutes(3), reports=[1, 2, 3]))
    assert [t["name"] for t in fig["data"]] == ["Reports"]
    assert fig["layout"]["yaxis"]["range"] == [0, 5]  # whole reports, not 0..1 in fifths


def test_band_lower_edge_mirrors_the_upper_bound_around_expected() -> None:
    s = Series(
        times=minutes(3), reports=[0, 0, 0], baseline=[10.0, 2.0, 3.0], upper=[14.0, 7.0, 3.0]
    )
    assert figures.lower_band(s) == [6.0, 0.0, 3.0]


def test_running_bucket_is_drawn_apart_and_extends_the_axis() -> None:
    fig = figures.service_chart(sample_series(), step=5, current=(T0 + 95 * 60, 1.0))
    current = fig["data"][-1]
    assert current["meta"]["field"] == "current" and current["mode"] == "markers"
    assert current["x"] == ["2023-12-21 06:55"] and current["y"] == [1.0]
    assert fig["layout"]["xaxis"]["range"][1] == "2023-12-21 06:55"
    assert fig["layout"]["yaxis"]["title"]["text"] == "Reports per 5 minutes"


def test_chart_turns_nan_into_gaps() -> None:
    s = Series(times=minutes(3), reports=[1.0, math.nan, math.inf], baseline=[1.0, 1.0, 1.0])
    fig = figures.service_chart(s)
    assert fig["data"][0]["y"] == [1.0, None, None]  # reports, below the expected line


def test_incident_spans_are_clipped_to_the_window_and_open_ones_run_to_the_last_minute() -> None:
    s = sample_series(60)
    spans = [
        Span(T0 - 7200, T0 + 600, "possible"),  # began before the window
        Span(T0 + 3000, None, "outage", "Outage"),  # still open
        Span(T0 - 9000, T0 - 8000, "problems"),
    ]  # entirely before the window
    shapes = figures.service_chart(s, spans)["layout"]["shapes"][::2]  # fill, then top strip
    assert [(sh["x0"], sh["x1"]) for sh in shapes] == [
        ("2023-12-21 05:20", "2023-12-21 05:30"),
        ("2023-12-21 06:10", "2023-12-21 06:19"),
    ]
    assert shapes[1]["fillcolor"] == figures.SPAN_FILLS["outage"]


def test_span_labels_never_pile_up() -> None:
    s = sample_series(600)
    spans = [Span(T0 + 60 * k, T0 + 60 * k + 120, "possible") for k in range(0, 50, 5)]
    notes = figures.service_chart(s, spans)["layout"]["annotations"]
    assert len([n for n in notes if n["yref"] == "paper"]) == 1


def test_a_label_near_the_live_edge_is_anchored_inside_the_chart() -> None:
    s = sample_series(600)
    note = figures.service_chart(s, [Span(T0 + 599 * 60 - 300, None, "outage", "Outage")])[
        "layout"
    ]["annotations"][0]
    assert note["xanchor"] == "right" and note["x"] == figures.utc_label(T0 + 599 * 60)


def test_series_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="baseline"):
        Series(times=minutes(3), reports=[1, 2, 3], baseline=[1, 2])


def test_bucket_sums_aligned_to_the_clock() -> None:
    s = Series(times=minutes(30, T0 + 300), reports=[1.0] * 30, baseline=[0.5] * 30)
    b = figures.bucket(s, 15)  # 05:25..05:54 -> buckets from 05:15, 05:30, 05:45
    assert b.times == [T0 - 300, T0 + 600, T0 + 1500]
    assert b.reports == [5.0, 15.0, 10.0]
    assert b.baseline == [2.5, 7.5, 5.0] and b.upper == ()
    with pytest.raises(ValueError):
        figures.bucket(s, 0)


def test_table_rows_are_newest_first_quarter_hours() -> None:
    rows = figures.table_rows(sample_series(30))
    assert [r["time"] for r in rows] == ["2023-12-21 05:45", "2023-12-21 05:30", "2023-12-21 05:15"]
    assert rows[-1]["reports"] == sum(i % 7 for i in range(10))
    assert rows[-1]["expected"] == 20.0 and rows[-1]["upper"] == 60.0


def test_sparkline_is_server_drawn_svg_coloured_by_level() -> None:
    svg = figures.sparkline_svg(sample_series(), "outage")
    assert svg.startswith('<svg class="spark"') and svg.endswith("</svg>")
    assert f'stroke="{figures.LEVEL_COLOURS["outage"]}"' in svg
    line = svg.rsplit("<polyline", 1)[1]
    assert line.count(",") == 7  # 90 minutes from :20 -> 7 quarter hours
    assert "<script" not in svg


@pytest.mark.parametrize(
    ("ratio", "z"),
    [
        (None, 0.0),
        (0.3, 0.0),
        (1.0, 0.0),
        (2.0, 1.0),
        (8.0, 3.0),
        (1000.0, 5.0),
        (math.inf, 5.0),
        (math.nan, 0.0),
    ],
)
def test_ratio_colour_axis_is_log2_clipped(ratio, z) -> None:
    assert maps.ratio_z(ratio) == z


def test_world_map_colours_countries_and_puts_subdivisions_at_centroids() -> None:
    fig = maps.world_map(REGIONS, window_minutes=15)
    countries, bubbles = fig["data"]
    assert countries["locationmode"] == "ISO-3"
    assert countries["locations"] == ["USA", "GBR", "DEU"]  # ZZ is not a country
    assert countries["z"][:2] == [pytest.approx(math.log2(15), abs=1e-3), 1.0]
    assert countries["z"][2] == 0.0  # no baseline yet: drawn, but neutral
    assert "no baseline yet" in countries["customdata"][2][3]
    assert [c[1] for c in bubbles["customdata"]] == ["US-CA", "GB-ENG", "AU-NSW"]
    lon, lat = bubbles["lon"][0], bubbles["lat"][0]
    assert -125 < lon < -114 and 32 < lat < 42  # California
    geo = fig["layout"]["geo"]
    assert geo["fitbounds"] is False and geo["scope"] == "world"
    assert fig["config"]["topojsonURL"] == "/static/topojson/"


def test_us_map_uses_state_postal_codes() -> None:
    fig = maps.us_map(REGIONS)
    assert fig["data"][0]["locationmode"] == "USA-states"
    assert fig["data"][0]["locations"] == ["CA"]
    assert fig["layout"]["geo"]["scope"] == "usa"
    assert fig["layout"]["geo"]["fitbounds"] is False


def test_region_ratio_prefers_the_api_ratio_and_floors_expected() -> None:
    assert RegionRow("GB", 70, 35, ratio=2.5).effective_ratio == 2.5
    assert RegionRow("GB", 3, 0.0).effective_ratio == 30.0
    assert RegionRow("GB", 3, None).effective_ratio is None


def test_problem_mix_puts_the_most_reported_problem_on_top_in_percent() -> None:
    fig = maps.problem_mix(
        [
            ProblemRow("website", "Website", 0.23, 0.5),
            ProblemRow("app", "App", 0.71, 0.4),
            ProblemRow("server", "Server", 0.06, 0.1),
        ]
    )
    normal, now = fig["data"]
    assert now["y"] == ["Server", "Website", "App"]  # plotly draws the last category on top
    assert now["x"] == [6.0, 23.0, 71.0] and normal["x"] == [10.0, 50.0, 40.0]


def test_centroid_table_holds_valid_codes_for_every_region_the_demo_and_scenarios_use() -> None:
    from cli.demo import REGIONS as DEMO_REGIONS
    from detector.scenarios_world import REGION_POOL

    table = maps.centroids()
    for code in table["countries"]:
        assert pycountry.countries.get(alpha_2=code), code
    for code in table["subdivisions"]:
        assert pycountry.subdivisions.get(code=code), code
    for code in [r[0] for r in REGION_POOL] + list(DEMO_REGIONS):
        assert maps.centroid(code), code
    for lon, lat in list(table["countries"].values()) + list(table["subdivisions"].values()):
        assert -180 <= lon <= 180 and -90 <= lat <= 90


def test_unknown_subdivision_falls_back_to_its_country() -> None:
    assert maps.centroid("FR-75C") == maps.centroid("FR")
    assert maps.centroid("ZZ-XX") is None


def test_topojson_files_and_their_licence_ship_with_the_package() -> None:
    folder = WEB / "static" / "topojson"
    assert "MIT" in (folder / "LICENSE").read_text()
    for name in ("world_110m.json", "usa_110m.json"):
        topo = json.loads((folder / name).read_text())
        assert {"countries", "subunits", "land"} <= set(topo["objects"])


@pytest.mark.parametrize("module", ["figures.py", "maps.py"])
def test_figures_module_is_pure(module: str) -> None:
    tree = ast.parse((WEB / module).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module != "web.figures":
            roots.add(node.module.split(".")[0])
    assert not roots & {"flask", "redis", "rq", "plotly", "workers", "web"}
