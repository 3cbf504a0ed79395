"""Download one documentation library into a pages table (one row per discovered page).

Incremental: `previous` is the last table of the same library. Pages answered 304 (or whose
local/inline content hashes the same) keep their previous text as "not_modified"; a page that
fails now but had text before keeps that text (status "failed", with the error) so it stays
searchable. Pages no longer discovered are dropped, except when discovery was partial (a child
sitemap failed): then their previous rows are kept as "failed".
Rows to index: status != "duplicate" and text != "" (see `indexable`).
fetched_at: when the row's text was last confirmed current (fetched, or validated by a 304); a
failed page that keeps older text keeps that older time.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from rag_assets.sources.docs.dedupe import content_hash, find_duplicates
from rag_assets.sources.docs.discover import DocsError, PageRef, detect_kind, discover, read_no_follow
from rag_assets.sources.docs.fetcher import HOST_UNREACHABLE, FetchRequest, Fetcher, FetchResult, host_key
from rag_assets.sources.docs.html_to_text import html_to_text, markdown_title, tidy

COLUMNS = ["page_id", "url", "title", "text", "content_hash", "etag", "last_modified",
           "status", "duplicate_of", "error", "fetched_at"]
STATUSES = ("fetched", "not_modified", "duplicate", "failed")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_LOG_PER_REASON = 10  # failure lines logged per reason; a robots-denied host would log thousands
BINARY_CONTENT = "binary content"  # a failure reason: a body labelled as text (HTML...) that is not text
_SNIFF_BYTES = 8192
# Signatures of binary formats a misconfigured server may label text/html.
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"),
          (b"\xff\xd8\xff", "a JPEG image"), (b"%PDF-", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"),
          (b"\x1f\x8b\x08", "gzip data"), (b"\x00asm", "WebAssembly"), (b"wOFF", "a WOFF font"),
          (b"wOF2", "a WOFF2 font"), (b"\x7fELF", "an ELF binary"), (b"MZ\x90\x00", "a Windows executable"),
          (b"\x28\xb5\x2f\xfd", "zstd data"), (b"BZh9", "bzip2 data"), (b"\xfd7zXZ\x00", "xz data"))
_CONTROL = bytes(c for c in range(32) if c not in b"\t\n\r\f\v\x1b") + b"\x7f"

log_ = logging.getLogger(__name__)

__all__ = ["COLUMNS", "STATUSES", "DocStats", "DocsError", "download_library", "indexable", "page_text"]


@dataclass
class DocStats:
    source: str = ""
    kind: str = ""  # sitemap | llms | llms-full | list | folder
    discovered: int = 0  # pages in the table (after max_pages)
    fetched: int = 0
    not_modified: int = 0
    duplicates: int = 0
    failed: int = 0
    failed_reasons: Counter = field(default_factory=Counter)  # short reason -> pages
    kept_previous_text: int = 0  # failed pages still holding text from an earlier run
    over_limit: int = 0  # discovered beyond max_pages, left out
    bytes: int = 0  # bytes downloaded or read, discovery included
    discovery_errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> str:
        reasons = ", ".join(f"{r} {n}" for r, n in self.failed_reasons.most_common())
        return (f"source '{self.source}': {self.kind}, {self.discovered} pages: {self.fetched} fetched, "
                f"{self.not_modified} not modified, {self.duplicates} duplicates, {self.failed} failed"
                + (f" ({reasons})" if reasons else "")
                + f", {self.bytes / 1e6:.1f} MB in {self.elapsed_s:.1f}s")


def indexable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose text should be chunked: everything with text except duplicates."""
    return df[(df["status"] != "duplicate") & (df["text"].fillna("") != "")]


def binary_body(body: bytes, charset: str | None = None) -> str | None:
    """What a body that should be text is instead ("a PNG image", "NUL bytes"...), or None for text.

    Judged on its first 8 KB: a known binary signature, NUL bytes (unless UTF-16/32), over 5 %
    control characters (never in text, whatever its 8-bit encoding), or, when the server says UTF-8,
    a majority of bytes that are not UTF-8."""
    head = body[:_SNIFF_BYTES]
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    enc = (charset or "").strip().lower().replace("_", "-")
    wide = enc if enc.startswith(("utf-16", "utf-32")) else (
        "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "")
    if wide:
        try:  # incremental: a character cut at the end of the window is no error
            head = codecs.getincrementaldecoder(wide)().decode(head).encode("utf-8")
        except (UnicodeDecodeError, LookupError):
            return f"not {wide} text"
    if b"\0" in head:
        return "NUL bytes"
    if not head:
        return None
    if sum(head.count(c) for c in _CONTROL) > 0.05 * len(head):
        return "mostly control characters"
    if enc in ("utf-8", "utf8") and not wide:
        sample = head.decode("utf-8", errors="replace")
        if sample.count("\ufffd") > 0.5 * len(sample):
            return "mostly invalid UTF-8"
    return None


def page_text(body: bytes, content_type: str, charset: str | None, is_html: bool | None = None) -> tuple[str, str]:
    """(title, Markdown text) of a fetched body: HTML is converted, text/Markdown kept as is."""
    if is_html is None:
        sniff = body[:512].lstrip().lower()
        is_html = content_type in _HTML_TYPES or (
            content_type in ("", "text/plain") and sniff.startswith((b"<!doctype html", b"<html")))
    if is_html:
        c = html_to_text(body, charset)
        return c.title, c.text
    try:
        text = body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # unknown charset name
        text = body.decode("utf-8", errors="replace")
    text = tidy(text)
    return markdown_title(text), text


def _clean(v):
    if v is None or (not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v)):
        return None
    return v


