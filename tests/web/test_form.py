"""The report form: the partial, CSRF, validation, region pre-fill, the thank-you page."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from flask import render_template_string

from store import keys
from tests.redis_helpers import start_test_redis
from web import create_app
from web.extensions import outage
from web.forms import report_form_for

PAGE = '{% extends "base.html" %}{% block main %}{% include "report_form.html" %}{% endblock %}'


def add_form_page(app) -> None:
    """A bare page that includes the partial the way the service page does."""

    @app.get("/_test/form/<slug>")
    def _form_page(slug: str):
        service = outage().catalog.get(slug)
        return render_template_string(PAGE, form=report_form_for(service), service=service)


@pytest.fixture
def form_app(app):
    add_form_page(app)
    return app


@pytest.fixture
def browser(form_app):
    return form_app.test_client()


def token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def open_form(browser, slug="x", **kw) -> str:
    resp = browser.get(f"/_test/form/{slug}", **kw)
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def send(browser, slug="x", ip="198.51.100.7", **fields):
    data = {"csrf_token": token(open_form(browser, slug)), **fields}
    return browser.post(
        f"/s/{slug}",
        data=data,
        environ_base={"REMOTE_ADDR": ip},
        headers={"User-Agent": "firefox-test"},
    )


def counts(redis_conn, service="x"):
    total: dict[str, int] = {}
    for key in redis_conn.scan_iter(match=f"{keys.tag(service)}:m:*"):
        for name, value in redis_conn.hgetall(key).items():
            total[name.decode()] = total.get(name.decode(), 0) + int(value)
    return total


def test_the_partial_is_a_plain_labelled_form(browser) -> None:
    html = open_form(browser)
    assert '<form class="report-form" method="post" action="/s/x"' in html
    assert "I have a problem with X" in html
    radios = re.findall(
        r'<input id="(problem-\d+)" name="problem" required type="radio" '
        r'value="([a-z-]+)"',
        html,
    )
    assert {v for _, v in radios} >= {"app", "website", "login", "images", "links"}
    for radio_id, _ in radios:
        assert f'<label for="{radio_id}">' in html
    assert '<label for="country">Country</label>' in html
    assert (
        '<select autocomplete="country" data-regions="/regions/XX.json" id="country" '
        'name="country">'
    ) in html
    assert '<textarea id="comment" maxlength="280" name="comment"' in html
    assert '<label for="comment">' in html
    assert token(html)
    assert "<script" not in html.split("<form", 1)[1].split("</form>", 1)[0]


def test_country_is_prefilled_from_accept_language(browser) -> None:
    html = open_form(
        browser,
        headers={"Accept-Language": "de-CH,de;q=0.8"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert '<option selected value="CH">' in html
    assert 'value="CH-ZH"' in html  # the country's subdivisions are offered
    assert '<option selected value="">Whole country</option>' in html


def test_country_is_prefilled_from_the_ip_first(browser) -> None:
    html = open_form(
        browser, headers={"Accept-Language": "fr-FR"}, environ_base={"REMOTE_ADDR": "8.8.8.8"}
    )
    assert '<option selected value="US">' in html and 'value="US-CA"' in html


def test_unknown_location_selects_not_sure_and_hides_subdivisions(browser) -> None:
    html = open_form(browser, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert '<option selected value="">Not sure' in html
    assert '<div class="field" id="subdivision-field" hidden>' in html  # shown by the script


def test_post_counts_the_report_and_redirects_to_thanks_with_the_chart(browser, redis_conn) -> None:
    posted = send(
        browser,
        problem="login",
        country="US",
        subdivision="US-CA",
        comment="Cannot log in <b>at all</b>",
    )
    assert posted.status_code == 303  # a refresh of the thank-you page sends nothing again
    assert posted.headers["Location"].startswith("/s/x/thanks?")
    resp = browser.get(posted.headers["Location"])
    html = resp.get_data(as_text=True)
    assert "Thank you" in html and "Login" in html and "California" in html
    assert 'id="chart-data"' in html and "/live/s/x/chart.json" in html
    chart = json.loads(html.split('id="chart-data">', 1)[1].split("</script>", 1)[0])
    current = next(t for t in chart["data"] if t["meta"]["field"] == "current")
    assert current["y"] == [1.0]  # the reporter's own report, at once
    assert 'href="/s/x"' in html
    assert resp.headers["Cache-Control"] == "no-store"
    assert counts(redis_conn) == {"r|US-CA|login": 1, "u|US-CA|login": 1}
    [(_, entry)] = redis_conn.xrange(keys.stream("x"))
    assert entry[b"source"] == b"form"
    assert b"Cannot log in <b>at all</b>" in redis_conn.lindex(keys.comments("x"), 0)


def test_second_post_is_thanked_but_not_counted_again(browser, redis_conn) -> None:
    assert send(browser, problem="app", country="GB").status_code == 303
    again = send(browser, problem="app", country="GB")
    assert again.status_code == 303
    assert "already counted" in browser.get(again.headers["Location"]).get_data(as_text=True)
    assert counts(redis_conn) == {"r|GB|app": 2, "u|GB|app": 1}


def test_country_only_and_unknown_region(browser, redis_conn) -> None:
    send(browser, problem="app", country="FR", subdivision="")
    send(browser, ip="192.0.2.9", problem="app", country="")  # another /24: another reporter
    assert counts(redis_conn) == {"r|FR|app": 1, "u|FR|app": 1, "r|*|app": 1, "u|*|app": 1}


@pytest.mark.parametrize("token_value", [None, "", "forged-token"])
def test_post_without_a_valid_csrf_token_is_400(browser, redis_conn, token_value) -> None:
    open_form(browser)
    data = {"problem": "app"}
    if token_value is not None:
        data["csrf_token"] = token_value
    resp = browser.post("/s/x", data=data)
    assert resp.status_code == 400
    assert "reload the page" in resp.get_data(as_text=True)
    assert not counts(redis_conn)


def test_a_token_from_another_session_is_rejected(form_app, redis_conn) -> None:
    stolen = token(open_form(form_app.test_client()))
    resp = form_app.test_client().post("/s/x", data={"csrf_token": stolen, "problem": "app"})
    assert resp.status_code == 400


@pytest.mark.parametrize(
    "fields,message",
    [
        ({}, "Choose what is not working"),
        ({"problem": "streaming"}, "Not a valid choice"),
        ({"problem": "app", "country": "XX"}, "Not a valid choice"),
        ({"problem": "app", "country": "DE", "subdivision": "US-CA"}, "not in the chosen country"),
        ({"problem": "app", "country": "", "subdivision": "US-CA"}, "not in the chosen country"),
        ({"problem": "app", "comment": "x" * 281}, "longer than 280"),
        ({"problem": "app", "comment": "bad\x00byte"}, "control characters"),
    ],
)
def test_invalid_form_is_shown_again_with_the_error(browser, redis_conn, fields, message) -> None:
    resp = send(browser, **fields)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert message in html and 'role="alert"' in html
    assert token(html)  # the corrected form can be sent again
    assert not counts(redis_conn)


def test_changing_country_without_js_offers_that_countrys_regions(browser) -> None:
    resp = send(browser, problem="app", country="DE", subdivision="US-CA")
    html = resp.get_data(as_text=True)
    assert 'value="DE-BY"' in html and 'value="US-CA"' not in html


def test_unknown_service_is_404(browser) -> None:
    token_value = token(open_form(browser))
    resp = browser.post("/s/nope", data={"csrf_token": token_value, "problem": "app"})
    assert resp.status_code == 404


def test_form_is_rate_limited_with_retry_after(settings, redis_conn) -> None:
    app = create_app(
        {
            "TESTING": True,
            "OUTAGE_SETTINGS": dataclasses.replace(settings, rate_limit="1 per minute"),
        }
    )
    add_form_page(app)
    browser = app.test_client()
    assert send(browser, problem="app").status_code == 303
    resp = send(browser, problem="app")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert resp.mimetype == "text/html"


def test_form_is_503_when_redis_is_down(settings, tmp_path: Path) -> None:
    server = start_test_redis(tmp_path / "redis")
    app = create_app(
        {"TESTING": True, "OUTAGE_SETTINGS": dataclasses.replace(settings, redis_url=server.url)}
    )
    add_form_page(app)
    browser = app.test_client()
    data = {"csrf_token": token(open_form(browser)), "problem": "app"}
    server.stop()
    resp = browser.post("/s/x", data=data)
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert "Traceback" not in resp.get_data(as_text=True)
