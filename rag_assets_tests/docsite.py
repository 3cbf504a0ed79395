"""A small documentation site on 127.0.0.1 for tests and benchmarks (threaded http.server).

It serves real HTTP with ETag/Last-Modified (304 on match), robots.txt, a sitemap index, an
llms.txt/llms-full.txt, and misbehaving pages (404, a 500 that works on retry, a slow page,
a redirect loop, a PNG, oversize bodies, duplicate pages). Counters let tests assert what the
server actually saw: hits per path, full (200) bodies per path, and peak concurrent requests.
Also `ForwardingProxy`, a tiny HTTP proxy, and `dead_proxy_url()` for failover tests.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.client
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LAST_MODIFIED = "Wed, 01 May 2024 10:00:00 GMT"
_WORDS = ("index query vector chunk embed store config option retry timeout client server "
          "request response cache token model batch stream parse schema table column field "
          "value default module function class method argument return error handle path").split()


@dataclass
class Resp:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict = field(default_factory=dict)
    validators: bool = True  # send ETag/Last-Modified and answer conditional GETs with 304
    stream: bool = False  # no Content-Length: body until the connection closes


Route = Resp | Callable[["DocSite", int], Resp | None]  # callable(site, hit number) -> response


def chrome(title: str, content: str, variant: int = 0) -> bytes:
    """A full page: the same article inside one of two different site 'themes'."""
    if variant == 0:
        top = ('<header class="site-header"><a href="/">MyLib</a><nav><a href="/index.html">Home</a>'
               '<a href="/install.html">Install</a><a href="/api.html">API</a></nav></header>'
               '<aside class="sidebar"><ul><li><a href="/guide.html">Guide</a></li></ul></aside>')
        bottom = '<footer>© 2024 MyLib · <a href="/privacy">Privacy</a></footer>'
    else:
        top = ('<div id="cookie-consent">We use cookies. <button>Accept</button></div>'
               '<nav class="navbar"><a href="/">MyLib docs v2</a><a href="/faq.html">FAQ</a>'
               '<a href="/changelog.html">Changes</a><input placeholder="Search"></nav>')
        bottom = '<footer class="site-footer"><p>Built with a different theme. Edit on GitHub.</p></footer>'
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title} — MyLib</title>'
            f'<script>var analytics = 1;</script><style>body {{ margin: 0 }}</style></head><body>{top}'
            f'<main><article><h1>{title}</h1>{content}</article></main>{bottom}</body></html>').encode()


def generated_page(n: int, words: int = 300) -> bytes:
    rng = random.Random(n)
    paras = "".join(f"<p>{' '.join(rng.choice(_WORDS) for _ in range(50))}</p>" for _ in range(words // 50))
    return chrome(f"Generated page {n}", f"<h2>Section {n}</h2>{paras}<pre><code class=\"language-python\">"
                  f"value_{n} = compute({n})\n</code></pre>")


def sitemap(urls: list[str]) -> bytes:
    locs = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>').encode()


def sitemap_index(urls: list[str]) -> bytes:
    locs = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</sitemapindex>').encode()


GUIDE = ("<p>The guide explains how a source becomes a searchable collection of chunks.</p>"
         "<h2>Concepts</h2><p>Every source has a name, a kind and a URL; documents are split into "
         "chunks of a few hundred tokens and embedded with the configured model.</p>"
         "<ul><li>Sources are partitions</li><li>Chunks keep line numbers</li></ul>")
INSTALL = ("<p>Install the package from the registry.</p><h2>Requirements</h2>"
           '<div class="highlight-bash notranslate"><div class="highlight"><pre>pip install mylib==1.2\n'
           "mylib --version\n</pre></div></div>"
           "<h2>Options</h2><table><thead><tr><th>Option</th><th>Default</th><th>Meaning</th></tr></thead>"
           "<tbody><tr><td>timeout_s</td><td>30</td><td>Request timeout</td></tr>"
           "<tr><td>retries</td><td>3</td><td>Extra attempts</td></tr></tbody></table>")
API = ("<p>The Python API has one entry point.</p><h2>Client</h2>"
       '<pre><code class="language-python">from mylib import Client\n\nclient = Client(url="http://localhost")\n'
       'client.search("query", limit=5)\n</code></pre>'
       "<table><tr><th>Method</th><th>Returns</th></tr><tr><td>search</td><td>list of hits</td></tr></table>")
LLMS_FULL = """# MyLib

> The whole documentation in one file.

# Installation
Source: https://example.invalid/install

Run `pip install mylib`.