def _previous_rows(previous: pd.DataFrame | None) -> dict[str, dict]:
    if previous is None or previous.empty:
        return {}
    rows = {}
    for rec in previous.to_dict("records"):
        r = {c: _clean(rec.get(c)) for c in COLUMNS}
        r["text"] = r["text"] or ""
        rows[str(r["page_id"])] = r
    return rows


class _Builder:
    """Collects rows and failure reasons for one download."""

    def __init__(self, name: str, prev: dict[str, dict], now: pd.Timestamp, log: logging.Logger):
        self.name, self.prev, self.now, self.log = name, prev, now, log
        self.rows: dict[str, dict] = {}
        self.reasons: dict[str, str] = {}
        self._logged: Counter = Counter()

    def content(self, ref: PageRef, title: str, text: str, etag=None, last_modified=None,
                compare_hash: bool = False) -> None:
        """A page with (new) content; compare_hash: unchanged inline/local content is 'not_modified'."""
        text = tidy(text) if text else ""
        if not text.strip():
            return self.failed(ref, "empty page", "no text after conversion")
        h = content_hash(text)
        old = self.prev.get(ref.page_id)
        status = "not_modified" if compare_hash and old and old["content_hash"] == h else "fetched"
        self.rows[ref.page_id] = dict(
            page_id=ref.page_id, url=ref.url, title=title or ref.title or _fallback_title(ref), text=text,
            content_hash=h, etag=etag, last_modified=last_modified, status=status, duplicate_of=None,
            error=None, fetched_at=self.now)

    def not_modified(self, ref: PageRef, res: FetchResult) -> None:
        old = self.prev[ref.page_id]
        self.rows[ref.page_id] = {**old, "status": "not_modified", "duplicate_of": None,
                                  "error": None, "etag": res.etag, "last_modified": res.last_modified,
                                  "fetched_at": self.now}

    def failed(self, ref: PageRef, reason: str, detail: str = "") -> None:
        error = f"{reason}: {detail}" if detail else reason
        old = self.prev.get(ref.page_id)
        kept = bool(old and old["text"])
        if reason == HOST_UNREACHABLE:  # one line per host, not per page
            host = host_key(ref.url)
            self._logged[(reason, host)] += 1
            if self._logged[(reason, host)] == 1:
                self.log.warning(f"source '{self.name}': host {host} is unreachable ({detail}): "
                                 f"none of its pages is fetched")
        else:
            self._logged[reason] += 1
            if self._logged[reason] <= _LOG_PER_REASON:  # the summary line counts the rest
                self.log.warning(f"source '{self.name}': {ref.url}: {error}"
                                 + (" (keeping the previous text)" if kept else ""))
        self.reasons[ref.page_id] = reason
        if kept:  # stays searchable; its old validators still describe that old text
            self.rows[ref.page_id] = {**old, "status": "failed", "duplicate_of": None, "error": error}
        else:
            self.rows[ref.page_id] = dict(
                page_id=ref.page_id, url=ref.url, title=ref.title or _fallback_title(ref), text="",
                content_hash="", etag=None, last_modified=None, status="failed", duplicate_of=None,
                error=error, fetched_at=self.now)

    def from_result(self, ref: PageRef, res: FetchResult) -> None:
        if res.error:
            self.failed(ref, res.error, res.detail)
        elif res.not_modified and ref.page_id in self.prev:
            self.not_modified(ref, res)
        elif res.not_modified:  # 304 without our asking: nothing to reuse
            self.failed(ref, "http 304", "not modified but no previous text")
        elif what := binary_body(res.body, res.charset):
            self.failed(ref, BINARY_CONTENT, f"{res.content_type or 'no Content-Type'} but the body is {what}")
        else:
            title, text = page_text(res.body, res.content_type, res.charset)
            # url: where the page really lives (after redirects); page_id stays the discovered URL.
            self.content(PageRef(ref.page_id, res.final_url or ref.url, ref.title), title, text,
                         res.etag, res.last_modified)


def _fallback_title(ref: PageRef) -> str:
    return ref.page_id.rstrip("/").rsplit("/", 1)[-1] or ref.url


