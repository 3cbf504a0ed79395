"""discover: sitemap (index + gz), llms.txt, llms-full.txt, page lists, local folders."""

from __future__ import annotations

import gzip

import pytest

from rag_assets.sources.docs import DocsError, detect_kind, discover
from rag_assets.sources.docs.discover import parse_llms_txt, parse_page_list, parse_sitemap, split_llms_full
from rag_assets_tests.docsite import DocSite, Resp, fast_fetcher, sitemap


@pytest.fixture(scope="module")
def site():
    with DocSite() as s:
        yield s


def test_detect_kind(tmp_path):
    assert detect_kind("https://x.dev/sitemap.xml") == "sitemap"
    assert detect_kind("https://x.dev/sitemap.xml.gz") == "sitemap"
    assert detect_kind("https://x.dev/llms.txt") == "llms"
    assert detect_kind("https://x.dev/llms-full.txt") == "llms-full"
    assert detect_kind("https://x.dev/pages.txt") == "list"
    assert detect_kind(["https://x.dev/a"]) == "list"
    assert detect_kind(str(tmp_path)) == "folder"


def test_sitemap_index_with_gzipped_child(site):
    with fast_fetcher() as f:
        d = discover("lib", site.url("/sitemap.xml"), f)
    assert d.kind == "sitemap" and not d.errors
    assert [p.url for p in d.pages] == [site.url(p) for p in DocSite.PAGES]
    assert all(p.page_id == p.url for p in d.pages)


def test_parse_sitemap_variants():
    kind, locs = parse_sitemap(gzip.compress(sitemap(["https://a.dev/1", "https://a.dev/2"])))
    assert kind == "urlset" and locs == ["https://a.dev/1", "https://a.dev/2"]
    no_ns = b"<urlset><url><loc> https://a.dev/x </loc><lastmod>2024</lastmod></url></urlset>"
    assert parse_sitemap(no_ns) == ("urlset", ["https://a.dev/x"])
    with pytest.raises(ValueError, match="not a sitemap"):
        parse_sitemap(b"<html><body>hi</body></html>")
    with pytest.raises(ValueError, match="not valid XML"):
        parse_sitemap(b"{}")


def test_child_sitemap_failure_is_partial(site):
    site.routes["/partial.xml"] = Resp(
        b'<sitemapindex><sitemap><loc>/sitemap-pages.xml</loc></sitemap>'
        b'<sitemap><loc>/gone.xml</loc></sitemap></sitemapindex>', "application/xml", validators=False)
    with fast_fetcher(max_retries=0) as f:
        d = discover("lib", site.url("/partial.xml"), f)
    assert len(d.pages) == len(DocSite.PAGES) // 2
    assert d.errors == [f"source 'lib': cannot fetch {site.url('/gone.xml')}: http 404"]


def test_unusable_sources_raise_one_line_docs_error(site, tmp_path):
    with fast_fetcher(max_retries=0) as f:
        with pytest.raises(DocsError, match=r"^source 'lib': cannot fetch http://127.0.0.1:\d+/nope.xml: http 404$"):
            discover("lib", site.url("/nope.xml"), f)
        with pytest.raises(DocsError, match=r"^source 'lib': http://127.0.0.1:\d+/install.html: not a sitemap"):
            discover("lib", site.url("/install.html"), f)
        with pytest.raises(DocsError, match="^source 'lib': folder or file not found: .*/missing$"):
            discover("lib", str(tmp_path / "missing"), f)
        (tmp_path / "empty").mkdir()
        with pytest.raises(DocsError, match="^source 'lib': no pages found in .*empty$"):
            discover("lib", str(tmp_path / "empty"), f)


def test_llms_txt(site):
    with fast_fetcher() as f:
        d = discover("lib", site.url("/llms.txt"), f)
    assert d.kind == "llms"
    assert [(p.url, p.title) for p in d.pages] == [
        (site.url("/install.html"), "Install"),
        (site.url("/api.md"), "API reference"),  # relative link resolved against llms.txt
        (site.url("/faq.html"), ""),  # bare URL, trailing '.' stripped; image and code-block URLs skipped
    ]


def test_parse_llms_txt_and_page_list():
    text = "- [A](https://a.dev/a \"tip\") and <https://a.dev/b>, also https://a.dev/a again\n"
    assert parse_llms_txt(text) == [("https://a.dev/a", "A"), ("https://a.dev/b", "")]
    listing = "# my pages\nhttps://a.dev/1\n\n  https://a.dev/2#frag  \nnot-a-url\nhttps://a.dev/1\n"
    assert parse_page_list(listing) == ["https://a.dev/1", "https://a.dev/2"]


def test_page_list_file_and_caller_list(site, tmp_path):
    lst = tmp_path / "pages.txt"
    lst.write_text(f"# docs\n{site.url('/index.html')}\n{site.url('/api.html')}\n")
    with fast_fetcher() as f:
        from_file = discover("lib", str(lst), f)
        from_yaml = discover("lib", [site.url("/faq.html"), site.url("/faq.html"), " "], f)
    assert from_file.kind == "list" and [p.url for p in from_file.pages] == [site.url("/index.html"), site.url("/api.html")]
    assert [p.url for p in from_yaml.pages] == [site.url("/faq.html")]


def test_llms_full_split_by_heading_outside_code():
    pages = split_llms_full("# A\ntext a\n```\n# not a heading\n```\n# B\nSource: https://b.dev/b\nb\n# A\nagain\n",
                            "https://x.dev/llms-full.txt")
    assert [p.page_id for p in pages] == ["https://x.dev/llms-full.txt#a", "https://x.dev/llms-full.txt#b",
                                         "https://x.dev/llms-full.txt#a-2"]
    assert pages[0].text == "# A\ntext a\n```\n# not a heading\n```\n"
    assert pages[1].url == "https://b.dev/b" and pages[1].title == "B"
    assert split_llms_full("intro only\n", "u")[0].page_id == "u#preamble"


def test_llms_full_conditional(site):
    with fast_fetcher() as f:
        d = discover("lib", site.url("/llms-full.txt"), f)
        again = discover("lib", site.url("/llms-full.txt"), f, etag=d.etag)
    assert d.kind == "llms-full" and [p.title for p in d.pages] == ["MyLib", "Installation", "API reference", "Installation"]
    assert again.not_modified and again.pages == []


def test_folder(tmp_path):
    (tmp_path / "guide").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "node_modules").mkdir()
    for rel in ("index.md", "guide/b.rst", "guide/c.html", "notes.txt", "x.mdx", "page.htm",
                "logo.png", ".git/HEAD.md", "node_modules/r.md", ".hidden.md"):
        (tmp_path / rel).write_text("x")
    d = discover("lib", str(tmp_path), None)
    assert d.kind == "folder"
    assert [p.page_id for p in d.pages] == ["guide/b.rst", "guide/c.html", "index.md", "notes.txt", "page.htm", "x.mdx"]
    assert d.pages[0].url == (tmp_path / "guide/b.rst").resolve().as_uri()
