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
    if name in ("index", "service", "map"):
        assert any("/static/vendor/plotly.min.js" in u for u in watch.requests)
    if name in ("service", "map"):
        assert any(u.endswith("/static/topojson/world_110m.json") for u in watch.requests)
    screenshot(page, f"{name}-desktop")


def test_service_chart_draws_reports_over_the_baseline_band(open_page) -> None:
    page, watch = open_page("/s/x")  # its own page: the test hovers and clicks
    names = page.evaluate("document.getElementById('chart').data.map(t => t.name)")
    assert names == ["Expected (baseline)", "Upper bound of normal", "Reports"]
    lines = page.evaluate("""Array.from(document.querySelectorAll(
        '#chart .scatterlayer .trace path.js-line'))
        .map(p => (p.getAttribute('d') || '').length)""")
    assert len(lines) == 3 and all(n > 100 for n in lines), lines
    assert page.locator("#chart .scatterlayer path.js-fill").count() == 1  # the band
    assert page.locator("#chart .shapelayer path").count() >= 1  # the open incident
    # Hovering the chart tells the time in UTC and in the reader's zone (Paris here).
    box = page.locator("#chart .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
    hover = poll(page, "document.getElementById('hover-time').textContent", timeout=5)
    assert "UTC" in hover and "your time" in hover
    # The table alternative holds the same data.
    page.locator("details.table-alt summary").click()
    assert page.locator("#chart-table tbody tr").count() >= 90
    watch.assert_clean()


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


def test_report_form_thanks_then_the_chart_moves_without_a_reload(stack, open_page) -> None:
    watcher, _ = open_page(f"/s/{QUIET}")
    watcher.evaluate("window.__sameDocument = true")
    before = watcher.evaluate("""(() => { const d = document.getElementById('chart').data;
        const x = d[d.length - 1].x; return x[x.length - 1]; })()""")
    assert watcher.locator("#count-15").text_content() == "0"

    reporter, watch = open_page(f"/s/{QUIET}", "phone")  # the form on a phone
    reporter.locator("input[name=problem]").first.check()
    reporter.locator("textarea[name=comment]").fill(EVIL)
    reporter.locator("form.report-form button[type=submit]").click()
    reporter.wait_for_load_state()
    wait_ready(reporter)
    assert reporter.locator("h1").text_content().strip() == "Thank you"
    reporter.wait_for_selector("#chart .main-svg")  # the thank-you page draws the chart too
    screenshot(reporter, "thanks-phone")

    # The report lands in the current minute; the series shows whole minutes, so the open
    # page picks it up after the minute ends, from its 5 s poll, with no reload.
    poll(watcher, "document.getElementById('count-15').textContent === '1'", timeout=90)
    assert watcher.evaluate("window.__sameDocument") is True
    after = watcher.evaluate("""(() => { const d = document.getElementById('chart').data;
        const t = d[d.length - 1]; return [t.x[t.x.length - 1], t.y.reduce((a, b) => a + b, 0)];
        })()""")
    assert after[0] > before and after[1] == 1

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
