"""Find the pages of a documentation source.

`url` may be a sitemap (index files and .gz included), an llms.txt (Markdown links and bare
URLs), an llms-full.txt (one Markdown document, split at `# ` headings into `url#slug`
pages), a page list (a .txt file with one URL a line, or a list from the caller), or a local
folder of .md/.mdx/.rst/.html/.htm/.txt files (relative path = page id).
Problems that make the whole source unusable raise DocsError; a child sitemap that fails is
only reported in `Discovery.errors` (the pages it held are then kept from the previous run).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from rag_assets.sources.docs.fetcher import SITEMAP_TYPES, Fetcher

FOLDER_EXTS = (".md", ".mdx", ".rst", ".html", ".htm", ".txt")
SITEMAP_MAX_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit (uncompressed)
_MAX_SITEMAPS = 1000
_SKIP_DIRS = {"node_modules", "__pycache__"}
_MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+")


class DocsError(RuntimeError):
    """The whole source cannot be read. One line, starting with "source '<name>': "."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))  # one line, whatever the cause said


@dataclass
class PageRef:
    page_id: str
    url: str
    title: str = ""
    text: str | None = None  # inline content (llms-full sections): nothing to fetch
    path: Path | None = None  # local file (folder sources)


@dataclass
class Discovery:
    kind: str  # sitemap | llms | llms-full | list | folder
    pages: list[PageRef] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # partial failures, one line each
    nbytes: int = 0
    # Validators of the source document itself (llms-full: its pages are all in it).
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # llms-full answered 304: reuse the previous pages


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path)) if url.startswith("file://") else Path(url).expanduser()


def detect_kind(url: str | Sequence[str]) -> str:
    if not isinstance(url, str):
        return "list"
    if _is_local(url) and _local_path(url).is_dir():
        return "folder"
    name = urlsplit(url).path.rsplit("/", 1)[-1].lower() if not _is_local(url) else _local_path(url).name.lower()
    if name.startswith("llms") and "full" in name:
        return "llms-full"
    if name.startswith("llms") and name.endswith((".txt", ".md")):
        return "llms"
    if name.endswith(".txt"):
        return "list"
    return "sitemap"  # *.xml, *.xml.gz, or anything else: the parser says if it is not one


def discover(name: str, url: str | Sequence[str], fetcher: Fetcher, *,
             etag: str | None = None, last_modified: str | None = None) -> Discovery:
    """Pages of one source. etag/last_modified: validators of a previous llms-full download."""
    if isinstance(url, str) and _is_local(url) and not _local_path(url).exists():
        raise DocsError(f"source '{name}': folder or file not found: {_local_path(url)}")
    kind = detect_kind(url)
    if kind == "list" and not isinstance(url, str):
        disc = Discovery("list", [PageRef(u, u) for u in _unique(str(u).strip() for u in url) if u])
    elif kind == "folder":
        disc = _discover_folder(name, _local_path(url))
    elif kind == "sitemap":
        disc = _discover_sitemap(name, url, fetcher)
    else:
        disc = Discovery(kind)
        data = _read(name, url, fetcher, disc, etag if kind == "llms-full" else None,
                     last_modified if kind == "llms-full" else None)
        if disc.not_modified:
            return disc
        text = data.decode("utf-8", errors="replace")
        base = url if not _is_local(url) else ""
        if kind == "llms-full":
            disc.pages = split_llms_full(text, url if not _is_local(url) else _local_path(url).as_uri())
        elif kind == "llms":
            disc.pages = [PageRef(u, u, t) for u, t in parse_llms_txt(text, base)]
        else:
            disc.pages = [PageRef(u, u) for u in parse_page_list(text, base)]
    if not disc.pages and not disc.not_modified:
        where = url if isinstance(url, str) else "the page list"
        raise DocsError(f"source '{name}': no pages found in {where}")
    return disc


# --- reading the source document --------------------------------------------------------------


def _read(name: str, url: str, fetcher: Fetcher, disc: Discovery, etag=None, last_modified=None,
          accept=SITEMAP_TYPES) -> bytes:
    if _is_local(url):
        path = _local_path(url)
        if not path.is_file():
            raise DocsError(f"source '{name}': file not found: {path}")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise DocsError(f"source '{name}': cannot read {path}: {e.strerror or e}") from None
        disc.nbytes += len(data)
        return data
    res = fetcher.fetch(url, etag=etag, last_modified=last_modified, accept=accept,
                        max_bytes=SITEMAP_MAX_BYTES)
    disc.nbytes += res.nbytes
    if res.error:
        raise DocsError(f"source '{name}': cannot fetch {res.message}")
    disc.etag, disc.last_modified, disc.not_modified = res.etag, res.last_modified, res.not_modified
    return res.body


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


def _clean_url(url: str, base: str = "") -> str | None:
    url = urljoin(base, url.strip()) if base else url.strip()
    p = urlsplit(url)
    if p.scheme not in ("http", "https") or not p.netloc:
        return None
    return urlunsplit(p._replace(fragment=""))


# --- sitemap ----------------------------------------------------------------------------------