def download_library(name: str, url: str | Sequence[str], previous: pd.DataFrame | None, fetcher: Fetcher, *,
                     max_pages: int = 5000, progress: Callable[[int, int], None] | None = None,
                     log: logging.Logger | None = None) -> tuple[pd.DataFrame, DocStats]:
    """Discover and download one library. progress(done, total) is called after each page.

    Raises DocsError only when the whole source is unusable; a failing page never raises.
    """
    t0, log = time.perf_counter(), log or log_
    prev = _previous_rows(previous)
    b = _Builder(name, prev, pd.Timestamp.now(tz="UTC"), log)
    stats = DocStats(source=name)

    # llms-full.txt holds every page: its own validators decide whether anything changed.
    doc_etag = doc_lm = None
    if detect_kind(url) == "llms-full":
        with_text = [r for r in prev.values() if r["text"] and (r["etag"] or r["last_modified"])]
        if with_text:
            doc_etag, doc_lm = with_text[0]["etag"], with_text[0]["last_modified"]
    disc = discover(name, url, fetcher, etag=doc_etag, last_modified=doc_lm)
    stats.kind, stats.bytes, stats.discovery_errors = disc.kind, disc.nbytes, list(disc.errors)

    if disc.not_modified:
        refs = [PageRef(r["page_id"], r["url"], r["title"] or "") for r in prev.values()]
        res = FetchResult(url=str(url), not_modified=True, etag=disc.etag, last_modified=disc.last_modified)
        for ref in refs:
            b.not_modified(ref, res)
        if progress:
            progress(len(refs), len(refs))
    else:
        refs = disc.pages
        if len(refs) > max_pages:
            stats.over_limit = len(refs) - max_pages
            log.warning(f"source '{name}': {url}: {len(refs)} pages discovered, keeping the first {max_pages}")
            refs = refs[:max_pages]
        _collect(b, refs, disc, fetcher, stats, progress)

    if disc.errors:  # partial discovery: do not drop pages just because their sitemap failed
        for pid, old in prev.items():
            if pid not in b.rows and old["text"]:
                b.failed(PageRef(pid, old["url"] or pid, old["title"] or ""), "not discovered", disc.errors[0])
                refs.append(PageRef(pid, old["url"] or pid))

    rows = [b.rows[r.page_id] for r in refs]
    _mark_duplicates(rows)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["fetched_at"] = pd.to_datetime(df["fetched_at"], utc=True)

    counts = Counter(r["status"] for r in rows)
    stats.discovered = len(rows)
    stats.fetched, stats.not_modified = counts["fetched"], counts["not_modified"]
    stats.duplicates, stats.failed = counts["duplicate"], counts["failed"]
    stats.failed_reasons = Counter(b.reasons[r["page_id"]] for r in rows if r["status"] == "failed")
    stats.kept_previous_text = sum(1 for r in rows if r["status"] == "failed" and r["text"])
    stats.elapsed_s = time.perf_counter() - t0
    log.info(stats.summary())
    return df, stats


def _collect(b: _Builder, refs: list[PageRef], disc, fetcher: Fetcher, stats: DocStats, progress) -> None:
    total, done = len(refs), 0
    remote = []
    for ref in refs:
        if ref.text is not None:  # llms-full section
            b.content(ref, ref.title, ref.text, disc.etag, disc.last_modified, compare_hash=True)
        elif ref.path is not None:  # local folder file
            try:
                data = read_no_follow(ref.path)
            except OSError as e:
                b.failed(ref, "read error", e.strerror or str(e))
            else:
                stats.bytes += len(data)
                if what := binary_body(data):
                    b.failed(ref, BINARY_CONTENT, f"the file is {what}")
                else:
                    title, text = page_text(data, "", None, is_html=ref.path.suffix.lower() in (".html", ".htm"))
                    b.content(ref, title, text, compare_hash=True)
        else:
            remote.append(ref)
            continue
        done += 1
        if progress:
            progress(done, total)
    by_url: dict[str, list[PageRef]] = {}
    reqs = []
    for ref in remote:
        old = b.prev.get(ref.page_id)
        by_url.setdefault(ref.url, []).append(ref)
        if len(by_url[ref.url]) == 1:
            # Validators only when we hold text to fall back on: a 304 must have something to reuse.
            ok = old and old["text"]
            reqs.append(FetchRequest(ref.url, old["etag"] if ok else None, old["last_modified"] if ok else None))
    for res in fetcher.fetch_many(reqs):
        stats.bytes += res.nbytes
        for ref in by_url[res.url]:
            b.from_result(ref, res)
            done += 1
            if progress:
                progress(done, total)


def _mark_duplicates(rows: list[dict]) -> None:
    cand = [i for i, r in enumerate(rows) if r["status"] in ("fetched", "not_modified") and r["text"]]
    dups = find_duplicates([rows[i]["url"] for i in cand], [rows[i]["text"] for i in cand])
    for d, c in dups.items():
        rows[cand[d]]["status"] = "duplicate"
        rows[cand[d]]["duplicate_of"] = rows[cand[c]]["page_id"]
