"""Fetcher against a real local HTTP server: retries, limits, robots, conditional GET, proxies."""

from __future__ import annotations

import time

import pytest

from rag_assets.sources.docs import FetchRequest, Fetcher, FetcherConfig
from rag_assets_tests.docsite import DocSite, ForwardingProxy, Resp, dead_proxy_url, fast_fetcher


@pytest.fixture
def site():
    with DocSite(slow_s=2.0) as s:
        yield s


def test_ok_page_with_validators(site):
    with fast_fetcher() as f:
        r = f.fetch(site.url("/install.html"))
    assert r.ok and r.error is None and r.http_status == 200
    assert r.content_type == "text/html" and r.charset == "utf-8"
    assert r.etag and r.etag.startswith('"') and r.last_modified.endswith("GMT")
    assert b"<h1>Install</h1>" in r.body and r.nbytes == len(r.body)


def test_conditional_get_304(site):
    with fast_fetcher() as f:
        first = f.fetch(site.url("/api.html"))
        by_etag = f.fetch(site.url("/api.html"), etag=first.etag)
        by_date = f.fetch(site.url("/api.html"), last_modified=first.last_modified)
        stale = f.fetch(site.url("/api.html"), etag='"other"')
    assert by_etag.not_modified and not by_etag.ok and by_etag.body == b"" and by_etag.etag == first.etag
    assert by_date.not_modified
    assert stale.ok and not stale.not_modified
    assert site.full["/api.html"] == 2 and site.not_modified["/api.html"] == 2


def test_retry_on_500_then_success(site):
    with fast_fetcher() as f:
        r = f.fetch(site.url("/flaky.html"))
    assert r.ok and r.attempts == 2 and site.hits["/flaky.html"] == 2


def test_persistent_5xx_gives_up_after_retries(site):
    site.routes["/down.html"] = Resp(b"down", "text/plain", status=503, validators=False)
    with fast_fetcher(max_retries=3) as f:
        r = f.fetch(site.url("/down.html"))
    assert r.error == "http 503" and r.http_status == 503 and r.attempts == 4
    assert site.hits["/down.html"] == 4


def test_404_is_not_retried(site):
    with fast_fetcher() as f:
        r = f.fetch(site.url("/missing.html"))
    assert r.error == "http 404" and r.attempts == 1


def test_retry_after_is_honoured_and_capped(site):
    site.routes["/busy.html"] = lambda s, n: (
        Resp(b"", status=429, headers={"Retry-After": "1"}, validators=False) if n == 1 else Resp(b"<p>ok</p>"))
    with fast_fetcher(backoff_max_s=5.0) as f:
        t0 = time.monotonic()
        assert f.fetch(site.url("/busy.html")).ok
        honoured = time.monotonic() - t0
    site.reset_counters()
    with fast_fetcher(backoff_max_s=0.2) as f:
        t0 = time.monotonic()
        assert f.fetch(site.url("/busy.html")).ok
        capped = time.monotonic() - t0
    assert honoured >= 0.95 and capped < 0.6


def test_read_timeout_is_retried_then_fails(site):
    with fast_fetcher(max_retries=1) as f:
        t0 = time.monotonic()
        r = f.fetch(site.url("/slow.html"))
    assert r.error == "timeout" and r.attempts == 2 and site.hits["/slow.html"] == 2
    assert time.monotonic() - t0 < 1.8


def test_oversize_declared_and_streamed(site):
    with fast_fetcher(max_bytes=50_000) as f:
        declared = f.fetch(site.url("/big.html"))
        streamed = f.fetch(site.url("/big-stream.html"))
    assert declared.error == "oversize" and "Content-Length" in declared.detail
    assert streamed.error == "oversize" and 50_000 < streamed.nbytes < 200_000  # stopped early


def test_redirects_followed_and_loops_detected(site):
    site.routes["/r1"] = Resp(status=302, headers={"Location": "/r2"}, validators=False)
    site.routes["/r2"] = Resp(status=302, headers={"Location": "/r3"}, validators=False)
    site.routes["/r3"] = Resp(status=302, headers={"Location": "/install.html"}, validators=False)
    with fast_fetcher() as f:
        moved = f.fetch(site.url("/moved.html"))
        loop = f.fetch(site.url("/loop-a"))
    with fast_fetcher(max_redirects=2) as f:
        chain = f.fetch(site.url("/r1"))
    assert moved.ok and moved.final_url == site.url("/new-home.html")
    assert loop.error == "redirect loop" and "/loop-b -> " in loop.detail
    assert chain.error == "too many redirects"