def parse_sitemap(data: bytes) -> tuple[str, list[str]]:
    """('urlset' | 'sitemapindex', the <loc> values). Raises ValueError if it is not a sitemap."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(SITEMAP_MAX_BYTES + 1)
        if len(data) > SITEMAP_MAX_BYTES:
            raise ValueError(f"over {SITEMAP_MAX_BYTES} bytes uncompressed")
    try:
        root = ET.fromstring(data)  # expat >= 2.4 refuses entity-expansion bombs
    except ET.ParseError as e:
        raise ValueError(f"not a sitemap (not valid XML: {e})") from None
    kind = root.tag.rsplit("}", 1)[-1]
    if kind not in ("urlset", "sitemapindex"):
        raise ValueError(f"not a sitemap (root element <{kind}>)")
    locs = [el.text.strip() for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "loc" and el.text]
    return kind, locs


def _discover_sitemap(name: str, url: str, fetcher: Fetcher) -> Discovery:
    disc = Discovery("sitemap")
    pending, seen, pages = [url], {url}, []
    while pending:
        sm = pending.pop(0)
        root = sm == url
        try:
            data = _read(name, sm, fetcher, disc)
            kind, locs = parse_sitemap(data)
        except (DocsError, ValueError, OSError, EOFError) as e:
            msg = str(e) if isinstance(e, DocsError) else f"source '{name}': {sm}: {e}"
            if root:
                raise DocsError(msg) from None
            disc.errors.append(msg)
            continue
        base = sm if not _is_local(sm) else ""
        for loc in locs:
            clean = _clean_url(loc, base)
            if clean is None:
                continue
            if kind == "urlset":
                pages.append(clean)
            elif clean not in seen and len(seen) < _MAX_SITEMAPS:
                seen.add(clean)
                pending.append(clean)
    disc.pages = [PageRef(u, u) for u in _unique(pages)]
    return disc


# --- llms.txt, llms-full.txt, page lists -----------------------------------------------------------


def parse_llms_txt(text: str, base: str = "") -> list[tuple[str, str]]:
    """(url, title) of Markdown links (not images) and bare URLs, in order, outside code fences."""
    out: dict[str, str] = {}
    fence = None
    for line in text.splitlines():
        marker = line.lstrip()[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
            continue
        if fence:
            continue
        for bang, title, href in _MD_LINK.findall(line):
            u = _clean_url(href, base)
            if u and not bang:
                out.setdefault(u, title.strip())
        for href in _BARE_URL.findall(_MD_LINK.sub(" ", line)):
            u = _clean_url(href.rstrip(".,;:!?*_"), base)
            if u:
                out.setdefault(u, "")
    return list(out.items())


def parse_page_list(text: str, base: str = "") -> list[str]:
    """One URL a line; blank lines and `#` comments are skipped."""
    urls = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            u = _clean_url(line.split()[0], base)
            if u:
                urls.append(u)
    return _unique(urls)


def slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def split_llms_full(text: str, url: str) -> list[PageRef]:
    """One page per top-level `# ` heading (ignoring `#` lines inside code fences)."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    fence = None
    for line in text.replace("\r\n", "\n").split("\n"):
        marker = line.lstrip()[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
        if fence is None and line.startswith("# "):
            sections.append((line[2:].strip(), []))
        sections[-1][1].append(line)
    pages, slugs = [], set()
    for title, lines in sections:
        body = "\n".join(lines).strip()
        if not body:
            continue
        slug = base = slugify(title) if title else "preamble"
        n = 1
        while slug in slugs:
            n += 1
            slug = f"{base}-{n}"
        slugs.add(slug)
        # Generators often put the page's real address on a "Source: <url>" line under the title.
        m = re.search(r"^(?:Source|URL):\s*(https?://\S+)\s*$", "\n".join(lines[:4]), re.M)
        page_id = f"{url}#{slug}"
        pages.append(PageRef(page_id, m.group(1) if m else page_id, title, text=body + "\n"))
    return pages


# --- local folder ------------------------------------------------------------------------------


def _discover_folder(name: str, root: Path) -> Discovery:
    """Files under `root`, never through a symlink (a link to /etc/passwd or to a folder outside stays out);
    the root itself may be a link, as the user named it."""
    if not root.is_dir():
        raise DocsError(f"source '{name}': folder not found: {root}")
    root = root.resolve()
    pages = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        # Hidden folders, .git, editor dirs, vendored node_modules; linked folders are never entered.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS
                         and not (here / d).is_symlink())
        for f in sorted(files):
            p = here / f
            if f.startswith(".") or p.suffix.lower() not in FOLDER_EXTS or p.is_symlink() or not p.is_file():
                continue
            pages.append(PageRef(p.relative_to(root).as_posix(), p.as_uri(), path=p))
    pages.sort(key=lambda ref: ref.path)  # as sorted paths: deterministic page order
    return Discovery("folder", pages)


def read_no_follow(path: Path) -> bytes:
    """A folder page's bytes; refuses a symlink (ELOOP), even one swapped in after discovery."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        return f.read()
