"""A polite HTTP client for documentation sites.

One `Fetcher` is shared by every page of a download: per-host concurrency and rate limits,
robots.txt (fetched once per host), retries with backoff, conditional GET, a body size cap,
manual redirects (to spot loops), and a proxy list with failover. `fetch` never raises for a
page-level problem: it returns a `FetchResult` whose `error` is a short reason from
`REASONS`, plus a one-line `detail`.

robots.txt policy (RFC 9309): 2xx is obeyed; 4xx (incl. 404) means "no rules" (fail-open);
5xx means "disallow everything on that host" (fail-closed, "robots disallowed"), because a server
that cannot serve robots.txt should not be crawled harder. When robots.txt gets no HTTP answer at
all (connection refused, DNS failure, timeout) nothing on the host is fetched either, and its pages
fail as "host unreachable", naming the robots.txt URL and the network error: the host is down or
mistyped, which is not what its robots.txt says. Crawl-delay is honoured up to `max_crawl_delay_s`.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx

# Short failure reasons (DocStats counts them), besides "http <code>"; `detail` has the specifics.
REASONS = ("timeout", "connection error", "oversize", "redirect loop", "too many redirects",
           "unsupported content type", "robots disallowed", "host unreachable", "bad url")
ROBOTS_DISALLOWED, HOST_UNREACHABLE = "robots disallowed", "host unreachable"

# Content types a documentation page may have; anything else is "unsupported content type"
# (a missing Content-Type is let through and sniffed by the caller).
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/x-markdown",
              "text/x-rst", "text/prs.fallenstein.rst", "text/mdx")
# Sitemaps come as XML, sometimes gzipped, sometimes mislabelled.
SITEMAP_TYPES = ("text/", "application/xml", "application/gzip", "application/x-gzip",
                 "application/octet-stream", "application/rss+xml", "application/atom+xml")
_REDIRECTS = {301, 302, 303, 307, 308}
_ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least 500 KiB


@dataclass(frozen=True)
class FetcherConfig:
    """Plain fields only, so it maps 1:1 onto a Dagster ConfigurableResource."""

    user_agent: str = "rag-assets-docs/0.1"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    total_timeout_s: float = 60.0  # whole body, so a slow drip cannot hold a worker forever
    max_retries: int = 3  # extra attempts after the first, on timeouts/connection errors/429/5xx
    backoff_base_s: float = 0.5  # attempt n waits ~base * 2**n (with jitter)
    backoff_max_s: float = 30.0  # cap on one wait, Retry-After included
    max_workers: int = 8  # thread pool size of fetch_many
    per_host_concurrency: int = 4
    per_host_rps: float = 8.0  # 0 = unlimited
    respect_robots: bool = True
    max_crawl_delay_s: float = 5.0
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    proxies: tuple[str, ...] = ()  # tried in order; a proxy that fails to connect is skipped
    proxy_cooldown_s: float = 60.0  # how long a dead proxy stays skipped
    trust_env: bool = False  # ignore HTTP(S)_PROXY env vars: proxies are configured above


@dataclass
class FetchRequest:
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class FetchResult:
    url: str  # as requested
    final_url: str = ""  # after redirects
    ok: bool = False  # 2xx with a body
    not_modified: bool = False  # 304 to a conditional GET
    http_status: int | None = None
    body: bytes = b""
    content_type: str = ""  # media type only, lower case
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None  # one of REASONS, or "http <code>"
    detail: str = ""
    attempts: int = 0  # requests sent, redirect hops and retries included
    nbytes: int = 0  # body bytes received (also for failures)

    @property
    def message(self) -> str:
        return f"{self.url}: {self.error}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class _Resp:
    status_code: int
    headers: httpx.Headers
    content: bytes = b""


class _Failure(Exception):
    def __init__(self, reason: str, detail: str = "", retry: bool = False, status: int | None = None,
                 retry_after: float | None = None, nbytes: int = 0):
        super().__init__(reason)
        self.reason, self.detail, self.retry, self.status = reason, detail, retry, status
        self.retry_after, self.nbytes = retry_after, nbytes


class _HostGate:
    """Per-host semaphore + evenly spaced request starts (no bursts)."""

    def __init__(self, concurrency: int, rps: float):
        self.sem = threading.BoundedSemaphore(max(1, concurrency))
        self.interval = 1.0 / rps if rps > 0 else 0.0
        self._lock = threading.Lock()
        self._next_at = 0.0

    @contextmanager
    def slot(self):
        with self.sem:
            if self.interval:
                with self._lock:
                    now = time.monotonic()
                    start = max(now, self._next_at)
                    self._next_at = start + self.interval
                if start > now:
                    time.sleep(start - now)
            yield


def host_key(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme.lower()}://{p.netloc.lower()}"


def _media_type(header: str) -> tuple[str, str | None]:
    parts = [p.strip() for p in header.split(";")]
    charset = next((p.split("=", 1)[1].strip('"\' ') for p in parts[1:] if p.lower().startswith("charset=")), None)
    return parts[0].lower(), charset


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


class Fetcher:
    """Thread-safe; share one per run. Use as a context manager (or call close())."""

    def __init__(self, config: FetcherConfig | None = None, **overrides):
        cfg = config or FetcherConfig()
        if overrides:
            known = {f.name for f in fields(FetcherConfig)}
            bad = set(overrides) - known
            if bad:
                raise TypeError(f"unknown Fetcher option(s): {', '.join(sorted(bad))}")
            if "proxies" in overrides:
                overrides["proxies"] = tuple(overrides["proxies"] or ())
            cfg = replace(cfg, **overrides)
        self.config = cfg
        timeout = httpx.Timeout(connect=cfg.connect_timeout_s, read=cfg.read_timeout_s,
                                write=cfg.read_timeout_s, pool=max(60.0, cfg.total_timeout_s))
        n = max(cfg.max_workers, cfg.per_host_concurrency) * 2
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        kw = dict(timeout=timeout, limits=limits, follow_redirects=False, trust_env=cfg.trust_env,
                  headers={"User-Agent": cfg.user_agent})
        # One client per route: the proxies in order, or a direct one when none are configured.
        self._routes: list[tuple[str | None, httpx.Client]] = (
            [(p, httpx.Client(proxy=p, **kw)) for p in cfg.proxies] or [(None, httpx.Client(**kw))])
        self._dead_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._gates: dict[str, _HostGate] = {}
        # host -> (rules, reason, note): rules True = allow all, False = deny all (`reason` and `note` say why)
        self._robots: dict[str, tuple[RobotFileParser | bool, str, str]] = {}
        self._robots_locks: dict[str, threading.Lock] = {}

    # --- public API ----------------------------------------------------------------------

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              accept: tuple[str, ...] = PAGE_TYPES, max_bytes: int | None = None) -> FetchResult:
        """GET `url` (conditionally when validators are given). Never raises for page problems."""
        res = FetchResult(url=url, final_url=url)
        headers = {"Accept": "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.9,*/*;q=0.1"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current, seen = url, {url}
        try:
            for _hop in range(self.config.max_redirects + 1):
                p = urlsplit(current)
                if p.scheme not in ("http", "https") or not p.hostname:
                    raise _Failure("bad url", f"not an http(s) URL: {current}")
                denial = self._robots_denial(current)
                if denial:
                    raise _Failure(*denial)
                resp = self._with_retries(current, headers, accept, max_bytes or self.config.max_bytes, res)
                if resp.status_code in _REDIRECTS:
                    if not resp.headers.get("location"):
                        raise _Failure(f"http {resp.status_code}", "redirect without Location",
                                       status=resp.status_code)
                    nxt = urlunsplit(urlsplit(urljoin(current, resp.headers["location"]))._replace(fragment=""))
                    if nxt in seen:
                        raise _Failure("redirect loop", f"{current} -> {nxt}")
                    seen.add(nxt)
                    current = res.final_url = nxt
                    continue
                res.http_status = resp.status_code
                res.etag, res.last_modified = resp.headers.get("etag"), resp.headers.get("last-modified")
                if resp.status_code == 304:  # a 304 may omit validators: the ones we sent still hold
                    res.not_modified = True
                    res.etag, res.last_modified = res.etag or etag, res.last_modified or last_modified
                else:
                    res.ok = True
                    res.body = resp.content
                    res.content_type, res.charset = _media_type(resp.headers.get("content-type", ""))
                return res
            raise _Failure("too many redirects", f"more than {self.config.max_redirects}")
        except _Failure as f:
            res.error, res.detail = f.reason, f.detail
            res.http_status = f.status or res.http_status
            return res

    def fetch_many(self, requests: Iterable[FetchRequest | str], *,
                   accept: tuple[str, ...] = PAGE_TYPES) -> Iterator[FetchResult]:
        """Fetch concurrently on the thread pool; results come in completion order."""
        reqs = [FetchRequest(r) if isinstance(r, str) else r for r in requests]
        with ThreadPoolExecutor(max_workers=max(1, self.config.max_workers),
                                thread_name_prefix="docs-fetch") as pool:
            futures = [pool.submit(self.fetch, r.url, etag=r.etag, last_modified=r.last_modified,
                                   accept=accept) for r in reqs]
            for fut in as_completed(futures):
                yield fut.result()

    def allowed(self, url: str) -> bool:
        return self._robots_denial(url) is None

    def close(self) -> None:
        for _, client in self._routes:
            client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------

    def _gate(self, host: str) -> _HostGate:
        with self._lock:
            if host not in self._gates:
                self._gates[host] = _HostGate(self.config.per_host_concurrency, self.config.per_host_rps)
            return self._gates[host]

    def _robots_denial(self, url: str) -> tuple[str, str] | None:
        """None when robots.txt lets us fetch `url`, else (reason, one-line detail): "robots disallowed",
        or "host unreachable" when robots.txt got no answer at all."""
        if not self.config.respect_robots:
            return None
        host = host_key(url)
        rules, reason, note = self._robots_for(host)
        if rules is True or (rules is not False and rules.can_fetch(self.config.user_agent, url)):
            return None
        return reason, note or f"{host}/robots.txt disallows it for {self.config.user_agent}"

    def _robots_for(self, host: str) -> tuple[RobotFileParser | bool, str, str]:
        with self._lock:
            lock = self._robots_locks.setdefault(host, threading.Lock())
        with lock:  # one fetch per host even when many workers ask at once
            if host not in self._robots:
                self._robots[host] = self._load_robots(host)
            return self._robots[host]

    def _load_robots(self, host: str) -> tuple[RobotFileParser | bool, str, str]:
        url, seen = host + "/robots.txt", set()
        try:
            for _ in range(5):  # RFC 9309: follow at least 5 redirects
                seen.add(url)
                resp = self._with_retries(url, {}, ("",), _ROBOTS_MAX_BYTES, FetchResult(url=url),
                                          truncate=True)
                loc = resp.headers.get("location")
                if resp.status_code in _REDIRECTS and loc and urljoin(url, loc) not in seen:
                    url = urljoin(url, loc)
                    continue
                break
        except _Failure as f:
            # 4xx: no rules (fail-open); 5xx: deny the host (fail-closed); no answer: the host is unreachable.
            if f.status and 400 <= f.status < 500:
                return True, "", ""
            if f.status is None and f.reason in ("timeout", "connection error"):
                via = " through the configured proxies" if self.config.proxies else ""  # (their URLs may hold passwords)
                return False, HOST_UNREACHABLE, f"{url}{via}: {f.reason}" + (f" ({f.detail})" if f.detail else "")
            return False, ROBOTS_DISALLOWED, f"{url} unavailable ({f.reason}), so the host is not crawled"
        if resp.status_code >= 300:
            return True, "", ""
        rp = RobotFileParser(url)
        rp.parse(resp.content.decode("utf-8", errors="replace").splitlines())
        rp.modified()  # can_fetch() denies everything until a read time is set
        delay = rp.crawl_delay(self.config.user_agent)
        if delay:
            gate = self._gate(host)
            gate.interval = max(gate.interval, min(float(delay), self.config.max_crawl_delay_s))
        return rp, ROBOTS_DISALLOWED, ""

    def _with_retries(self, url: str, headers: dict, accept: tuple[str, ...], max_bytes: int,
                      res: FetchResult, truncate: bool = False) -> _Resp:
        cfg = self.config
        gate = self._gate(host_key(url))
        for attempt in range(cfg.max_retries + 1):
            res.attempts += 1
            try:
                with gate.slot():
                    return self._once(url, headers, accept, max_bytes, res, truncate)
            except _Failure as f:
                if not f.retry or attempt == cfg.max_retries:
                    if attempt:
                        f.detail += (", " if f.detail else "") + f"{attempt + 1} attempts"
                    raise
                wait = cfg.backoff_base_s * 2 ** attempt * random.uniform(0.5, 1.0)  # jitter
                if f.retry_after is not None:
                    wait = max(wait, f.retry_after)
                time.sleep(min(wait, cfg.backoff_max_s))  # outside the host slot
        raise AssertionError("unreachable")

    def _once(self, url: str, headers: dict, accept: tuple[str, ...], max_bytes: int,
              res: FetchResult, truncate: bool) -> _Resp:
        cfg = self.config
        try:
            with self._send(url, headers) as r:
                code = r.status_code
                if code == 429 or code >= 500:
                    raise _Failure(f"http {code}", "", retry=True, status=code,
                                   retry_after=_retry_after(r.headers.get("retry-after")))
                if code >= 400:
                    raise _Failure(f"http {code}", "", status=code)
                if code in _REDIRECTS or code == 304:
                    return _Resp(code, r.headers)
                ctype = _media_type(r.headers.get("content-type", ""))[0]
                if ctype and not ctype.startswith(accept):
                    raise _Failure("unsupported content type", ctype, status=code)
                declared = r.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes and not truncate:
                    raise _Failure("oversize", f"Content-Length {declared} > {max_bytes} bytes", status=code)
                body, deadline = bytearray(), time.monotonic() + cfg.total_timeout_s
                for chunk in r.iter_bytes():  # decoded bytes: also caps gzip bombs
                    body += chunk
                    res.nbytes += len(chunk)
                    if len(body) > max_bytes:
                        if truncate:
                            body = body[:max_bytes]
                            break
                        raise _Failure("oversize", f"body over {max_bytes} bytes", status=code)
                    if time.monotonic() > deadline:
                        raise _Failure("timeout", f"body not done after {cfg.total_timeout_s:g}s", retry=True)
                return _Resp(code, r.headers, bytes(body))
        except httpx.TimeoutException as e:
            raise _Failure("timeout", f"{type(e).__name__} (connect {cfg.connect_timeout_s:g}s, "
                                      f"read {cfg.read_timeout_s:g}s)", retry=True) from None
        except httpx.TransportError as e:
            raise _Failure("connection error", f"{type(e).__name__}: {e}".splitlines()[0][:200], retry=True) from None

    @contextmanager
    def _send(self, url: str, headers: dict):
        """Stream via the first live route; on a proxy connect failure move to the next proxy."""
        now = time.monotonic()
        with self._lock:
            routes = [rt for rt in self._routes if self._dead_until.get(rt[0] or "", 0) <= now]
        routes = routes or self._routes  # all marked dead: try them all anyway
        for i, (proxy, client) in enumerate(routes):
            try:
                cm = client.stream("GET", url, headers=headers)
                resp = cm.__enter__()
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError):
                if proxy is None or i == len(routes) - 1:
                    raise
                with self._lock:
                    self._dead_until[proxy] = time.monotonic() + self.config.proxy_cooldown_s
                continue
            try:
                yield resp
            finally:
                cm.__exit__(None, None, None)
            return
