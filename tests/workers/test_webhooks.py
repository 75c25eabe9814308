"""Webhook deliveries: signatures, retries with backoff, outcomes, no double sends."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from store.webhooks import recent
from tests.workers.helpers import run_worker
from workers import defaults, webhooks

DOC = {"id": "x:2024-01-01T00:00:00Z", "service": "x", "status": "open"}


def entry(url: str, kind: str = "open", minute: int = 100) -> dict:
    sub = webhooks.subscription_id(url)
    return {
        "type": "webhook",
        "subscription": sub,
        "delivery": webhooks.delivery_id(sub, "x", DOC["id"], kind, minute),
        "payload": webhooks.payload(kind, "x", minute, DOC),
    }


def test_signature_is_hmac_of_timestamp_and_body() -> None:
    body = b'{"a":1}'
    sig = webhooks.sign("k", "1700000000", body)
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sig == "sha256=" + expected
    assert webhooks.verify("k", "1700000000", body, sig, now=1700000100)
    assert not webhooks.verify("k", "1700000000", body + b" ", sig, now=1700000100)
    assert not webhooks.verify("other", "1700000000", body, sig, now=1700000100)
    assert not webhooks.verify("k", "1700000000", body, sig, now=1700009999)
    assert not webhooks.verify("k", "soon", body, sig)


@pytest.mark.parametrize(
    "url,shown",
    [
        (
            "https://user:pw@hooks.example.com:8443/a/b?token=secret#x",
            "https://hooks.example.com:8443/a/b",
        ),
        ("http://127.0.0.1/hook", "http://127.0.0.1/hook"),
    ],
)
def test_public_url_hides_credentials(url: str, shown: str) -> None:
    assert webhooks.public_url(url) == shown


def test_subscriptions_filter_by_service(settings) -> None:
    import dataclasses

    subs = (
        {"url": "http://a/", "secret": "", "services": []},
        {"url": "http://b/", "secret": "", "services": ["y"]},
    )
    s = dataclasses.replace(settings, webhooks=subs)
    assert [x["url"] for x in webhooks.subscriptions_for(s, "x")] == ["http://a/"]
    assert len(webhooks.outbox_entries(s, "y", "escalate", 5, DOC)) == 2
    assert webhooks.outbox_entries(s, "y", "unknown", 5, DOC) == []


def test_delivery_is_signed_and_recorded(redis_conn: redis.Redis, job_env, receiver) -> None:
    job_env([{"url": receiver.url, "secret": "s3cret", "services": []}])
    item = entry(receiver.url)
    assert webhooks.enqueue(redis_conn, item)
    assert not webhooks.enqueue(redis_conn, item), "the same delivery is enqueued once"
    run_worker(redis_conn)
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert webhooks.verify(
        "s3cret", headers["x-outage-timestamp"], req["body"], headers["x-outage-signature"]
    )
    assert abs(int(headers["x-outage-timestamp"]) - time.time()) < 30
    assert json.loads(req["body"]) == item["payload"]
    assert headers["content-type"] == "application/json"
    assert headers["x-outage-delivery"] == item["delivery"]
    assert headers["x-outage-event"] == "open"
    [outcome] = recent(redis_conn)
    assert outcome["outcome"] == "delivered" and outcome["status_code"] == 200
    assert outcome["attempt"] == 1 and outcome["url"] == receiver.url


def test_failure_is_retried_with_backoff(redis_conn: redis.Redis, job_env, receiver) -> None:
    job_env([{"url": receiver.url, "secret": "s", "services": []}])
    receiver.status = 503
    item = entry(receiver.url, "close", 7)
    webhooks.enqueue(redis_conn, item)
    run_worker(redis_conn)
    [outcome] = recent(redis_conn)
    assert outcome["outcome"] == "failed" and outcome["status_code"] == 503
    registry = ScheduledJobRegistry("webhooks", connection=redis_conn)
    assert registry.get_job_ids() == [item["delivery"]]
    due = registry.get_scheduled_time(item["delivery"]).timestamp()
    assert (
        defaults.WEBHOOK_RETRY_INTERVALS[0] - 2
        <= due - time.time()
        <= defaults.WEBHOOK_RETRY_INTERVALS[0] + 1
    )
    job = Queue("webhooks", connection=redis_conn).fetch_job(item["delivery"])
    assert job.retries_left == len(defaults.WEBHOOK_RETRY_INTERVALS) - 1


def test_the_last_attempt_gives_up(redis_conn: redis.Redis, job_env, receiver) -> None:
    job_env([{"url": receiver.url, "secret": "s", "services": []}])
    receiver.status = 500
    item = entry(receiver.url)
    webhooks.enqueue(redis_conn, item)
    job = Queue("webhooks", connection=redis_conn).fetch_job(item["delivery"])
    job.retries_left = 0
    job.save()
    run_worker(redis_conn)
    assert recent(redis_conn)[0]["outcome"] == "gave_up"


def test_a_delivered_event_is_not_posted_again(redis_conn: redis.Redis, job_env, receiver) -> None:
    job_env([{"url": receiver.url, "secret": "s", "services": []}])
    item = entry(receiver.url)
    for _ in range(2):  # e.g. a worker killed after the POST, before RQ marked it done
        Queue("webhooks", connection=redis_conn).enqueue(
            "workers.webhooks.deliver", item["delivery"], item["subscription"], item["payload"]
        )
        run_worker(redis_conn)
    assert len(receiver.requests) == 1
    assert [o["outcome"] for o in recent(redis_conn)] == ["skipped", "delivered"]


def test_an_unreachable_receiver_fails_fast(redis_conn: redis.Redis, job_env) -> None:
    from cli.redis_server import free_port

    url = f"http://127.0.0.1:{free_port()}/hook"
    job_env([{"url": url, "secret": "s", "services": []}])
    webhooks.enqueue(redis_conn, entry(url))
    started = time.monotonic()
    run_worker(redis_conn)
    assert time.monotonic() - started < 5
    outcome = recent(redis_conn)[0]
    assert outcome["outcome"] == "failed" and outcome["status_code"] is None
    assert "Connection refused" in outcome["error"] or "URLError" in outcome["error"]


def test_a_removed_subscription_is_dropped(redis_conn: redis.Redis, job_env) -> None:
    job_env([])
    webhooks.enqueue(redis_conn, entry("http://gone.example/hook"))
    run_worker(redis_conn)
    assert recent(redis_conn)[0]["outcome"] == "dropped"


def test_redirects_are_not_followed(receiver) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(307)
            self.send_header("Location", receiver.url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    status, error = webhooks.post(f"http://127.0.0.1:{server.server_address[1]}/", "s", b"{}", 2)
    thread.join(5)
    server.server_close()
    assert status == 307 and error == "HTTP 307" and not receiver.requests
