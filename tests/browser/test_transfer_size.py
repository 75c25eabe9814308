"""What each page costs over the wire in real Chromium, against the real server with
compression: a first visit within 1.5 MB, a repeat visit within 100 KB.

A size budget is deterministic (the same bytes every run), unlike a time budget: it is the
part of "fast on a slow link" a test can hold without flaking.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import DESKTOP, wait_ready

pytestmark = pytest.mark.browser

PAGES = ["/", "/s/x", "/map", "/incidents", "/api"]
FIRST_VISIT = 1_500_000
REPEAT_VISIT = 100_000


def transferred(context, url: str) -> tuple[int, list[tuple[str, int]]]:
    """Open url in a page of context; return the bytes received (headers and encoded
    bodies, as Chromium counts them) and the requests that cost them."""
    page = context.new_page()
    seen: list = []
    page.on("requestfinished", lambda req: seen.append(req))
    page.goto(url)
    wait_ready(page)
    page.wait_for_load_state("networkidle")
    rows = []
    for req in seen:
        sizes = req.sizes()
        response = req.response()
        from_cache = response is not None and response.from_service_worker
        cost = 0 if from_cache else sizes["responseBodySize"] + sizes["responseHeadersSize"]
        rows.append((req.url, cost))
    page.close()
    return sum(cost for _, cost in rows), rows


@pytest.mark.parametrize("path", PAGES)
def test_first_and_repeat_visit_stay_within_budget(browser, stack, path: str) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        first, first_rows = transferred(context, stack.url + path)
        repeat, repeat_rows = transferred(context, stack.url + path)
        print(f"{path}: first visit {first} bytes, repeat visit {repeat} bytes")  # -s shows it
        assert first <= FIRST_VISIT, sorted(first_rows, key=lambda r: -r[1])[:5]
        assert repeat <= REPEAT_VISIT, sorted(repeat_rows, key=lambda r: -r[1])[:5]
    finally:
        context.close()
