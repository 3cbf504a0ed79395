"""download_library end to end against the local docs site: exact counts, incremental runs."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from rag_assets.sources.docs import COLUMNS, STATUSES, DocsError, download_library, indexable
from rag_assets.tables import read_table, write_table
from rag_assets_tests.docsite import DocSite, Resp, dead_proxy_url, fast_fetcher


@pytest.fixture(scope="module")
def site():
    with DocSite(slow_s=2.0) as s:
        yield s


def _run(name, url, previous=None, **kw):
    with fast_fetcher(max_retries=1, per_host_concurrency=4) as f:
        return download_library(name, url, previous, f, **kw)


def _by_path(site, df):
    return {pid.removeprefix(site.base): row for pid, row in zip(df["page_id"], df.to_dict("records"))}


@pytest.fixture(scope="module")
def first(site):
    site.reset_counters()
    df, stats = _run("mylib", site.url("/sitemap.xml"))
    return df, stats, site.max_in_flight


def test_first_run_exact_counts(site, first):
    df, stats, peak = first
    assert list(df.columns) == COLUMNS and set(df["status"]) <= set(STATUSES)
    assert [p.removeprefix(site.base) for p in df["page_id"]] == DocSite.PAGES  # discovery order
    assert (stats.kind, stats.discovered, stats.fetched, stats.not_modified) == ("sitemap", 16, DocSite.EXPECT_FETCHED, 0)
    assert stats.duplicates == 2 and stats.failed == 6
    assert stats.failed_reasons == Counter(DocSite.EXPECT_FAILED)
    assert stats.bytes > 5_000 and stats.over_limit == 0 and stats.kept_previous_text == 0
    assert 1 <= peak <= 4  # per-host concurrency, seen by the server
    rows = _by_path(site, df)
    for path, canonical in DocSite.EXPECT_DUPLICATES.items():
        assert rows[path]["status"] == "duplicate" and rows[path]["duplicate_of"] == site.url(canonical)
    assert rows["/moved.html"]["url"] == site.url("/new-home.html") and rows["/moved.html"]["title"] == "New home"
    install = rows["/install.html"]
    assert install["title"] == "Install" and install["etag"] and install["last_modified"]
    assert install["text"].startswith("# Install\n") and "```bash" in install["text"] and "| retries | 3 |" in install["text"]
    assert len(install["content_hash"]) == 64 and install["fetched_at"].tzinfo is not None
    assert rows["/slow.html"]["error"].startswith("timeout") and rows["/slow.html"]["text"] == ""
    assert rows["/private/secret.html"]["error"].startswith("robots disallowed")
    assert site.hits["/private/secret.html"] == 0
    assert set(indexable(df)["page_id"]) == {site.url(p) for p, r in rows.items() if r["status"] == "fetched"}


def test_second_run_downloads_nothing_unchanged(site, first, tmp_path):
    df1, stats1, _ = first
    write_table(tmp_path / "pages.parquet", df1)  # previous comes back from parquet in the pipeline
    previous = read_table(tmp_path / "pages.parquet").df
    site.reset_counters()
    df, stats = _run("mylib", site.url("/sitemap.xml"), previous)
    assert (stats.fetched, stats.not_modified, stats.duplicates, stats.failed) == (0, 8, 2, 6)
    assert stats.failed_reasons == stats1.failed_reasons
    ok_paths = [p for p, r in _by_path(site, df1).items() if r["status"] != "failed"]
    assert sum(site.full[p] for p in ok_paths) == 0 and sum(site.not_modified.values()) == 10
    assert df["text"].tolist() == df1["text"].tolist()
    assert df["duplicate_of"].fillna("").tolist() == df1["duplicate_of"].fillna("").tolist()


def test_failing_page_keeps_previous_text(site, first):
    df1, _, _ = first
    saved = dict(site.routes)
    site.routes["/faq.html"] = Resp(b"down", "text/plain", status=503, validators=False)
    site.routes["/install.html"] = Resp(b"gone", status=404, validators=False)
    try:
        df, stats = _run("mylib", site.url("/sitemap.xml"), df1)
    finally:
        site.routes.update(saved)
    old, rows = _by_path(site, df1), _by_path(site, df)
    for path, err in (("/faq.html", "http 503"), ("/install.html", "http 404")):
        assert rows[path]["status"] == "failed" and rows[path]["error"].startswith(err)
        assert rows[path]["text"] == old[path]["text"] != "" and rows[path]["etag"] == old[path]["etag"]
    assert stats.failed == 8 and stats.kept_previous_text == 2 and stats.not_modified == 6
    assert stats.failed_reasons["http 404"] == 2 and stats.failed_reasons["http 503"] == 1
    assert site.url("/faq.html") in set(indexable(df)["page_id"])  # still searchable
    # Back online: the kept text's validators still match, so it is a 304, not a download.
    df3, stats3 = _run("mylib", site.url("/sitemap.xml"), df)
    assert _by_path(site, df3)["/faq.html"]["status"] == "not_modified" and stats3.not_modified == 8


def test_changed_and_removed_pages(site):
    urls = [site.url(p) for p in ("/index.html", "/api.html", "/faq.html")]
    df1, _ = _run("small", urls)
    saved = site.routes["/api.html"]
    site.routes["/api.html"] = Resp(b"<html><body><h1>API v2</h1><p>New API text.</p></body></html>")
    try:
        df2, stats = _run("small", urls[:2], df1)  # faq.html no longer listed: dropped
    finally:
        site.routes["/api.html"] = saved
    assert df2["status"].tolist() == ["not_modified", "fetched"] and stats.discovered == 2
    assert df2["content_hash"][1] != df1["content_hash"][1] and df2["title"][1] == "API v2"


def test_llms_txt_source(site):
    df, stats = _run("llms", site.url("/llms.txt"))
    assert (stats.kind, stats.fetched, stats.failed) == ("llms", 3, 0)
    md = df[df["page_id"] == site.url("/api.md")].iloc[0]
    assert md["title"] == "API (Markdown)" and md["text"] == "# API (Markdown)\n\nThe API as plain Markdown.\n"


def test_llms_full_source_and_304(site):
    df, stats = _run("full", site.url("/llms-full.txt"))
    base = site.url("/llms-full.txt")
    assert df["page_id"].tolist() == [f"{base}#mylib", f"{base}#installation", f"{base}#api-reference",
                                      f"{base}#installation-2"]
    assert stats.fetched == 4 and df["url"][1] == "https://example.invalid/install"
    assert "# this is a shell comment" in df["text"][1] and df["etag"].notna().all()
    site.reset_counters()
    df2, stats2 = _run("full", base, df)
    assert stats2.not_modified == 4 and site.full["/llms-full.txt"] == 0 and site.not_modified["/llms-full.txt"] == 1
    assert df2["text"].tolist() == df["text"].tolist()


def test_folder_source(tmp_path):
    root = tmp_path / "docs"
    (root / "guide").mkdir(parents=True)
    (root / "index.md").write_text("# Home\n\nWelcome to the docs.\n")
    (root / "guide" / "setup.rst").write_text("Setup\n=====\n\nRun the installer.\n")
    (root / "guide" / "page.html").write_text("<html><body><nav>menu</nav><h1>Page</h1><p>HTML body.</p></body></html>")
    (root / "guide" / "copy.md").write_text("# Home\n\nWelcome to the docs.\n")
    (root / "empty.txt").write_text("  \n")
    df, stats = _run("local", str(root))
    rows = dict(zip(df["page_id"], df.to_dict("records")))
    assert list(rows) == ["empty.txt", "guide/copy.md", "guide/page.html", "guide/setup.rst", "index.md"]
    assert (stats.kind, stats.fetched, stats.duplicates, stats.failed) == ("folder", 3, 1, 1)
    assert stats.failed_reasons == Counter({"empty page": 1})
    assert pd.isna(rows["index.md"]["duplicate_of"]) and rows["guide/copy.md"]["duplicate_of"] == "index.md"
    assert rows["guide/page.html"]["text"] == "# Page\n\nHTML body.\n" and rows["guide/setup.rst"]["title"] == "Setup"
    assert rows["index.md"]["url"].startswith("file://")
    (root / "guide" / "setup.rst").write_text("Setup\n=====\n\nRun the new installer.\n")
    (root / "guide" / "copy.md").unlink()
    df2, stats2 = _run("local", str(root), df)
    assert dict(zip(df2["page_id"], df2["status"])) == {
        "empty.txt": "failed", "guide/page.html": "not_modified", "guide/setup.rst": "fetched", "index.md": "not_modified"}


def test_whole_source_errors_raise_docs_error(site, tmp_path):
    with pytest.raises(DocsError, match=r"^source 'x': cannot fetch http://127\.0\.0\.1:\d+/nope/sitemap\.xml: http 404$"):
        _run("x", site.url("/nope/sitemap.xml"))
    dead = dead_proxy_url() + "/sitemap.xml"
    with pytest.raises(DocsError, match=rf"^source 'x': cannot fetch {dead}: host unreachable"):
        _run("x", dead)
    with pytest.raises(DocsError, match=r"^source 'x': folder or file not found: .*/nowhere$"):
        _run("x", str(tmp_path / "nowhere"))


def test_partial_sitemap_keeps_previous_pages(site, first):
    df1, _, _ = first
    saved = site.routes["/sitemap-more.xml.gz"]
    site.routes["/sitemap-more.xml.gz"] = Resp(b"", status=404, validators=False)
    try:
        df, stats = _run("mylib", site.url("/sitemap.xml"), df1)
    finally:
        site.routes["/sitemap-more.xml.gz"] = saved
    assert len(stats.discovery_errors) == 1 and "sitemap-more.xml.gz" in stats.discovery_errors[0]
    kept = df[df["error"].fillna("").str.startswith("not discovered")]
    assert sorted(p.removeprefix(site.base) for p in kept["page_id"]) == ["/flaky.html", "/moved.html"]
    assert (kept["text"] != "").all() and len(df) == 10


def test_max_pages_and_progress():
    calls = []
    with DocSite(generated=12) as site:
        df, stats = _run("gen", site.url("/gen-sitemap.xml"), max_pages=5,
                         progress=lambda done, total: calls.append((done, total)))
    assert len(df) == 5 and stats.over_limit == 7 and stats.fetched == 5
    assert calls[-1] == (5, 5) and len(calls) == 5
    assert isinstance(df["fetched_at"].dtype, pd.DatetimeTZDtype)
