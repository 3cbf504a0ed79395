"""A docs source through the real Dagster jobs: download -> chunks -> embeddings -> Qdrant -> search."""

from __future__ import annotations

import pytest
from dagster import AssetKey

from rag_assets.retrieval.search import Searcher
from rag_assets_tests.docsite import DocSite

pytestmark = pytest.mark.slow  # loads the model and/or runs Dagster


def _meta(instance, asset: str) -> dict:
    rec = instance.fetch_materializations(AssetKey(asset), limit=1).records[0]
    return {k: v.value for k, v in rec.asset_materialization.metadata.items()}


@pytest.fixture
def site():
    with DocSite(slow_s=1.0) as s:
        yield s


def test_docs_source_indexes_searches_and_refreshes_cheaply(env, site):
    env.write_sources({"name": "mylib", "kind": "docs", "url": site.url("/sitemap.xml")})
    env.index("mylib")
    pages = _meta(env.instance, "doc_pages")
    # With production defaults the slow page (1 s) and the big page (0.4 MB < 10 MB cap) succeed.
    fetched = DocSite.EXPECT_FETCHED + 2
    assert (pages["fetched"], pages["duplicates"], pages["failed"]) == (fetched, 2, 4)
    assert pages["failed_reasons"] == {"robots disallowed": 1, "http 404": 1, "redirect loop": 1,
                                       "unsupported content type": 1}
    chunks = _meta(env.instance, "chunks")
    assert chunks["chunks"] > 0 and chunks["files_indexed"] == fetched
    assert "nothing for repo_snapshot" in _meta(env.instance, "repo_snapshot")["note"]

    with env.store() as s:
        hit = Searcher(s, "mylib").search("proxy failover and retries with backoff", k=1)[0]
    assert hit.path == site.url("/changelog.html") and hit.symbol.endswith("1.2")
    assert hit.start_line >= 1 and "proxy failover" in hit.text

    # Second run: every page answers 304, nothing is re-chunked or re-embedded.
    site.reset_counters()
    env.index("mylib")
    pages = _meta(env.instance, "doc_pages")
    assert pages["fetched"] == 0 and pages["not_modified"] == fetched
    # Bodies served: only discovery (robots, sitemaps) and the page that fails anyway; no page HTML.
    assert set(site.full) == {"/robots.txt", "/sitemap.xml", "/sitemap-pages.xml", "/sitemap-more.xml.gz", "/logo.png"}
    emb = _meta(env.instance, "embeddings")
    assert emb["embedded"] == 0 and emb["reused"] == chunks["chunks"]
