"""What the MCP tools and the CLI share: write to the log, read it back, find notes for search and ask.

Writes touch only the log (no model, no store): they are quick and never wait for an index run.
"""

from __future__ import annotations

import time

from rag_assets import settings
from rag_assets.memory.index import snapshot_table
from rag_assets.memory.log import Event, append, log_path, memory_dir, new_id, read_events
from rag_assets.memory.records import (
    DEFAULT_CATEGORY, MAX_BODY, MAX_TITLE, MemoryInputError, Memory, Note, check_category, check_id,
    check_importance, check_source, check_tags, check_text, normalize, replay,
)
from rag_assets.memory.render import iso

NOTE_MIN_SIMILARITY = 0.2  # notes below this add noise to search and ask, not knowledge
NOTE_HITS = 3  # at most this many notes join search_code / ask results


def _data_dir():
    return settings.current().data_dir


def _known_source(source: str) -> str:
    """A source of sources.yaml, or one that already has a log (kept after retirement)."""
    check_source(source)
    if not log_path(_data_dir(), source).exists():
        from rag_assets.sources.config import get_source

        get_source(source)  # SourcesError names the known ones
    return source


# ------------------------------------------------------------------ writes
def remember(text: str, source: str, category: str = DEFAULT_CATEGORY, tags=None, importance: float = 0.5,
             by: str = "") -> dict:
    """Append a memory; it is searchable at once. Session memories expire after RAG_MEMORY_SESSION_TTL."""
    text, category = check_text(text), check_category(category)
    tags, importance = check_tags(tags), check_importance(importance)
    _known_source(source)
    ts = time.time()
    expires = ts + settings.current().memory_session_ttl_s if category == "session" else None
    event = Event("remember", new_id("m"), ts, {"source": source, "text": text, "category": category, "tags": tags,
                                               "importance": importance, "expires_at": expires, "by": by})
    append(_data_dir(), source, event)
    return {"id": event.id, "source": source, "category": category, "tags": tags, "importance": importance,
            "created": iso(ts), "expires": iso(expires)}


def note(title: str, body: str, source: str, tags=None, by: str = "") -> dict:
    """Append a note (a decision or convention, Markdown). A note with the same title replaces the older one."""
    title = " ".join(check_text(title, "title", MAX_TITLE).split())
    body, tags = check_text(body, "body", MAX_BODY), check_tags(tags)
    _known_source(source)
    ts = time.time()
    before = replay(read_events(_data_dir(), source).events, ts)
    event = Event("note", new_id("n"), ts, {"source": source, "title": title, "body": body, "tags": tags, "by": by})
    append(_data_dir(), source, event)
    replaced = [n.id for n in before.notes.values() if normalize(n.title) == normalize(title)]
    return {"id": event.id, "source": source, "title": title, "tags": tags, "created": iso(ts), "replaces": replaced}


def forget(memory_id: str, source: str | None = None, by: str = "") -> dict:
    """Forget a memory or note at once. A memory the index merged with others is forgotten with them
    (the agent saw them as one). Without `source`, every source's log is searched for the id."""
    memory_id = check_id(memory_id)
    sources = [_known_source(source)] if source else _sources_with_logs()
    for src in sources:
        st = replay(read_events(_data_dir(), src).events, time.time())
        if memory_id not in st.known_ids:
            continue
        if memory_id in st.forgotten:
            raise MemoryInputError(f"{memory_id} is already forgotten (source '{src}')")
        if memory_id not in st.memories and memory_id not in st.notes:
            raise MemoryInputError(f"{memory_id} has expired (source '{src}'): nothing to forget")
        ids = [memory_id, *(i for i in _merged_with(src, memory_id) if i != memory_id)]
        target = st.memories.get(memory_id)
        if target is not None:  # repeats not indexed yet, which recall already shows as this one
            same = (target.category, normalize(target.text))
            ids += [m.id for m in st.live_memories() if (m.category, normalize(m.text)) == same and m.id not in ids]
        append(_data_dir(), src, Event("forget", memory_id, time.time(), {"source": src, "ids": ids, "by": by}))
        return {"id": memory_id, "source": src, "forgotten": ids}
    where = f"source '{source}'" if source else f"any source ({len(sources)} with memories)"
    raise MemoryInputError(f"no memory or note {memory_id} in {where}")


def _sources_with_logs() -> list[str]:
    folder = memory_dir(_data_dir())
    return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []


def _merged_with(source: str, memory_id: str) -> list[str]:
    """Ids the last index run merged into one point with `memory_id` (from its snapshot table)."""
    table = snapshot_table(_data_dir(), source)
    if table is None or not len(table.df):
        return []
    for ids in table.df["ids"]:
        members = [str(i) for i in ids]
        if memory_id in members:
            return members
    return []


# ------------------------------------------------------------------ reads (log only: no model)
def list_memories(source: str, category: str | None = None, tags=None) -> list[Memory]:
    """Live memories as the log has them (not merged), newest first."""
    _known_source(source)
    category, tags = check_category(category, optional=True), check_tags(tags)
    st = replay(read_events(_data_dir(), source).events, time.time())
    out = [m for m in st.live_memories() if (category is None or m.category == category)
           and (not tags or set(tags) & set(m.tags))]
    return sorted(out, key=lambda m: -m.created_at)


def list_notes(source: str, tags=None) -> list[Note]:
    """Live notes (the latest of each title), newest first."""
    _known_source(source)
    tags = check_tags(tags)
    st = replay(read_events(_data_dir(), source).events, time.time())
    return sorted((n for n in st.notes.values() if not tags or set(tags) & set(n.tags)), key=lambda n: -n.created_at)


# ------------------------------------------------------------------ notes beside code
def note_hits(query: str, source: str, k: int = NOTE_HITS) -> list:
    """The source's notes closest to `query`, as retrieval.search.Hit rows (kind "note"; path
    notes/<id>.md; commit = the note's date), for search_code and ask. Empty when it has no notes."""
    return note_hits_with_model(query, source, k)[0]


def note_hits_with_model(query: str, source: str, k: int = NOTE_HITS) -> tuple[list, str]:
    """note_hits, and the memory collection they come from (named even before it is built)."""
    from rag_assets.memory.index import memory_collection_name
    from rag_assets.memory.recall import recall_with_model
    from rag_assets.retrieval.search import Hit

    check_source(source)
    if not log_path(_data_dir(), source).exists():
        return [], ""
    hits, model = recall_with_model(query, source, k=k, kind="note", min_similarity=NOTE_MIN_SIMILARITY)
    out = []
    for h in hits:
        text = f"# {h.title}\n\n{h.text}"
        out.append(Hit(path=f"notes/{h.id}.md", start_line=1, end_line=len(text.splitlines()), symbol=h.title,
                       score=h.similarity, source=source, commit=iso(h.created_at)[:10], text=text,
                       language="markdown", kind="note"))
    return out, memory_collection_name(source, model)