def test_unsupported_content_type(site):
    with fast_fetcher() as f:
        png = f.fetch(site.url("/logo.png"))
        md = f.fetch(site.url("/api.md"))
    assert png.error == "unsupported content type" and png.detail == "image/png" and png.body == b""
    assert md.ok and md.content_type == "text/markdown"


def test_robots_disallow_respected_and_fetched_once(site):
    with fast_fetcher() as f:
        results = list(f.fetch_many([site.url("/private/secret.html"), site.url("/index.html"),
                                     site.url("/api.html"), site.url("/faq.html")]))
        assert not f.allowed(site.url("/private/other")) and f.allowed(site.url("/public"))
    by_url = {r.url: r for r in results}
    assert by_url[site.url("/private/secret.html")].error == "robots disallowed"
    assert sum(r.ok for r in results) == 3
    assert site.hits["/private/secret.html"] == 0 and site.hits["/robots.txt"] == 1
    with fast_fetcher(respect_robots=False) as f:
        assert f.fetch(site.url("/private/secret.html")).ok


def test_robots_404_fails_open_and_5xx_fails_closed(site):
    del site.routes["/robots.txt"]
    with fast_fetcher() as f:
        assert f.fetch(site.url("/private/secret.html")).ok
    site.routes["/robots.txt"] = Resp(b"", "text/plain", status=503, validators=False)
    with fast_fetcher() as f:
        r = f.fetch(site.url("/index.html"))
    assert r.error == "robots disallowed" and "unavailable" in r.detail and "/robots.txt" in r.detail
    assert site.hits["/index.html"] == 0


def test_connection_refused_is_a_failure_not_an_exception():
    with fast_fetcher(max_retries=1) as f:
        r = f.fetch(dead_proxy_url() + "/page.html")
        bad = f.fetch("ftp://example.invalid/x")
    # robots.txt unreachable: nothing is fetched (fail-closed), reported as what it is (issue 12)
    assert r.error == "host unreachable" and "/robots.txt: connection error" in r.detail
    with fast_fetcher(max_retries=1, respect_robots=False) as f:
        r = f.fetch(dead_proxy_url() + "/page.html")
    assert r.error == "connection error" and r.attempts == 2
    assert bad.error == "bad url"


def test_per_host_concurrency_never_exceeded():
    with DocSite(generated=16, delay_s=0.05) as site:
        with fast_fetcher(per_host_concurrency=3, max_workers=10) as f:
            results = list(f.fetch_many(site.url(f"/gen/{i}.html") for i in range(16)))
        assert all(r.ok for r in results) and len(results) == 16
        assert site.max_in_flight == 3  # reached (parallel) but never above


def test_per_host_rate_limit():
    with DocSite(generated=9) as site:
        with fast_fetcher(per_host_rps=20, respect_robots=False, max_workers=9) as f:
            t0 = time.monotonic()
            results = list(f.fetch_many(site.url(f"/gen/{i}.html") for i in range(9)))
            elapsed = time.monotonic() - t0
    assert all(r.ok for r in results)
    assert elapsed >= 8 / 20 * 0.95  # 9 starts spaced 50 ms apart


def test_proxy_failover_skips_dead_proxy(site):
    dead = dead_proxy_url()
    with ForwardingProxy() as proxy:
        with fast_fetcher(proxies=[dead, proxy.url]) as f:
            results = list(f.fetch_many([FetchRequest(site.url(p)) for p in
                                         ("/index.html", "/install.html", "/api.html", "/faq.html")]))
            again = f.fetch(site.url("/changelog.html"))
        assert all(r.ok for r in results) and again.ok
        assert proxy.requests == 6  # robots.txt + 5 pages all went through the live proxy
        assert site.hits["/robots.txt"] == 1 and site.hits["/index.html"] == 1
    with fast_fetcher(proxies=[dead], max_retries=1) as f:
        r = f.fetch(site.url("/index.html"))
    assert r.error == "host unreachable"  # nothing reachable, robots.txt included: fail-closed
    assert "through the configured proxies" in r.detail


def test_config_overrides_and_unknown_option():
    f = Fetcher(FetcherConfig(user_agent="x/1"), max_retries=0, proxies=["http://127.0.0.1:1"])
    assert f.config.user_agent == "x/1" and f.config.max_retries == 0
    assert f.config.proxies == ("http://127.0.0.1:1",)
    f.close()
    with pytest.raises(TypeError, match="unknown Fetcher option"):
        Fetcher(retries=3)