```bash
# this is a shell comment, not a page heading
pip install mylib
```

# API reference

Call `Client.search(query)`.

# Installation

A second section with a repeated title gets its own slug.
"""


class DocSite:
    """Start with `with DocSite() as site:`; `site.url("/x")` is an absolute URL."""

    def __init__(self, generated: int = 0, delay_s: float = 0.0, slow_s: float = 3.0):
        self.routes: dict[str, Route] = {}
        self.hits: Counter = Counter()  # path -> requests
        self.full: Counter = Counter()  # path -> 200 responses with a body
        self.not_modified: Counter = Counter()  # path -> 304 responses
        self.delay_s, self.slow_s = delay_s, slow_s  # delay_s: added to every request
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._default_routes()
        if generated:
            self.add_generated(generated)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> DocSite:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()  # releases slow handlers
        self.server.shutdown()
        self.server.server_close()

    def reset_counters(self) -> None:
        with self._lock:
            self.hits.clear(), self.full.clear(), self.not_modified.clear()
            self.max_in_flight = 0

    def sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # --- content -------------------------------------------------------------------------

    PAGES = ["/index.html", "/install.html", "/guide.html", "/guide-copy.html", "/guide-alt.html",
             "/api.html", "/faq.html", "/changelog.html", "/flaky.html", "/moved.html",
             "/private/secret.html", "/missing.html", "/slow.html", "/loop-a", "/logo.png", "/big.html"]
    # What download_library must make of PAGES (see test_docs_pages.py).
    EXPECT_FETCHED = 8  # index install guide api faq changelog flaky moved(->new-home)
    EXPECT_DUPLICATES = {"/guide-copy.html": "/guide.html", "/guide-alt.html": "/guide.html"}
    EXPECT_FAILED = {"robots disallowed": 1, "http 404": 1, "timeout": 1, "redirect loop": 1,
                     "unsupported content type": 1, "oversize": 1}

    def _default_routes(self) -> None:
        r = self.routes
        r["/robots.txt"] = Resp(b"User-agent: *\nDisallow: /private/\n", "text/plain", validators=False)
        r["/index.html"] = Resp(chrome("Welcome", "<p>MyLib indexes repositories and documentation "
                                                  "sites for coding agents.</p><h2>Start here</h2><p>Read the "
                                                  "install page, then the guide.</p>"))
        r["/install.html"] = Resp(chrome("Install", INSTALL))
        r["/guide.html"] = Resp(chrome("Guide", GUIDE))
        r["/guide-copy.html"] = Resp(chrome("Guide", GUIDE))  # same bytes, second URL
        r["/guide-alt.html"] = Resp(chrome("Guide", GUIDE, variant=1))  # same article, other chrome
        r["/api.html"] = Resp(chrome("API", API))
        r["/faq.html"] = Resp(chrome("FAQ", "<h2>Why?</h2><p>Because agents need fresh docs.</p>"
                                            "<ol><li>Fetch</li><li>Chunk</li><li>Embed</li></ol>"))
        r["/changelog.html"] = Resp(chrome("Changelog", "<h2>1.2</h2><p>Added proxy failover to the "
                                                        "fetcher and retries with backoff.</p>"))
        r["/new-home.html"] = Resp(chrome("New home", "<p>This page moved here from moved.html.</p>"))
        r["/moved.html"] = Resp(status=301, headers={"Location": "/new-home.html"}, validators=False)
        r["/private/secret.html"] = Resp(chrome("Secret", "<p>robots.txt forbids this page.</p>"))
        r["/flaky.html"] = lambda site, n: (
            Resp(b"oops", "text/plain", status=500, validators=False) if n % 2 else
            Resp(chrome("Flaky", "<p>This page fails once, then works on the retry.</p>")))
        r["/slow.html"] = lambda site, n: (site.sleep(site.slow_s), Resp(chrome("Slow", "<p>late</p>")))[1]
        r["/loop-a"] = Resp(status=302, headers={"Location": "/loop-b"}, validators=False)
        r["/loop-b"] = Resp(status=302, headers={"Location": "/loop-a"}, validators=False)
        r["/logo.png"] = Resp(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image/png")
        r["/big.html"] = Resp(chrome("Big", "<p>" + "lots of words " * 30_000 + "</p>"))
        r["/big-stream.html"] = Resp(chrome("Big", "<p>" + "more words " * 30_000 + "</p>"), stream=True)
        r["/api.md"] = Resp(b"# API (Markdown)\n\nThe API as plain Markdown.\n", "text/markdown")
        half = len(self.PAGES) // 2
        r["/sitemap.xml"] = Resp(sitemap_index([self.url("/sitemap-pages.xml"), self.url("/sitemap-more.xml.gz")]),
                                 "application/xml", validators=False)
        r["/sitemap-pages.xml"] = Resp(sitemap([self.url(p) for p in self.PAGES[:half]]), "application/xml",
                                       validators=False)
        r["/sitemap-more.xml.gz"] = Resp(gzip.compress(sitemap([self.url(p) for p in self.PAGES[half:]])),
                                         "application/gzip", validators=False)
        r["/llms.txt"] = Resp(
            (f"# MyLib\n\n> Docs for agents.\n\n## Docs\n\n- [Install]({self.url('/install.html')}): setup\n"
             f"- [API reference](/api.md): the API in Markdown\n- ![logo](/logo.png)\n\n## Optional\n\n"
             f"See {self.url('/faq.html')}.\n\n```\n{self.url('/not-a-link-in-code.html')}\n```\n").encode(),
            "text/plain", validators=False)
        r["/llms-full.txt"] = Resp(LLMS_FULL.encode(), "text/plain")

    def add_generated(self, n: int) -> list[str]:
        for i in range(n):
            self.routes[f"/gen/{i}.html"] = Resp(generated_page(i))
        urls = [self.url(f"/gen/{i}.html") for i in range(n)]
        self.routes["/gen-sitemap.xml"] = Resp(sitemap(urls), "application/xml", validators=False)
        return urls

    # --- serving -------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        with self._lock:
            self.hits[path] += 1
            n = self.hits[path]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                self.sleep(self.delay_s)
            route = self.routes.get(path)
            resp = route(self, n) if callable(route) else route
            resp = resp or Resp(b"<h1>Not found</h1>", status=404, validators=False)
            self._write(h, path, resp)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _write(self, h: BaseHTTPRequestHandler, path: str, r: Resp) -> None:
        headers = dict(r.headers)
        status, body = r.status, r.body
        if r.validators and status == 200:
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            headers.update({"ETag": etag, "Last-Modified": LAST_MODIFIED})
            inm, ims = h.headers.get("If-None-Match"), h.headers.get("If-Modified-Since")
            if (inm and etag in [t.strip() for t in inm.split(",")]) or (
                    not inm and ims and email.utils.parsedate_to_datetime(ims)
                    >= email.utils.parsedate_to_datetime(LAST_MODIFIED)):
                status, body = 304, b""
        with self._lock:
            if status == 304:
                self.not_modified[path] += 1
            elif status == 200:
                self.full[path] += 1
        h.send_response(status)
        if status != 304:
            h.send_header("Content-Type", r.content_type)
        for k, v in headers.items():
            h.send_header(k, v)
        if r.stream:
            h.send_header("Connection", "close")
            h.close_connection = True
        else:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            if r.stream:
                for i in range(0, len(body), 16384):
                    h.wfile.write(body[i:i + 16384])
            else:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout, oversize): expected


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # slow handlers must not hold up stop()
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # clients hanging up are expected


def _handler(site: DocSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real sites do
        disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms delayed-ACK stalls

        def do_GET(self):
            site._serve(self)

        def log_message(self, *args):
            pass

    return Handler


# --- a forwarding proxy ----------------------------------------------------------------------------

_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length"}


class ForwardingProxy:
    """Plain-HTTP forward proxy: takes absolute-form requests and relays them. Counts requests."""

    def __init__(self):
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self):
                with proxy._lock:
                    proxy.requests += 1
                u = urlsplit(self.path)
                conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
                try:
                    conn.request("GET", (u.path or "/") + (f"?{u.query}" if u.query else ""),
                                 headers={k: v for k, v in self.headers.items() if k.lower() not in _HOP})
                    r = conn.getresponse()
                    body = r.read()
                except OSError:
                    self.send_error(502)
                    return
                finally:
                    conn.close()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> ForwardingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def dead_proxy_url() -> str:
    """An address where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def fast_fetcher(**overrides):
    """A Fetcher tuned for local tests: short timeouts, quick retries, no rate limit."""
    from rag_assets.sources.docs import Fetcher

    cfg = dict(connect_timeout_s=0.5, read_timeout_s=0.5, total_timeout_s=5.0, max_retries=2,
               backoff_base_s=0.01, backoff_max_s=0.1, max_bytes=100_000, per_host_rps=0.0)
    cfg.update(overrides)
    return Fetcher(**cfg)
