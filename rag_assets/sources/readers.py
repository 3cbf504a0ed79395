"""One reader per source kind: how a source is fetched and which documents it yields.

Everything downstream (chunking, checks, status, the dry run) talks to a `SourceReader` and never
branches on the kind. Adding a kind (a local folder, a wiki) means adding a reader to `READERS`.

A reader's fetch writes one table (the asset named by `table`): a git source lists its tracked files
at a commit, a docs source holds its downloaded pages. `documents()` turns that table into what
chunking reads: (path, content key) pairs, their texts on demand, and their line counts.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from rag_assets.contract import content_hash
from rag_assets.sources.filters import decode_text, skip_reason_for_content
from rag_assets.sources.git import list_files, mirror_path, read_blobs, redact_url, remote_head, sync_mirror
from rag_assets.tables import Table, Tables

if TYPE_CHECKING:  # type only: config validates kinds against READERS
    from rag_assets.sources.config import Source


@dataclass
class Fetched:
    """A fetch's result: the table to store, its data version, and what to report about it."""

    table: Table
    version: str  # a git commit, or a digest of a docs library's page contents
    metadata: dict  # plain values; the asset adds them to its materialization
    summary: str  # one log line


@dataclass
class FetchContext:
    """What a fetch may use: where mirrors live, its previous table, and the docs fetcher."""

    data_dir: Path
    previous: Table | None = None
    fetcher_factory: Callable | None = None  # () -> a context-managed docs Fetcher
    progress: Callable[[int, int], None] | None = None
    log: logging.Logger | None = None


@dataclass
class Documents:
    """A fetched source as chunking sees it: one (path, key) per document, key = content identity."""

    version: str
    wanted: list[tuple[str, str]]
    read: Callable[[list[str]], Iterator[tuple[str, str | None, str | None]]]  # keys -> (key, text, skip reason)
    language: str | None = None  # forced language (docs pages are Markdown whatever their URL ends with)
    skipped: Counter = field(default_factory=Counter)  # documents skipped before reading, by reason

    def line_counts(self, keys) -> dict[str, int]:
        """Line count per content key, to check that chunk spans lie inside their document."""
        from rag_assets.chunking import split_lines  # the chunkers' own notion of a line

        return {k: len(split_lines(text)) for k, text, _ in self.read(list(keys)) if text is not None}


class SourceReader(ABC):
    kind: str
    table: str  # the asset (and stored table) its fetch writes

    @abstractmethod
    def fetch(self, source: Source, ctx: FetchContext) -> Fetched: ...

    @abstractmethod
    def documents(self, table: Table) -> Documents: ...

    def head(self, source: Source) -> str | None:
        """The version the source has now, to tell whether the index is stale; None: no such notion."""
        return None


class GitReader(SourceReader):
    kind, table = "git", Tables.SNAPSHOT

    def fetch(self, source: Source, ctx: FetchContext) -> Fetched:
        mirrors = ctx.data_dir / "mirrors"
        commit = sync_mirror(source.name, source.url, source.branch, mirrors)
        mirror = mirror_path(mirrors, source.name)
        entries = list_files(mirror, commit, source.include, source.exclude)
        files = pd.DataFrame([(e.path, e.blob_sha, e.size, e.skip) for e in entries],
                             columns=["path", "blob_sha", "size", "skip"])
        kept = files[files["skip"].isna()]
        skipped = files["skip"].value_counts().to_dict()
        return Fetched(
            Table(files, {"commit": commit, "mirror": str(mirror), "source": source.name}), commit,
            {"commit": commit, "url": redact_url(source.url), "branch": source.branch, "files": len(kept),
             "bytes": int(kept["size"].sum()), "files_tracked": len(files),
             **{f"skipped_{k}": int(v) for k, v in skipped.items()}},
            f"{source.name}: {commit[:12]}, {len(kept)} files to index, skipped {skipped}",
        )

    def documents(self, table: Table) -> Documents:
        files, mirror = table.df, Path(table.meta["mirror"])
        wanted = files[files["skip"].isna()]
        path_of = dict(zip(wanted["blob_sha"], wanted["path"]))  # a blob's path: prose or code, `.asc`

        def read(keys: list[str]):
            for key, data in read_blobs(mirror, keys):
                reason = skip_reason_for_content(data, path_of.get(key, ""))
                yield key, None if reason else decode_text(data), reason

        return Documents(table.meta["commit"], list(zip(wanted["path"], wanted["blob_sha"])), read,
                         skipped=Counter(files["skip"].dropna()))

    def head(self, source: Source) -> str | None:
        return remote_head(source.url, source.branch, source_name=source.name)


class DocsReader(SourceReader):
    kind, table = "docs", Tables.PAGES

    def fetch(self, source: Source, ctx: FetchContext) -> Fetched:
        from rag_assets.sources.docs import download_library

        prev = ctx.previous.df if ctx.previous is not None and not ctx.previous.meta.get("not_applicable") else None
        with ctx.fetcher_factory() as fetcher:
            df, stats = download_library(source.name, source.url, prev, fetcher, progress=ctx.progress, log=ctx.log)
        version = content_hash("".join(sorted(df["content_hash"].dropna())))
        return Fetched(
            Table(df, {"kind": "docs", "source": source.name, "version": version}), version,
            {"url": redact_url(source.url), "discovered": stats.discovered, "fetched": stats.fetched,
             "not_modified": stats.not_modified, "duplicates": stats.duplicates, "failed": stats.failed,
             "failed_reasons": dict(stats.failed_reasons), "kept_previous_text": stats.kept_previous_text,
             "bytes": stats.bytes, "seconds": round(stats.elapsed_s, 2)},
            stats.summary(),
        )

    def documents(self, table: Table) -> Documents:
        from rag_assets.sources.docs import indexable

        pages = indexable(table.df) if len(table.df) else table.df
        pages = pages[pages["text"].fillna("").str.strip() != ""] if len(pages) else pages
        # A docs library has no commit: its version is a digest of its pages' content hashes.
        hashes = list(pages["content_hash"]) if len(pages) else []
        version = content_hash("".join(sorted(hashes)))
        by_hash = dict(zip(hashes, pages["text"])) if len(pages) else {}
        wanted = list(zip(pages["page_id"], hashes)) if len(pages) else []
        return Documents(version, wanted, lambda keys: ((k, by_hash[k], None) for k in keys), language="markdown")


READERS: dict[str, SourceReader] = {r.kind: r for r in (GitReader(), DocsReader())}
KINDS = tuple(READERS)


def reader_for(source: Source) -> SourceReader:
    return READERS[source.kind]
