"""The real pages in headless chromium: they load clean, draw their figures, update live, and
work on a phone and from the keyboard."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PHONE, Watch, poll, screenshot, wait_ready

pytestmark = pytest.mark.browser

PAGES = {"index": "/", "service": "/s/x", "map": "/map", "incidents": "/incidents", "api": "/api"}
EVIL = '<script>alert("pwned")</script><img src=x onerror="alert(1)"><b>bold</b>'
QUIET = "reddit"  # no reports at all until the form test sends one


@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_without_errors_or_foreign_requests(loaded, name: str) -> None:
    page, watch = loaded(PAGES[name])
    watch.assert_clean()
    assert any(u.endswith("/static/app.js") for u in watch.requests)
    plotly = any("/static/vendor/plotly.min.js" in u for u in watch.requests)
    assert plotly == (name in ("service", "map"))  # the list's sparklines are plain SVG
    if name in ("service", "map"):
        assert any(u.endswith("/static/topojson/world_110m.json") for u in watch.requests)
    screenshot(page, f"{name}-desktop")


def test_service_chart_draws_reports_with_the_expected_line_on_top(open_page) -> None:
    page, watch = open_page("/s/x")  # its own page: the test hovers and clicks
    names = page.evaluate("document.getElementById('chart').data.map(t => t.name)")
    assert names[:4] == ["Band of normal", "Normal range", "Reports", "Expected"]
    lines = page.evaluate("""Array.from(document.querySelectorAll(
        '#chart .scatterlayer .trace path.js-line'))
        .map(p => (p.getAttribute('d') || '').length)""")
    assert len(lines) >= 2 and all(n > 100 for n in lines[-2:]), lines
    # The expected line is drawn last of the lines (on top) and is visible.
    expected = page.locator("#chart .scatterlayer .trace").nth(3).locator("path.js-line")
    assert expected.is_visible() and expected.bounding_box()["width"] > 300
    assert page.locator("#chart .scatterlayer path.js-fill").count() == 1  # the band
    assert page.locator("#chart .shapelayer path").count() >= 1  # the open incident
    assert page.locator(".modebar-btn").count() == 0  # no mode bar on any figure
    # Hovering the chart tells the time in UTC and in the reader's zone (Paris here).
    box = page.locator("#chart .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
    hover = poll(page, "document.getElementById('hover-time').textContent", timeout=5)
    assert "UTC" in hover and "your time" in hover
    # The table alternative holds the same data.
    page.locator("details.table-alt summary").click()
    assert page.locator("#chart-table tbody tr").count() >= 90
    watch.assert_clean()


def test_the_outage_spike_fills_the_chart_height_at_the_default_view(loaded) -> None:
    page, _ = loaded("/s/x")
    # The reports line reaches near the top of the plot area: the y axis is scaled to it.
    top, height, line_top = page.evaluate("""(() => {
        const plot = document.querySelector('#chart .nsewdrag').getBoundingClientRect();
        const line = document.querySelectorAll('#chart .scatterlayer .trace')[2]
            .querySelector('path.js-line').getBoundingClientRect();
        return [plot.top, plot.height, line.top]; })()""")
    assert line_top - top < 0.15 * height, (top, height, line_top)
    points = page.evaluate("document.getElementById('chart').data[2].x.length")
    assert points == 288  # 5-minute buckets over 24 hours


@pytest.mark.parametrize("path", ["/s/x", "/map"])
def test_maps_draw_coloured_regions(loaded, path: str) -> None:
    page, watch = loaded(path)
    fills = """sel => Array.from(document.querySelectorAll(sel))
        .map(p => getComputedStyle(p).fill).filter(f => f && f !== 'none')"""
    world = page.evaluate(f"({fills})('#map-world path.choroplethlocation')")
    assert len(world) >= 5, world  # US, GB, DE, FR, CA and more
    assert len(set(world)) >= 3, "colours vary with the ratio"
    assert page.locator("#map-world .scattergeo path.point").count() >= 3  # state bubbles
    states = page.evaluate(f"({fills})('#map-us path.choroplethlocation')")
    assert len(states) >= 3, states
    assert page.locator("#map-world path.choroplethlocation").first.is_visible()
    watch.assert_clean()


def current(page) -> float:
    return page.evaluate("""(() => { const d = document.getElementById('chart').data;
        const t = d.find(t => t.meta && t.meta.field === 'current');
        return t ? t.y[0] : null; })()""")


def test_report_form_thanks_with_own_report_then_the_chart_moves_without_a_reload(
    stack, open_page
) -> None:
    watcher, _ = open_page(f"/s/{QUIET}")
    watcher.evaluate("window.__sameDocument = true")
    assert current(watcher) == 0
    # An empty service gets whole-report ticks, not 0..1 in fifths.
    ticks = watcher.evaluate("""Array.from(document.querySelectorAll('#chart .ytick text'))
        .map(t => t.textContent)""")
    assert ticks[:3] == ["0", "1", "2"], ticks

    reporter, watch = open_page(f"/s/{QUIET}", "phone")  # the form on a phone
    reporter.locator("input[name=problem]").first.check()
    reporter.locator("textarea[name=comment]").fill(EVIL)
    reporter.locator("form.report-form button[type=submit]").click()
    reporter.wait_for_load_state()
    wait_ready(reporter)
    assert reporter.locator("h1").text_content().strip() == "Thank you"
    assert "/thanks?" in reporter.url  # redirected after POST: a refresh sends nothing
    reporter.wait_for_selector("#chart .main-svg")
    # The reporter's own report is on the chart at once, in the running bucket.
    assert current(reporter) == 1
    assert reporter.locator("#chart .scatterlayer .trace").last.locator("path.point").count() == 1
    screenshot(reporter, "thanks-phone")

    # The open service page picks it up from its 5 s poll, with no reload.
    poll(
        watcher,
        "document.getElementById('chart').data.some(t => t.meta && "
        "t.meta.field === 'current' && t.y[0] === 1)",
        timeout=30,
    )
    assert watcher.evaluate("window.__sameDocument") is True

    # The comment shows up as text: no script ran, no element was made from it.
    poll(watcher, "document.querySelector('#comments .comment-text') !== null", timeout=30)
    for page in (watcher, reporter):
        if page is reporter:
            page.goto(stack.url + f"/s/{QUIET}")
            wait_ready(page)
        assert page.locator("#comments .comment-text").first.text_content() == EVIL
        assert page.locator("#comments script, #comments img, #comments b").count() == 0
    watch.assert_clean()
    assert not watch.dialogs


def test_on_a_phone_the_problem_buttons_come_first(loaded) -> None:
    page, _ = loaded("/s/x", "phone")
    form = page.locator("form.report-form fieldset.problems").bounding_box()
    chart = page.locator("#chart").bounding_box()
    assert form["y"] < chart["y"] and form["y"] < 844, (form, chart)
    desktop, _ = loaded("/s/x")
    side = desktop.locator("form.report-form").bounding_box()
    main = desktop.locator("#chart").bounding_box()
    assert side["x"] > main["x"] + main["width"] - 5  # beside the chart on a wide screen


def test_the_region_list_follows_the_country(open_page) -> None:
    page, watch = open_page(f"/s/{QUIET}")
    page.locator("#country").select_option("GB")
    poll(page, "document.querySelector('#subdivision option[value=\"GB-ENG\"]') !== null")
    assert page.locator("#subdivision-field").is_visible()
    assert page.locator("#subdivision option[value='US-CA']").count() == 0
    page.locator("#country").select_option("US")
    poll(page, "document.querySelector('#subdivision option[value=\"US-CA\"]') !== null")
    assert page.locator("#subdivision option[value='GB-ENG']").count() == 0
    page.locator("#country").select_option("")
    assert not page.locator("#subdivision-field").is_visible()
    watch.assert_clean()


@pytest.mark.parametrize("name", list(PAGES))
def test_phone_layout_has_no_horizontal_scroll(loaded, name: str) -> None:
    page, watch = loaded(PAGES[name], "phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width}px wide"
    watch.assert_clean()
    screenshot(page, f"{name}-phone")


def test_keyboard_reaches_the_services_with_a_visible_focus(open_page) -> None:
    page, _ = open_page("/")
    seen = []
    for _ in range(12):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate("""(() => {
            const el = document.activeElement;
            const shown = e => { const s = getComputedStyle(e);
                return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; };
            const card = el.closest('.svc-card');
            return [el.tagName, el.getAttribute('href') || el.id || el.name || '',
                    shown(el) || (card !== null && shown(card))]; })()""")
        )
    assert seen[0][:2] == ["A", "#main"], "the skip link comes first"
    assert all(visible for _, _, visible in seen), seen
    reached = [target for _, target, _ in seen]
    assert "q" in reached and "/s/x" in reached, reached


@pytest.mark.parametrize("path", ["/", "/s/x", "/incidents"])
def test_every_control_has_a_label(loaded, path: str) -> None:
    page, _ = loaded(path)
    unlabelled = page.evaluate("""Array.from(document.querySelectorAll(
        'input:not([type=hidden]), select, textarea')).filter(el => !(el.labels && el.labels.length)
        && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
        .map(el => el.outerHTML.slice(0, 80))""")
    assert unlabelled == []


def test_search_filters_the_list_as_you_type(open_page) -> None:
    page, _ = open_page("/")
    page.locator("#q").fill("bank")
    names = page.evaluate("""Array.from(document.querySelectorAll('#service-list li'))
        .filter(li => !li.hidden).map(li => li.querySelector('.svc-link').textContent)""")
    assert names == ["Chase", "Barclays"]
    page.locator("#q").fill("zzzz")
    assert page.locator("#no-match").is_visible()


def test_a_watch_records_foreign_requests() -> None:
    watch = Watch()

    class Req:
        url = "https://cdn.plot.ly/un/world_110m.json"

    watch._request(Req())
    with pytest.raises(AssertionError, match="left the host"):
        watch.assert_clean()
