"""Documentation download: discover pages, fetch them politely, convert to Markdown, dedupe.

Plain Python; the Dagster assets wrap `download_library` and a `Fetcher` resource.
"""

from rag_assets.sources.docs.discover import DocsError, Discovery, PageRef, detect_kind, discover
from rag_assets.sources.docs.fetcher import FetchRequest, FetchResult, Fetcher, FetcherConfig
from rag_assets.sources.docs.html_to_text import Converted, html_to_text
from rag_assets.sources.docs.pages import COLUMNS, STATUSES, DocStats, download_library, indexable

__all__ = ["COLUMNS", "STATUSES", "Converted", "Discovery", "DocStats", "DocsError", "FetchRequest",
           "FetchResult", "Fetcher", "FetcherConfig", "PageRef", "detect_kind", "discover",
           "download_library", "html_to_text", "indexable"]
