"""The human pages through Flask's test client: content, headers, empty states, failures."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from store import keys
from store.config import load_settings
from tests.browser.seed import seed
from tests.redis_helpers import start_test_redis
from web import create_app, figures, pagedata, pages

PAGES = [
    "/",
    "/s/x",
    "/s/reddit",
    "/map",
    "/incidents",
    "/api",
    "/incidents?service=x&active=true&since=2024-01-01",
    "/?q=bank",
]
SCRIPT = re.compile(r"<script\b([^>]*)>", re.I)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """An app on its own Redis holding two days of reports, an outage of `x` and incidents."""
    folder = tmp_path_factory.mktemp("pages")
    server = start_test_redis(folder)
    settings = load_settings(
        {
            "OUTAGE_DATA_DIR": str(folder / "data"),
            "REDIS_URL": server.url,
            "OUTAGE_SECRET_KEY": "s" * 32,
        }
    )
    app = create_app({"TESTING": True, "OUTAGE_SETTINGS": settings})
    conn = redis.Redis.from_url(server.url)
    seed(conn, settings, app.extensions["outage"].catalog)
    yield app
    conn.close()
    server.stop()


@pytest.fixture
def seeded_client(seeded):
    return seeded.test_client()


def figure(html: str, element_id: str) -> dict:
    """Read the JSON data block of a figure out of a page."""
    found = re.search(
        rf'<script type="application/json" id="{element_id}-data">(.*?)</script>', html, re.S
    )
    assert found, f"no figure {element_id}"
    return json.loads(found.group(1))


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_with_strict_csp_and_no_inline_script(seeded_client, path: str) -> None:
    resp = seeded_client.get(path)
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    html = resp.get_data(as_text=True)
    for attrs in SCRIPT.findall(html):
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs
    assert "cdn." not in html and "https://" not in html.replace("https://github", "")


@pytest.mark.parametrize("path", ["/", "/s/x", "/map", "/incidents", "/api"])
def test_pages_work_on_a_fresh_store(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200


def test_fresh_service_page_says_it_is_still_learning(client) -> None:
    html = client.get("/s/reddit").get_data(as_text=True)
    assert "still learning what is normal" in html
    assert "No comments yet." in html
    assert 'id="count-hour">0<' in html


def test_service_page_states_the_outage_in_words_with_its_onset(seeded_client) -> None:
    html = seeded_client.get("/s/x").get_data(as_text=True)
    sentence = re.search(r'id="status-sentence"[^>]*>([^<]*)<', html).group(1)
    assert re.fullmatch(
        r"User reports indicate (problems|an outage) at X \(Twitter\) since "
        r"\d\d:\d\d UTC\.",
        sentence,
    ), sentence
    chart = figure(html, "chart")
    assert [t["name"] for t in chart["data"]][:4] == [
        "Band of normal",
        "Normal range",
        "Reports",
        "Expected",
    ]
    assert len(chart["data"][2]["x"]) == 288  # 24 hours in 5-minute buckets
    assert chart["data"][-1]["meta"]["field"] == "current"
    assert chart["config"]["displayModeBar"] is False
    assert chart["layout"]["shapes"], "the open incident is shaded"
    world = figure(html, "map-world")
    assert "USA" in world["data"][0]["locations"]
    assert "US-CA" in [c[1] for c in world["data"][1]["customdata"]]
    assert figure(html, "map-us")["data"][0]["locations"]
    assert figure(html, "problems")["data"][1]["y"][-1] == "App"
    assert "App keeps crashing when I open it" in html
    assert 'id="chart-table"' in html and html.count("<tr>") > 90


def test_comments_are_escaped(seeded, seeded_client) -> None:
    conn = seeded.extensions["outage"].redis
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    conn.lpush(
        keys.comments("github"),
        json.dumps({"at": "2024-01-01T00:00:00Z", "region": "GB", "problem": "api", "text": evil}),
    )
    html = seeded_client.get("/s/github").get_data(as_text=True)
    assert evil not in html
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    ) in html
    live = seeded_client.get("/live/s/github.json").get_json()
    assert live["comments"][0]["text"] == evil  # JSON for textContent, never innerHTML


def test_index_lists_problems_first_and_filters_by_query(seeded_client) -> None:
    html = seeded_client.get("/").get_data(as_text=True)
    order = re.findall(r'class="svc-link" href="/s/([a-z0-9-]+)"', html)
    assert order[0] == "x" and len(order) == 16
    assert re.search(r'id="spark-x" aria-hidden="true"><svg class="spark"', html)
    assert "<script" not in html.split("<main", 1)[1].split("</main>", 1)[0]
    filtered = seeded_client.get("/?q=bank").get_data(as_text=True)
    shown = re.findall(r'<li class="svc-card[^"]*" data-search="[^"]*">', filtered)
    assert len(shown) == 2  # Chase and Barclays; the rest are hidden, not removed


def test_map_page_sums_all_services(seeded_client) -> None:
    html = seeded_client.get("/map").get_data(as_text=True)
    world = figure(html, "map-world")
    assert {"USA", "GBR", "DEU"} <= set(world["data"][0]["locations"])
    assert "Most affected: X (Twitter)" in html


def test_incident_filters(seeded_client) -> None:
    every = seeded_client.get("/incidents").get_data(as_text=True)
    assert "X (Twitter)</a>" in every
    github = seeded_client.get("/incidents?service=github").get_data(as_text=True)
    assert "X (Twitter)</a>" not in github.split('<tbody id="incident-rows">')[1]
    future = seeded_client.get("/incidents?since=2999-01-01&active=false")
    assert "No incidents match these filters." in future.get_data(as_text=True)
    junk = seeded_client.get("/incidents?service=nope&active=maybe&since=yesterday")
    assert junk.status_code == 200  # bad filters are dropped, not a 4xx or 500


def test_api_page_is_built_from_the_openapi_document(seeded_client) -> None:
    html = seeded_client.get("/api").get_data(as_text=True)
    assert "/api/v1/services" in html and "/api/v1/openapi.json" in html


def test_unknown_service_is_a_404_page(seeded_client) -> None:
    resp = seeded_client.get("/s/no-such-service")
    assert resp.status_code == 404 and resp.mimetype == "text/html"


def test_plotly_is_our_partial_bundle_with_a_long_cache(seeded_client) -> None:
    with seeded_client.get("/static/vendor/plotly.min.js") as resp:
        assert resp.status_code == 200
        assert resp.mimetype == "text/javascript"
        assert "max-age=31536000" in resp.headers["Cache-Control"]
        assert resp.get_data() == pages.PLOTLY_JS.read_bytes()
        assert b"plotly.js v" in resp.get_data()[:200]
    html = seeded_client.get("/").get_data(as_text=True)
    assert f'data-plotly="/static/vendor/plotly.min.js?v={pages.PLOTLY_VERSION}"' in html


@pytest.mark.parametrize("path", ["/live/index.json", "/live/s/x.json", "/live/map.json"])
def test_live_data_answers_304_to_its_etag(seeded_client, path: str) -> None:
    # The data changes with the minute: two requests that straddle a minute boundary may
    # rightly differ, so retry once when the minute moved between them.
    for _ in range(2):
        minute = int(time.time() // 60)
        first = seeded_client.get(path)
        assert first.status_code == 200 and first.headers["ETag"]
        again = seeded_client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        if int(time.time() // 60) == minute:
            break
    assert again.status_code == 304 and not again.get_data()


def test_live_service_data_sends_only_the_figures_the_page_lacks(seeded_client) -> None:
    body = seeded_client.get("/live/s/x.json").get_json()
    assert {"map-world", "map-us", "problems"} <= set(body["figures"])
    assert "chart" not in body["figures"]  # the chart has its own, incremental poll
    assert set(body["texts"]) == {"status-sentence", "count-hour"}
    assert body["badges"]["status-badge"]["level"] in ("problems", "outage")
    assert body["table"][0]["epoch"] > body["table"][-1]["epoch"]
    have = ",".join(body["hashes"].values())
    again = seeded_client.get(f"/live/s/x.json?have={have}").get_json()
    assert again["figures"] == {} and again["hashes"] == body["hashes"]
    html = seeded_client.get("/s/x").get_data(as_text=True)
    assert f'data-hash="{body["hashes"]["map-world"]}"' in html


def test_live_chart_sends_only_buckets_after_the_last_one(seeded_client) -> None:
    whole = seeded_client.get("/live/s/x/chart.json").get_json()
    assert len(whole["x"]) == 288 and whole["current"]["x"] > whole["x"][-1]
    last = pagedata.to_epoch(whole["x"][-1].replace(" ", "T") + ":00Z")
    tail = seeded_client.get(f"/live/s/x/chart.json?after={last}").get_json()
    assert tail["x"] == whole["x"][-1:] and len(tail["reports"]) == 1


@pytest.mark.parametrize(("hours", "points"), [(6, 360), (24, 288), (168, 336)])
def test_the_chart_range_can_be_chosen(seeded_client, hours: int, points: int) -> None:
    html = seeded_client.get(f"/s/x?hours={hours}").get_data(as_text=True)
    assert len(figure(html, "chart")["data"][2]["x"]) == points
    assert f'href="?hours={hours}#chart-h" aria-current="true"' in html


def test_service_page_lists_other_services_with_problems(seeded_client) -> None:
    html = seeded_client.get("/s/github").get_data(as_text=True)
    others = html.split('id="others-h"', 1)[1].split("</section>", 1)[0]
    assert 'href="/s/x">X (Twitter)</a>' in others


def test_region_list_for_a_country(seeded_client) -> None:
    body = seeded_client.get("/regions/gb.json").get_json()
    assert body["country"] == "GB" and ["GB-ENG", "England"] in body["regions"]
    assert seeded_client.get("/regions/zz.json").get_json()["regions"] == []


def test_a_missing_page_has_the_site_header(seeded_client) -> None:
    resp = seeded_client.get("/no/such/page")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and '<header class="site">' in html and "Not found" in html
    api = seeded_client.get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


def test_pages_degrade_quickly_when_redis_is_down(settings) -> None:
    from cli.redis_server import free_port

    dead = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = create_app({"TESTING": True, "OUTAGE_SETTINGS": dead}).test_client()
    for path in ("/", "/s/x", "/map"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert "Live data is temporarily unavailable" in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ({"level": "unknown"}, "No reports about X have been analysed yet."),
        ({"level": "ok", "learning": True}, "No problems detected at X; we are still learning"),
        ({"level": "ok", "learning": False}, "User reports indicate no current problems at X."),
        (
            {"level": "possible", "since": "2023-12-21T05:03:00Z"},
            "User reports indicate possible problems at X since 05:03 UTC.",
        ),
        ({"level": "outage", "since": None}, "User reports indicate an outage at X."),
    ],
)
def test_status_sentence(status: dict, words: str) -> None:
    full = {"learning": False, "since": None, **status}
    assert pages.status_sentence("X", full).startswith(words)


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2023-12-21T05:42:00Z", 1703137320),
        ("2023-12-21T05:42:30Z", 1703137350),
        ("2023-12-21T05:42:00", None),  # stored times always carry their zone
        ("yesterday", None),
        (None, None),
        (1703137320, None),
    ],
)
def test_to_epoch(value, epoch) -> None:
    assert pagedata.to_epoch(value) == epoch


def test_map_rows_skip_malformed_items() -> None:
    rows = pagedata.parse_regions(
        {
            "regions": [
                {"region": "us", "observed": 4, "expected": 2.0, "ratio": 2.0},
                {"region": "GB", "observed": 1, "expected": None, "ratio": None},
                {"observed": 3},
                "junk",
                {"region": "*", "observed": 9, "expected": 1},
            ]
        }
    )
    assert [(r.region, r.effective_ratio) for r in rows] == [("US", 2.0), ("GB", None)]


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_text_colours_meet_wcag_aa_contrast() -> None:
    text = (Path(pages.__file__).parent / "static" / "site.css").read_text()
    var = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", text))
    pairs = [
        ("fg", "bg"),
        ("fg", "card"),
        ("muted", "card"),
        ("muted", "bg"),
        ("accent", "card"),
        ("accent", "bg"),
        ("ok-fg", "ok-bg"),
        ("possible-fg", "possible-bg"),
        ("problems-fg", "problems-bg"),
        ("outage-fg", "outage-bg"),
        ("unknown-fg", "unknown-bg"),
    ]
    for fg, bg in pairs:
        assert contrast(var[fg], var[bg]) >= 4.5, (fg, bg, contrast(var[fg], var[bg]))
    assert contrast("#ffffff", var["accent"]) >= 4.5  # button text
    assert contrast(var["accent-dark"], "#ddf4ff") >= 4.5  # current page in the nav
    for colour in figures.LEVEL_COLOURS.values():
        assert contrast(colour, "#ffffff") >= 4.5
    assert contrast(figures.REPORTS_COLOUR, "#ffffff") >= 3  # a graphic: 3:1 is enough


@pytest.mark.parametrize(
    "path", ["/", "/s/x", "/static/app.js", "/static/site.css", "/live/s/x.json"]
)
def test_text_answers_are_gzipped_for_clients_that_accept_it(seeded_client, path: str) -> None:
    import gzip

    with seeded_client.get(path) as plain:
        plain.get_data()
    packed = seeded_client.get(path, headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert "Content-Encoding" not in plain.headers
    body = gzip.decompress(packed.get_data())
    if path.startswith("/static/"):
        assert body == plain.get_data()
    assert len(packed.get_data()) < len(body) / 2


def test_the_plotly_bundle_is_compressed_once_and_still_answers_304(seeded_client) -> None:
    import gzip

    url = f"/static/vendor/plotly.min.js?v={pages.PLOTLY_VERSION}"
    first = seeded_client.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(first.get_data()) == pages.PLOTLY_JS.read_bytes()
    assert len(first.get_data()) < 600_000
    with seeded_client.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]}
    ) as again:
        assert again.status_code == 304
