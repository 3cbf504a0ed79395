"""sources.yaml: the list of things to index (a contract, see README).

Each entry becomes a partition key of the dynamic `source` dimension.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from rag_assets import settings

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_FIELDS = {"name", "kind", "url", "branch", "include", "exclude", "queries"}


class SourcesError(ValueError):
    """A malformed sources file or entry; the message names the file, entry and field."""


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    url: str  # clone URL, or a local path resolved against the sources file's folder
    branch: str = "main"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    queries: str | None = None  # golden query file (JSON lines), resolved like url


def sources_path() -> Path:
    return settings.current().sources_file


def _is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://") or re.match(r"^[\w.-]+@[\w.-]+:", url) is not None


def _resolve(value: str, base: Path) -> str:
    if _is_remote(value) or value.startswith("file://"):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _str_list(entry_id: str, key: str, value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SourcesError(f"{entry_id}: field '{key}' must be a list of glob strings")
    return tuple(value)


def parse_sources(data, path: Path) -> dict[str, Source]:
    where = str(path)
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise SourcesError(f"{where}: expected a top-level 'sources:' list")
    base = path.resolve().parent
    out: dict[str, Source] = {}
    for i, entry in enumerate(data["sources"]):
        entry_id = f"{where}: sources[{i}]"
        if not isinstance(entry, dict):
            raise SourcesError(f"{entry_id}: expected a mapping with name, kind, url")
        name = entry.get("name")
        if isinstance(name, str):
            entry_id = f"{where}: source '{name}'"
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SourcesError(f"{entry_id}: field 'name' must match [a-z0-9][a-z0-9_-]* (got {name!r})")
        if name in out:
            raise SourcesError(f"{entry_id}: field 'name' is duplicated")
        unknown = set(entry) - _FIELDS
        if unknown:
            raise SourcesError(f"{entry_id}: unknown field(s) {', '.join(sorted(unknown))}")
        kind = entry.get("kind", "git")
        from rag_assets.sources.readers import KINDS  # one reader per kind

        if kind not in KINDS:
            raise SourcesError(f"{entry_id}: field 'kind' must be one of {', '.join(KINDS)} (got {kind!r})")
        url = entry.get("url")
        if not isinstance(url, str) or not url.strip():
            raise SourcesError(f"{entry_id}: field 'url' is required (a local path or clone URL)")
        branch = entry.get("branch", "main")
        if not isinstance(branch, str) or not branch.strip():
            raise SourcesError(f"{entry_id}: field 'branch' must be a non-empty string")
        queries = entry.get("queries")
        if queries is not None and not isinstance(queries, str):
            raise SourcesError(f"{entry_id}: field 'queries' must be a path to a JSON-lines file")
        out[name] = Source(
            name=name,
            kind=kind,
            url=_resolve(url.strip(), base),
            branch=branch.strip(),
            include=_str_list(entry_id, "include", entry.get("include")),
            exclude=_str_list(entry_id, "exclude", entry.get("exclude")),
            queries=_resolve(queries, base) if queries else None,
        )
    return out


def load_sources(path: str | Path | None = None) -> dict[str, Source]:
    path = Path(path) if path else sources_path()
    if not path.is_file():
        raise SourcesError(f"{path}: sources file not found (set RAG_SOURCES or create sources.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SourcesError(f"{path}: not valid YAML ({first})") from None
    return parse_sources(data, path)


def get_source(name: str, path: str | Path | None = None) -> Source:
    sources = load_sources(path)
    if name not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise SourcesError(f"{path or sources_path()}: no source named '{name}' (known: {known})")
    return sources[name]
