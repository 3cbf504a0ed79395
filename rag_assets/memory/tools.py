"""The MCP tools for agent memory: remember, recall, forget, note, list_notes (mcp_server registers them).

remember, forget and note write (a read-only server leaves them out); recall and list_notes read.
"""

from __future__ import annotations

import time
from typing import Annotated

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from rag_assets.memory import api
from rag_assets.memory.records import CATEGORIES, MAX_TAGS, age_text
from rag_assets.memory.recall import MAX_K
from rag_assets.memory.render import iso

Source = Annotated[str, Field(description="source name (see list_sources): whose memory")]
Tags = Annotated[list[str] | None, Field(description=f"labels, e.g. ['testing', 'style'] (at most {MAX_TAGS})")]


class Remembered(BaseModel):
    id: str = Field(description="cite it; pass it to forget")
    source: str
    category: str
    tags: list[str]
    importance: float
    created: str
    expires: str | None = Field(description="when a session memory expires; None: never")


class Memory(BaseModel):
    id: str
    text: str
    category: str
    tags: list[str]
    importance: float
    count: int = Field(description="times remembered (repeats and near-duplicates merged)")
    score: float = Field(description="similarity weighted by importance")
    similarity: float
    age: str = Field(description="e.g. 5m, 3h, 2d")
    age_s: float
    created: str
    expires: str | None
    indexed: bool = Field(description="False: newer than the memory index, read straight from the log")
    citation: str


class Forgotten(BaseModel):
    id: str
    source: str
    forgotten: list[str] = Field(description="every id forgotten (memories merged with it included)")


class Noted(BaseModel):
    id: str
    source: str
    title: str
    tags: list[str]
    created: str
    replaces: list[str] = Field(description="earlier notes with the same title, now superseded")


class NoteItem(BaseModel):
    id: str
    title: str
    body: str
    tags: list[str]
    created: str
    age: str
    replaces: list[str]


class Notes(BaseModel):
    source: str
    notes: list[NoteItem]


def _errors():
    from rag_assets.service.tool_errors import tool_errors

    return tool_errors()


# ------------------------------------------------------------------ tools
def remember(
    text: Annotated[str, Field(description="one fact, preference or lesson, in a sentence or two")],
    source: Source,
    category: Annotated[str, Field(description="preference (how the user likes things), project (facts "
                                   "about the code base) or session (expires after a while)",
                                   json_schema_extra={"enum": list(CATEGORIES)})] = "project",
    tags: Tags = None,
    importance: Annotated[float, Field(description="0 (trivia) to 1 (must not be missed)",
                                       json_schema_extra={"minimum": 0, "maximum": 1})] = 0.5,
) -> Remembered:
    """Remember something about a source for later sessions; returns its id. Searchable at once (recall)."""
    with _errors():
        return Remembered(**api.remember(text, source, category, tags, importance, by="mcp"))


def recall(
    query: Annotated[str, Field(description="what you want to know")],
    source: Source,
    category: Annotated[str | None, Field(description="only this category",
                                          json_schema_extra={"enum": list(CATEGORIES)})] = None,
    tags: Annotated[list[str] | None, Field(description="only memories with any of these tags")] = None,
    k: Annotated[int, Field(description="number of memories", json_schema_extra={"minimum": 1, "maximum": MAX_K})] = 5,
) -> list[Memory]:
    """Memories of a source closest to the query, best first, each with its id, age and score."""
    from rag_assets.memory.recall import recall as recall_flow

    with _errors():
        now = time.time()
        hits = recall_flow(query, source, category, tags, k, now=now)
    return [Memory(**{f: v for f, v in h.to_dict(now).items() if f in Memory.model_fields}) for h in hits]


def forget(
    id: Annotated[str, Field(description="a memory or note id (m-… or n-…) from remember, recall or list_notes")],
    source: Annotated[str | None, Field(description="its source (optional: found by id)")] = None,
) -> Forgotten:
    """Forget a memory or note; recall stops returning it at once."""
    with _errors():
        return Forgotten(**api.forget(id, source, by="mcp"))


def note(
    title: Annotated[str, Field(description="short title, e.g. 'Errors are one line'")],
    body: Annotated[str, Field(description="the decision or convention in Markdown: what, why, where")],
    source: Source,
    tags: Tags = None,
) -> Noted:
    """Record a decision or convention about a source as a Markdown note (same title: replaces the old one)."""
    with _errors():
        return Noted(**api.note(title, body, source, tags, by="mcp"))


def list_notes(
    source: Source,
    tags: Annotated[list[str] | None, Field(description="only notes with any of these tags")] = None,
) -> Annotated[CallToolResult, Notes]:
    """Every note of a source (decisions and conventions), newest first, as Markdown."""
    from rag_assets.memory.render import notes_markdown

    with _errors():
        now = time.time()
        notes = api.list_notes(source, tags)
    result = Notes(source=source, notes=[
        NoteItem(id=n.id, title=n.title, body=n.body, tags=n.tags, created=iso(n.created_at),
                 age=age_text(now - n.created_at), replaces=n.supersedes)
        for n in notes])
    return CallToolResult(content=[TextContent(type="text", text=notes_markdown(source, notes, now))],
                          structured_content=result.model_dump())


def notes_as_search_hits(query: str, source: str, k: int) -> list[dict]:
    """search_code(include_notes=True): the source's closest notes as extra hits (kind "note"), as dicts
    with every search-hit field (the server builds its own SearchHit from them)."""
    with _errors():
        hits, collection = api.note_hits_with_model(query, source, min(k, api.NOTE_HITS))
    return [{**h.to_dict(), "citation": h.citation, "collection": collection,
             "model": collection.rpartition("__")[2]} for h in hits]


WRITE_TOOLS = (remember, forget, note)
READ_TOOLS = (recall, list_notes)
