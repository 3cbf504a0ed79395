"""Memories and notes as the log defines them: validation, and the replay of events into what is live.

Plain Python, no model and no store: the index asset, recall's log tail, `list` and `forget` all replay
the same way, so they agree on what is remembered, forgotten, expired or superseded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag_assets.memory.log import Event
from rag_assets.sources.config import NAME_RE

CATEGORIES = ("preference", "project", "session")  # session memories expire (RAG_MEMORY_SESSION_TTL)
DEFAULT_CATEGORY = "project"
MAX_TEXT = 4000  # characters of one memory
MAX_TITLE, MAX_BODY = 200, 20_000  # characters of a note
MAX_TAGS, TAG_RE = 10, re.compile(r"^[a-z0-9][a-z0-9_.:/-]{0,39}$")
ID_RE = re.compile(r"^[mn]-[0-9a-f]{12}$")


class MemoryInputError(ValueError):
    """Bad input to a memory tool or command: one line naming what is wrong."""


# ------------------------------------------------------------------ validation
def check_source(source: str) -> str:
    if not isinstance(source, str) or not NAME_RE.match(source):
        raise MemoryInputError(f"source must match [a-z0-9][a-z0-9_-]* (got {source!r})")
    return source


def check_text(text: str, what: str = "text", limit: int = MAX_TEXT) -> str:
    text = (text or "").strip()
    if not text:
        raise MemoryInputError(f"empty {what}")
    if len(text) > limit:
        raise MemoryInputError(f"{what} is {len(text)} characters; the most is {limit}")
    return text


def check_category(category: str | None, optional: bool = False) -> str | None:
    if category is None and optional:
        return None
    if category not in CATEGORIES:
        raise MemoryInputError(f"category must be one of {', '.join(CATEGORIES)} (got {category!r})")
    return category


def check_tags(tags) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [t for t in re.split(r"[,\s]+", tags) if t]
    out = []
    for t in tags:
        t = str(t).strip().lower()
        if not TAG_RE.match(t):
            raise MemoryInputError(f"tag {t!r}: use 1-40 of a-z 0-9 _ . : / - (starting with a letter or digit)")
        if t not in out:
            out.append(t)
    if len(out) > MAX_TAGS:
        raise MemoryInputError(f"{len(out)} tags; the most is {MAX_TAGS}")
    return out


def check_importance(importance: float) -> float:
    try:
        value = float(importance)
    except (TypeError, ValueError):
        raise MemoryInputError(f"importance must be a number between 0 and 1 (got {importance!r})") from None
    if not 0.0 <= value <= 1.0:
        raise MemoryInputError(f"importance must be between 0 and 1 (got {importance})")
    return value


def check_id(memory_id: str) -> str:
    memory_id = (memory_id or "").strip()
    if not ID_RE.match(memory_id):
        raise MemoryInputError(f"not a memory or note id: {memory_id!r} (ids look like m-1a2b3c4d5e6f or n-…)")
    return memory_id


_QUOTES = str.maketrans({c: " " for c in "'\"`*“”‘’"})
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NEGATION = re.compile(r"\b(?:not|no|never|don't|dont|doesn't|doesnt|isn't|isnt|without|avoid)\b")


def normalize(text: str) -> str:
    """What makes two memories the same memory repeated: case, spacing, quotes and end punctuation aside."""
    return " ".join(text.lower().translate(_QUOTES).split()).strip(" .!;")


def may_merge(a: str, b: str) -> bool:
    """Embeddings hardly see numbers or a negation ("port 8080" ~ "port 8081", "use X" ~ "do not use X"):
    near-duplicates must agree on both before similarity can merge them."""
    a, b = a.lower(), b.lower()
    return _NUMBER.findall(a) == _NUMBER.findall(b) and bool(_NEGATION.search(a)) == bool(_NEGATION.search(b))


# ------------------------------------------------------------------ records
@dataclass
class Memory:
    id: str
    text: str
    category: str
    tags: list[str]
    importance: float
    created_at: float
    expires_at: float | None
    by: str = ""

    @classmethod
    def from_event(cls, e: Event) -> "Memory":
        d = e.data
        return cls(e.id, d["text"], d.get("category", DEFAULT_CATEGORY), list(d.get("tags") or []),
                   float(d.get("importance", 0.5)), e.ts, d.get("expires_at"), d.get("by", ""))

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass
class Note:
    id: str
    title: str
    body: str
    tags: list[str]
    created_at: float
    by: str = ""
    supersedes: list[str] = field(default_factory=list)  # earlier notes with the same title

    @classmethod
    def from_event(cls, e: Event) -> "Note":
        d = e.data
        return cls(e.id, d["title"], d.get("body", ""), list(d.get("tags") or []), e.ts, d.get("by", ""))

    @property
    def markdown(self) -> str:
        return f"# {self.title}\n\n{self.body}".rstrip() + "\n"


@dataclass
class State:
    """What a stretch of the log leaves live. Insertion order is log order (oldest first)."""

    memories: dict[str, Memory] = field(default_factory=dict)
    notes: dict[str, Note] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)
    expired: int = 0  # memories dropped because their session TTL passed
    remembered: int = 0  # remember events seen
    noted: int = 0  # note events seen
    known_ids: set[str] = field(default_factory=set)  # every memory or note id ever written

    def live_memories(self) -> list[Memory]:
        return list(self.memories.values())


def replay(events: list[Event], now: float) -> State:
    """Apply events in log order: remember adds, note adds (replacing an earlier note of the same title),
    forget removes every id it names. Expired session memories are dropped at `now`."""
    st = State()
    titles: dict[str, str] = {}  # normalized title -> live note id
    for e in events:
        if e.op == "remember":
            st.remembered += 1
            st.known_ids.add(e.id)
            if e.id not in st.forgotten:
                st.memories[e.id] = Memory.from_event(e)
        elif e.op == "note":
            st.noted += 1
            st.known_ids.add(e.id)
            if e.id in st.forgotten:
                continue
            n = Note.from_event(e)
            key = normalize(n.title)
            old = titles.get(key)
            if old and old in st.notes:
                prev = st.notes.pop(old)
                n.supersedes = [*prev.supersedes, prev.id]
            titles[key] = n.id
            st.notes[n.id] = n
        elif e.op == "forget":
            for i in e.data.get("ids") or [e.id]:
                st.forgotten.add(i)
                st.memories.pop(i, None)
                st.notes.pop(i, None)
    for i, m in list(st.memories.items()):
        if m.expired(now):
            del st.memories[i]
            st.expired += 1
    return st


def age_text(seconds: float) -> str:
    """3s, 5m, 2h, 4d: how old a memory is, for an agent to weigh it."""
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"
